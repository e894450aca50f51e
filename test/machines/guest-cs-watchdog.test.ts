// The clocksource watchdog (machines/guest/cs-watchdog.ts) on hand-made clocks: a 2-vCPU x86
// guest whose kvm-clock reads true time throughout and whose TSC (1 GHz: cycles are ns) reads
// true time until the resume at 2.3 s and 40 ms less from there (a TSC saved 40 ms before the
// kvmclock, as QEMU's stop-to-pre-save gap does). The watchdog ran every 0.5 s of CLOCK_MONOTONIC
// since boot, the k-th run on CPU (k − 1) mod 2.
import { describe, expect, it } from 'vitest';
import { runClocks, timekeepingInit } from '../../machines/guest/clocks.js';
import {
  clocksourceTouchWatchdog,
  clocksourceWatchdog,
  clocksourceWatchdogArmed,
  clocksourceWatchdogConfig,
  clocksourceWatchdogInit,
  type ClocksourceWatchdogState,
} from '../../machines/guest/cs-watchdog.js';
import type { GuestOverrides } from '../../machines/guest/settings.js';
import { MS, PAD, S, handGuest, jumpAt } from '../helpers/guest-clocks.js';

const STOP = 2_200_000_000n;
/** the guest ran its watchdog's last run before the stop when its clock reached 2.0 s: at true 2 000 000 001 ns */
const firedAt = (e: bigint) => e + 1n;

function guest(resume: bigint, overrides: GuestOverrides = {}) {
  const g = handGuest([0, 1], { kvmclock: (t) => t, tsc: jumpAt(resume, -40n * MS) }, overrides);
  const config = clocksourceWatchdogConfig(g.clocks.clocksources, g.settings);
  const tk = timekeepingInit(g.clocks.clocksources, g.settings.clocksource);
  const atStop = clocksourceWatchdogInit(config, g.clocks, g.clocks.ktimeGet(tk, STOP), firedAt);
  return { ...g, config, tk, atStop, run: runClocks(g.clocks, tk, resume) };
}

describe('clocksourceWatchdogInit: the watchdog as the stop began', () => {
  it('4 runs by CLOCK_MONOTONIC 2.2 s: the 4th (2.0 s) on CPU1 read both clocks; the next expires at 2.5 s', () => {
    const { atStop, config } = guest(2_300_000_000n);
    expect(config.watchdog?.name).toBe('kvm-clock');
    expect(config.watched.map((c) => c.name)).toEqual(['tsc']);
    expect(atStop).toEqual<ClocksourceWatchdogState>({
      runs: 4n,
      expiresNs: 2_500_000_000n,
      last: { tsc: { csLast: 2_000_000_001n, wdLast: 2_000_000_001n } },
      resetPending: 0,
      maxIntervalNs: 0n,
    });
  });

  it('tsc=reliable: nothing watched, nothing read', () => {
    const { atStop, config, tk } = guest(2_300_000_000n, { tscReliable: true });
    expect(config.watched).toEqual([]);
    expect(atStop.last).toEqual({});
    expect(clocksourceWatchdogArmed(config, tk)).toBe(false);
  });
});

