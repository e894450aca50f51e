// The guest composed (machines/guest/model.ts, pvclock.ts) on a plain input, without a log: a
// 2-vCPU x86 guest with kvmclock and a 1 GHz TSC (cycles are ns), both reading true time, stopped
// at 9.5 s and resumed 30 s later with PVCLOCK_GUEST_STOPPED set on vCPU 0 only (found by the guest
// read at log position 77).
import { describe, expect, it } from 'vitest';
import { simulateGuest } from '../../machines/guest/model.js';
import { kvmCheckAndClearGuestPaused, pvclockTouchWatchdogs } from '../../machines/guest/pvclock.js';
import { guestSettings } from '../../machines/guest/settings.js';
import type { GuestInput } from '../../machines/guest/types.js';
import { MS, S } from '../helpers/guest-clocks.js';

const STOP = 9_500_000_000n;
const RESUME = 39_500_000_000n;
const input = (guestStopped: [number, number][]): GuestInput => ({
  arch: 'x86',
  vcpus: [0, 1],
  counterHz: S,
  kvmclock: true,
  stopTime: STOP,
  runningSince: 0n,
  resumeTime: RESUME,
  read: (t) => ({ counter: t, kvmclock: t }),
  spanAt: () => ({ from: 0n, until: null }),
  realtime: (t) => t,
  guestStopped: new Map(guestStopped),
  deadline: null,
});

describe('pvclock', () => {
  it('kvm_check_and_clear_guest_paused() finds the flag once', () => {
    const flags = [{ vcpu: 1, position: 42 }];
    expect(kvmCheckAndClearGuestPaused(flags, 0)).toEqual({ flags, position: null });
    const found = kvmCheckAndClearGuestPaused(flags, 1);
    expect(found).toEqual({ flags: [], position: 42 });
    expect(kvmCheckAndClearGuestPaused(found.flags, 1).position).toBeNull();
  });

  it('pvclock_touch_watchdogs() touches the three detectors and nothing else', () => {
    const g = {
      softlockup: { expiresNs: 0n, touchTs: { 0: 1n }, delayReport: [] },
      clocksourceWatchdog: { runs: 3n, expiresNs: 0n, last: {}, resetPending: 0, maxIntervalNs: 0n },
      rcu: { gpStartNs: 5n, stallReset: false },
      other: 'kept',
    };
    expect(pvclockTouchWatchdogs(g, 0)).toEqual({
      ...g,
      softlockup: { ...g.softlockup, delayReport: [0] },
      clocksourceWatchdog: { ...g.clocksourceWatchdog, resetPending: 1 },
      rcu: { gpStartNs: 5n, stallReset: true },
    });
  });
});

describe("simulateGuest: the detectors in the kernel's order", () => {
  // At the resume three timers are due: the tick (RCU: 30 s > 21 s since the grace period began),
  // the soft-lockup hrtimer (expired at 12 s) and the watchdog (expired at 10 s). The tick runs
  // first: its check_cpu_stall() finds PVCLOCK_GUEST_STOPPED on vCPU 0 and touches every detector,
  // so no RCU stall; the soft-lockup check skips CPU0 and reports CPU1, stuck for 36 − 7 = 29 s
  // (39.5 s and 8 s >> 30); the watchdog's 20th run (CPU1) only re-reads the clocks, and the next,
  // its expiry long past, come a tick (4 ms) apart, clean.
  it('the flag found by RCU at the tick spares CPU0 the soft lockup, not CPU1', () => {
    const g = simulateGuest(input([[0, 77]]), guestSettings());
    expect(g.guestStopped).toEqual([{ vcpu: 0, timeNs: RESUME, by: 'rcu', position: 77 }]);
    expect(g.rcuStalls).toEqual([]);
    expect(g.softLockups).toEqual([{ vcpu: 1, timeNs: RESUME, stuckS: 29, log: [0] }]);
    expect(g.log.map((e) => e.text)).toEqual(['watchdog: BUG: soft lockup - CPU#1 stuck for 29s! [swapper/1:0]']);
    expect(g.watchdogRuns).toEqual([
      { timeNs: RESUME, vcpu: 1, clocksource: 'tsc', watchdog: 'kvm-clock', csNsec: null, wdNsec: null, outcome: 'reset' },
      { timeNs: RESUME + 4n * MS, vcpu: 0, clocksource: 'tsc', watchdog: 'kvm-clock', csNsec: 4n * MS, wdNsec: 4n * MS, outcome: 'ok' },
      { timeNs: RESUME + 8n * MS, vcpu: 1, clocksource: 'tsc', watchdog: 'kvm-clock', csNsec: 4n * MS, wdNsec: 4n * MS, outcome: 'ok' },
    ]);
    // the sleeper's 9.6 s expiry passed: it wakes at the resume, 29.9 s late, then every 100 ms on time
    expect(g.sleeper.wakes.map((w) => [w.timeNs, w.lateNs])).toEqual([
      [RESUME, 29_900_000_000n],
      [RESUME + 100n * MS, 0n],
      [RESUME + 200n * MS, 0n],
      [RESUME + 300n * MS, 0n],
    ]);
    expect(g.wallClock.convergedAt).toBe(RESUME);
  });

  it("without the flag: the RCU stall at the tick (7500 jiffies), then both CPUs' soft lockups", () => {
    const g = simulateGuest(input([]), guestSettings());
    expect(g.guestStopped).toEqual([]);
    expect(g.log.map((e) => e.text)).toEqual([
      'rcu: INFO: rcu_preempt self-detected stall on CPU',
      'watchdog: BUG: soft lockup - CPU#0 stuck for 29s! [swapper/0:0]',
      'watchdog: BUG: soft lockup - CPU#1 stuck for 29s! [swapper/1:0]',
      'clocksource: Long readout interval, skipping watchdog check: cs_nsec: 30000000000 wd_nsec: 30000000000',
    ]);
    expect(g.rcuStalls).toEqual([{ vcpu: 0, timeNs: RESUME, jiffies: 7500n, ncpus: 2, log: [0] }]);
    // 6.6's watchdog skips the 30 s interval since its 19th run, at 9.5 s: a long readout, in the softirq after the hrtimers
    expect(g.watchdogRuns[0]).toMatchObject({ timeNs: RESUME, vcpu: 1, csNsec: 30n * S, wdNsec: 30n * S, outcome: 'long-interval' });
  });
});
