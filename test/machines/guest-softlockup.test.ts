// The soft-lockup detector (machines/guest/softlockup.ts) on hand-made clocks: a 2-vCPU guest whose
// kvm-clock (its local_clock() and CLOCK_MONOTONIC) reads true time, stopped at 9.5 s and resumed
// 30 s later. With watchdog_thresh 10 the hrtimer runs every 4 s and reports past 20 s;
// get_timestamp() is local_clock() >> 30 (2^30 = 1 073 741 824 ns).
import { describe, expect, it } from 'vitest';
import { timekeepingInit } from '../../machines/guest/clocks.js';
import { softlockupHrtimerForward, softlockupInit, touchSoftlockupWatchdogSync, watchdogTimerFn } from '../../machines/guest/softlockup.js';
import { handGuest } from '../helpers/guest-clocks.js';

const STOP = 9_500_000_000n;
const RESUME = 39_500_000_000n;
const g = () => handGuest([0, 1], { kvmclock: (t) => t, tsc: (t) => t });
const s = { watchdogThreshS: 10 };

describe('softlockupInit', () => {
  it('touched at the last 4 s period before the stop (8 s >> 30 = 7); the hrtimer next expires at 12 s', () => {
    expect(softlockupInit([0, 1], STOP, STOP, s)).toEqual({ expiresNs: 12_000_000_000n, touchTs: { 0: 7n, 1: 7n }, delayReport: [] });
  });
});

describe('watchdogTimerFn', () => {
  it("at the resume (39.5 s >> 30 = 36): CPU0 stuck for 36 − 7 = 29 s, in the kernel's words", () => {
    const { clocks, printk, texts } = g();
    const r = watchdogTimerFn(softlockupInit([0, 1], STOP, STOP, s), RESUME, 0, clocks, s, printk);
    expect(texts()).toEqual(['watchdog: BUG: soft lockup - CPU#0 stuck for 29s! [swapper/0:0]']);
    expect(r.lockup).toEqual({ vcpu: 0, timeNs: RESUME, stuckS: 29, log: [0] });
    expect(r.state.touchTs).toEqual({ 0: 36n, 1: 7n });
  });

  it('a CPU touched (touch_softlockup_watchdog_sync()) skips one check and is touched anew', () => {
    const { clocks, printk, log } = g();
    const touched = touchSoftlockupWatchdogSync(softlockupInit([0, 1], STOP, STOP, s), 1);
    expect(touched.delayReport).toEqual([1]);
    const r = watchdogTimerFn(touched, RESUME, 1, clocks, s, printk);
    expect(r.lockup).toBeNull();
    expect(log).toEqual([]);
    expect(r.state).toMatchObject({ touchTs: { 0: 7n, 1: 36n }, delayReport: [] });
  });

  it('reports only past 2 × watchdog_thresh: 27 (7 + 20) is not, 28 is (21 s)', () => {
    const { clocks, printk } = g();
    const atStop = softlockupInit([0, 1], STOP, STOP, s);
    expect(watchdogTimerFn(atStop, 27n << 30n, 0, clocks, s, printk).lockup).toBeNull();
    expect(watchdogTimerFn(atStop, 28n << 30n, 0, clocks, s, printk).lockup?.stuckS).toBe(21);
  });

  it('watchdog_thresh 20 (8 s periods, 40 s): touched at 8 s (7), no report at 36', () => {
    const { clocks, printk } = g();
    const s20 = { watchdogThreshS: 20 };
    expect(watchdogTimerFn(softlockupInit([0, 1], STOP, STOP, s20), RESUME, 0, clocks, s20, printk).lockup).toBeNull();
  });
});

it('hrtimer_forward_now(): the first 4 s period past CLOCK_MONOTONIC 39.5 s is 40 s', () => {
  const { clocks, settings } = g();
  const tk = timekeepingInit(clocks.clocksources, settings.clocksource);
  expect(softlockupHrtimerForward(softlockupInit([0, 1], STOP, STOP, s), RESUME, clocks, tk, s).expiresNs).toBe(40_000_000_000n);
});
