// The soft-lockup detector (kernel/watchdog.c): a per-CPU hrtimer every sample_period (2 ×
// watchdog_thresh / 5 s) that reports a CPU whose watchdog_touch_ts, the stopper task's last run,
// is more than 2 × watchdog_thresh behind local_clock(). Across a stop the clock jumps; only
// PVCLOCK_GUEST_STOPPED, found by kvm_check_and_clear_guest_paused() as the timer fires (pvclock.ts),
// tells the detector that the host stopped the guest.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import type { GuestClocks, Printk, TimekeepingState } from './clocks.js';
import type { GuestSettings } from './settings.js';

export interface SoftLockup {
  vcpu: number;
  timeNs: bigint;
  stuckS: number;
  log: number[];
}

export interface SoftlockupState {
  /** the CPUs' hrtimer expiry on CLOCK_MONOTONIC (ns): armed together at boot, one expiry on the sample_period grid */
  expiresNs: bigint;
  /** watchdog_touch_ts per CPU: get_timestamp() (local_clock() >> 30, about a second) at the stopper's last run */
  touchTs: Record<number, bigint>;
  /** the CPUs whose watchdog_report_ts is SOFTLOCKUP_DELAY_REPORT (touch_softlockup_watchdog_sync()): their next check is skipped */
  delayReport: number[];
}

/** kernel.watchdog_thresh */
type Thresh = Pick<GuestSettings, 'watchdogThreshS'>;

/** sample_period: get_softlockup_thresh() × NSEC_PER_SEC / NUM_SAMPLE_PERIODS (5) */
export const samplePeriodNs = (s: Thresh): bigint => (BigInt(s.watchdogThreshS) * 2n * NSEC_PER_SEC) / 5n;
/** get_softlockup_thresh(): 2 × watchdog_thresh (s) */
const softlockupThreshS = (s: Thresh): bigint => BigInt(s.watchdogThreshS) * 2n;

/**
 * The detector as the stop began: its hrtimer ran at the last sample_period of CLOCK_MONOTONIC
 * before the stop, and each CPU's stopper then touched it at the boot CPU's local_clock() of the
 * last period before the stop.
 */
export function softlockupInit(cpus: readonly number[], localClockAtStop: bigint, monoAtStop: bigint, s: Thresh): SoftlockupState {
  const period = samplePeriodNs(s);
  const touched = ((localClockAtStop / period) * period) >> 30n;
  return { expiresNs: (monoAtStop / period + 1n) * period, touchTs: Object.fromEntries(cpus.map((v) => [v, touched])), delayReport: [] };
}

/** touch_softlockup_watchdog_sync(): watchdog_report_ts = SOFTLOCKUP_DELAY_REPORT on a CPU. */
export function touchSoftlockupWatchdogSync(state: SoftlockupState, cpu: number): SoftlockupState {
  return state.delayReport.includes(cpu) ? state : { ...state, delayReport: [...state.delayReport, cpu] };
}

/**
 * watchdog_timer_fn() on one CPU at true time t, from its read of watchdog_report_ts on (its
 * kvm_check_and_clear_guest_paused() comes first, in the caller: it touches every detector).
 */
export function watchdogTimerFn(
  state: SoftlockupState,
  t: bigint,
  cpu: number,
  clocks: GuestClocks,
  s: Thresh,
  printk: Printk,
): { state: SoftlockupState; lockup: SoftLockup | null } {
  const now = clocks.localClock(t, cpu) >> 30n; // get_timestamp()
  let lockup: SoftLockup | null = null;
  let delayReport = state.delayReport;
  if (delayReport.includes(cpu)) {
    delayReport = delayReport.filter((c) => c !== cpu); // update_report_ts()
  } else {
    // is_softlockup()
    const touched = state.touchTs[cpu]!;
    if (now > touched + softlockupThreshS(s)) {
      const stuck = now - touched;
      const i = printk(t, cpu, `watchdog: BUG: soft lockup - CPU#${cpu} stuck for ${stuck}s! [swapper/${cpu}:0]`);
      lockup = { vcpu: cpu, timeNs: t, stuckS: Number(stuck), log: [i] };
    }
  }
  // softlockup_fn(), the stopper the timer kicked → update_touch_ts()
  return { state: { ...state, touchTs: { ...state.touchTs, [cpu]: now }, delayReport }, lockup };
}

/** hrtimer_forward_now(): the CPUs' next expiry, the first sample_period past CLOCK_MONOTONIC at t. */
export function softlockupHrtimerForward(state: SoftlockupState, t: bigint, clocks: GuestClocks, tk: TimekeepingState, s: Thresh): SoftlockupState {
  const period = samplePeriodNs(s);
  return { ...state, expiresNs: (clocks.ktimeGet(tk, t) / period + 1n) * period };
}