describe('clocksourceWatchdog: a run after the resume', () => {
  // The 5th run (CPU0) at 2.5 s: wd_nsec = 2 500 000 000 − 2 000 000 001 = 499 999 999; the TSC reads
  // 2 460 000 000 (0x92a09f00): cs_nsec = 459 999 999; the skew −40 000 000 ns is beyond 6.6's
  // 500 µs (2 × (2 × 125 µs)).
  it("6.6 on kvm-clock: marks 'tsc' unstable in the kernel's words and stays on kvm-clock", () => {
    const g = guest(2_300_000_000n);
    expect(g.run.whenMono(g.tk, 2_300_000_000n, g.atStop.expiresNs)).toBe(2_500_000_000n);
    const r = clocksourceWatchdog(g.atStop, g.tk, 2_500_000_000n, g.run, g.config, g.printk);
    expect(g.texts()).toEqual([
      "clocksource: timekeeping watchdog on CPU0: Marking clocksource 'tsc' as unstable because the skew is too large:",
      `${PAD}'kvm-clock' wd_nsec: 499999999 wd_now: 9502f900 wd_last: 77359401 mask: ffffffffffffffff`,
      `${PAD}'tsc' cs_nsec: 459999999 cs_now: 92a09f00 cs_last: 77359401 mask: ffffffffffffffff`,
      `${PAD}Clocksource 'tsc' skewed -40000000 ns (-40 ms) over watchdog 'kvm-clock' interval of 499999999 ns (499 ms)`,
      `${PAD}'kvm-clock' (not 'tsc') is current clocksource.`,
      'tsc: Marking TSC unstable due to clocksource watchdog',
    ]);
    expect(r.runs).toEqual([
      { timeNs: 2_500_000_000n, vcpu: 0, clocksource: 'tsc', watchdog: 'kvm-clock', csNsec: 459_999_999n, wdNsec: 499_999_999n, outcome: 'unstable' },
    ]);
    expect(r.timekeeping).toEqual({ clocksource: 'kvm-clock', unstable: ['tsc'], monoOffsetNs: 0n });
    const last = { tsc: { csLast: 2_460_000_000n, wdLast: 2_500_000_000n } };
    expect(r.state).toEqual({ runs: 5n, expiresNs: 3n * S, last, resetPending: 0, maxIntervalNs: 0n });
    expect(r.firesAt).toBe(3n * S);
    // nothing left to watch: the timer stops
    expect(clocksourceWatchdogArmed(g.config, r.timekeeping)).toBe(false);
  });

  // clocksource=tsc: CLOCK_MONOTONIC reads 2 260 000 000 at the resume and reaches 2.5 s at true
  // 2.54 s. There wd_nsec = 539 999 999, cs_nsec = 499 999 999: the same −40 ms skew, and the TSC
  // was current: the kthread checks it across CPUs, then timekeeping switches to kvm-clock, CLOCK_MONOTONIC
  // continuous (offset 2 500 000 000 − 2 540 000 000).
  it('the TSC current: the per-CPU check and the switch to kvm-clock, CLOCK_MONOTONIC continuous', () => {
    const g = guest(2_300_000_000n, { clocksource: 'tsc' });
    const t = g.run.whenMono(g.tk, 2_300_000_000n, g.atStop.expiresNs);
    expect(t).toBe(2_540_000_000n);
    const r = clocksourceWatchdog(g.atStop, g.tk, t, g.run, g.config, g.printk);
    expect(g.texts().slice(3)).toEqual([
      `${PAD}Clocksource 'tsc' skewed -40000000 ns (-40 ms) over watchdog 'kvm-clock' interval of 539999999 ns (539 ms)`,
      `${PAD}'tsc' is current clocksource.`,
      'tsc: Marking TSC unstable due to clocksource watchdog',
      'clocksource: Checking clocksource tsc synchronization from CPU 0 to CPUs 1.',
      'clocksource: Switched to clocksource kvm-clock',
    ]);
    expect(r.timekeeping).toEqual({ clocksource: 'kvm-clock', unstable: ['tsc'], monoOffsetNs: -40n * MS });
    expect(g.clocks.ktimeGet(r.timekeeping, t)).toBe(g.clocks.ktimeGet(g.tk, t));
    expect(g.clocks.ktimeGet(r.timekeeping, 2_600_000_000n)).toBe(2_560_000_000n);
    // the next expiry, 3.0 s of CLOCK_MONOTONIC, 0.5 s on from its 2.5 s at true 2.54 s
    expect(r.firesAt).toBe(3_040_000_000n);
  });

  it('after clocksource_touch_watchdog(): the run only re-reads the clocks', () => {
    const g = guest(2_300_000_000n);
    const touched = clocksourceTouchWatchdog(g.atStop);
    expect(touched.resetPending).toBe(1);
    const r = clocksourceWatchdog(touched, g.tk, 2_500_000_000n, g.run, g.config, g.printk);
    expect(g.log).toEqual([]);
    expect(r.runs).toEqual([{ timeNs: 2_500_000_000n, vcpu: 0, clocksource: 'tsc', watchdog: 'kvm-clock', csNsec: null, wdNsec: null, outcome: 'reset' }]);
    expect(r.state).toMatchObject({ resetPending: 0, last: { tsc: { csLast: 2_460_000_000n, wdLast: 2_500_000_000n } } });
    expect(r.timekeeping).toEqual(g.tk);
  });

  // A 30 s blackout: the expiry (2.5 s) passed, the run fires at the resume (32.2 s): wd_nsec =
  // 32 200 000 000 − 2 000 000 001 = 30 199 999 999, cs_nsec 40 ms less.
  it('6.6 skips an interval over 1 s and restarts its timer from the tick (32.2 s + 0.5 s)', () => {
    const g = guest(32_200_000_000n);
    const t = g.run.whenMono(g.tk, 32_200_000_000n, g.atStop.expiresNs);
    expect(t).toBe(32_200_000_000n);
    const r = clocksourceWatchdog(g.atStop, g.tk, t, g.run, g.config, g.printk);
    expect(g.texts()).toEqual(['clocksource: Long readout interval, skipping watchdog check: cs_nsec: 30159999999 wd_nsec: 30199999999']);
    expect(r.runs[0]).toMatchObject({ outcome: 'long-interval', csNsec: 30_159_999_999n, wdNsec: 30_199_999_999n });
    expect(r.state).toMatchObject({ expiresNs: 32_700_000_000n, maxIntervalNs: 30_199_999_999n });
    expect(r.firesAt).toBe(32_700_000_000n);
    expect(r.timekeeping.unstable).toEqual([]);
    // a second long interval, not twice the first: skipped without a line
    const again = clocksourceWatchdog({ ...r.state, last: g.atStop.last }, r.timekeeping, t, g.run, g.config, g.printk);
    expect(again.runs[0]!.outcome).toBe('long-interval');
    expect(g.log).toHaveLength(1);
  });

  it('6.6.14 (before the skip) marks it unstable; its expiry (3.0 s) long past, the next run is at the next tick', () => {
    const g = guest(32_200_000_000n, { kernel: '6.6.14' });
    const r = clocksourceWatchdog(g.atStop, g.tk, 32_200_000_000n, g.run, g.config, g.printk);
    expect(r.runs[0]).toMatchObject({ outcome: 'unstable', csNsec: 30_159_999_999n, wdNsec: 30_199_999_999n });
    expect(r.state.expiresNs).toBe(3n * S);
    expect(r.firesAt).toBe(32_204_000_000n);
  });
});
