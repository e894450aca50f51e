// A task that sleeps a fixed period in a loop on the boot vCPU (clock_nanosleep() on
// CLOCK_MONOTONIC: an hrtimer), its wake-ups and how late the guest sees them. On x86 with the
// TSC-deadline LAPIC timer the hrtimer's expiry is programmed as a TSC value
// (lapic_next_deadline()): the wake-up pending as the stop began comes when KVM fires that
// deadline on the resumed side, whatever its clocks then read.
import { clocksourceCyc2ns, type Clocksource } from './clocksource.js';
import type { GuestClocks, RunClocks, TimekeepingState } from './clocks.js';

export interface SleeperWake {
  /** the CLOCK_MONOTONIC expiry it slept until (ns) */
  expiresNs: bigint;
  /** the true instant it woke (null: not within the horizon) */
  timeNs: bigint | null;
  /** how late the guest sees it: its clock at the wake-up − the expiry (null: not woken) */
  lateNs: bigint | null;
  /** it waited on the LAPIC TSC deadline armed before the stop */
  lapicDeadline: boolean;
}

export interface SleeperState {
  /** the pending wake-up's expiry on CLOCK_MONOTONIC (ns); with lapicDeadline, the TSC deadline read through the tsc clocksource */
  expiresNs: bigint;
  /** the pending wake-up waits on the LAPIC TSC deadline the guest armed */
  lapicDeadline: boolean;
}

const tscOf = (clocksources: readonly Clocksource[]) => clocksources.find((c) => c.name === 'tsc');

/**
 * The sleeper as the stop began: asleep until the next period of CLOCK_MONOTONIC, or (`tscDeadline`:
 * the boot vCPU's IA32_TSC_DEADLINE as the resumed side holds it, armed across the stop) on that
 * LAPIC deadline.
 */
export function sleeperInit(monoAtStop: bigint, periodNs: bigint, tscDeadline: bigint | null, clocksources: readonly Clocksource[]): SleeperState {
  const tsc = tscOf(clocksources);
  if (tscDeadline !== null && tsc) return { expiresNs: clocksourceCyc2ns(tscDeadline, tsc.mult, tsc.shift), lapicDeadline: true };
  return { expiresNs: (monoAtStop / periodNs + 1n) * periodNs, lapicDeadline: false };
}

/**
 * When the pending wake-up comes once resumed: at its CLOCK_MONOTONIC expiry (at once if it
 * passed), or on a LAPIC deadline when KVM fires it (`lapicFiresAt`; null: never).
 */
export function sleeperFiresAt(state: SleeperState, clocks: RunClocks, tk: TimekeepingState, lapicFiresAt: bigint | null): bigint | null {
  if (!state.lapicDeadline) return clocks.whenMono(tk, clocks.resumeTime, state.expiresNs);
  if (lapicFiresAt === null) return null;
  return lapicFiresAt < clocks.resumeTime ? clocks.resumeTime : lapicFiresAt;
}

/** hrtimer_wakeup() at true time t on `cpu`: how late the guest sees it, and the next sleep of one period. */
export function sleeperWake(
  state: SleeperState,
  t: bigint,
  cpu: number,
  clocks: GuestClocks,
  tk: TimekeepingState,
  periodNs: bigint,
): { state: SleeperState; wake: SleeperWake } {
  const mono = clocks.ktimeGet(tk, t);
  const tsc = tscOf(clocks.clocksources);
  // the LAPIC fired on a TSC deadline: the guest's TSC says how late
  const seen = state.lapicDeadline && tsc ? clocksourceCyc2ns(clocks.read(tsc, t, cpu), tsc.mult, tsc.shift) : mono;
  return {
    state: { expiresNs: mono + periodNs, lapicDeadline: false },
    wake: { expiresNs: state.expiresNs, timeNs: t, lateNs: seen - state.expiresNs, lapicDeadline: state.lapicDeadline },
  };
}
