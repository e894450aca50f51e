// The sleeper (machines/guest/sleeper.ts): 100 ms sleeps on CLOCK_MONOTONIC, stopped at 9.95 s and
// resumed at 14.95 s. Its kvm-clock stood still across the 5 s blackout (true time − 5 s from the
// resume) unless a test says otherwise; the 1 GHz TSC's cycles are ns.
import { describe, expect, it } from 'vitest';
import { runClocks, timekeepingInit } from '../../machines/guest/clocks.js';
import { sleeperFiresAt, sleeperInit, sleeperWake } from '../../machines/guest/sleeper.js';
import { MS, S, handGuest, jumpAt, type HandClocks } from '../helpers/guest-clocks.js';

const STOP = 9_950_000_000n;
const RESUME = 14_950_000_000n;
const PERIOD = 100n * MS;
const held = jumpAt(RESUME, -5n * S);

function guest(c: HandClocks = { kvmclock: held, tsc: held }) {
  const g = handGuest([0], c);
  const tk = timekeepingInit(g.clocks.clocksources, g.settings.clocksource);
  return { ...g, tk, run: runClocks(g.clocks, tk, RESUME) };
}

describe('a sleep on CLOCK_MONOTONIC', () => {
  it('asleep until 10.0 s; wakes at true 15.0 s, on time; sleeps until 10.1 s', () => {
    const { clocks, tk, run } = guest();
    const atStop = sleeperInit(STOP, PERIOD, null, clocks.clocksources);
    expect(atStop).toEqual({ expiresNs: 10n * S, lapicDeadline: false });
    const t = sleeperFiresAt(atStop, run, tk, null);
    expect(t).toBe(15n * S);
    const woke = sleeperWake(atStop, t!, 0, clocks, tk, PERIOD);
    expect(woke.wake).toEqual({ expiresNs: 10n * S, timeNs: 15n * S, lateNs: 0n, lapicDeadline: false });
    expect(woke.state).toEqual({ expiresNs: 10_100_000_000n, lapicDeadline: false });
  });

  it('a kvm-clock that ran on through the blackout: the expiry passed, it wakes at the resume 4.95 s late', () => {
    const { clocks, tk, run } = guest({ kvmclock: (t) => t, tsc: (t) => t });
    const atStop = sleeperInit(STOP, PERIOD, null, clocks.clocksources);
    expect(sleeperFiresAt(atStop, run, tk, null)).toBe(RESUME);
    expect(sleeperWake(atStop, RESUME, 0, clocks, tk, PERIOD).wake.lateNs).toBe(4_950_000_000n);
  });
});

describe('a sleep on the LAPIC TSC deadline armed across the stop', () => {
  it('KVM fires it at 17 s: the TSC (restored 5 s behind) reads 12 s, 2 s past its 10 s deadline', () => {
    const { clocks, tk, run } = guest();
    const atStop = sleeperInit(STOP, PERIOD, 10n * S, clocks.clocksources);
    expect(atStop).toEqual({ expiresNs: 10n * S, lapicDeadline: true });
    expect(sleeperFiresAt(atStop, run, tk, 17n * S)).toBe(17n * S);
    const woke = sleeperWake(atStop, 17n * S, 0, clocks, tk, PERIOD);
    expect(woke.wake).toEqual({ expiresNs: 10n * S, timeNs: 17n * S, lateNs: 2n * S, lapicDeadline: true });
    // the next sleep is on CLOCK_MONOTONIC again (kvm-clock: 12 s + 100 ms)
    expect(woke.state).toEqual({ expiresNs: 12_100_000_000n, lapicDeadline: false });
  });

  it('fired before the resume: it comes at the resume; never fired: null', () => {
    const { clocks, tk, run } = guest();
    const atStop = sleeperInit(STOP, PERIOD, 10n * S, clocks.clocksources);
    expect(sleeperFiresAt(atStop, run, tk, 12n * S)).toBe(RESUME);
    expect(sleeperFiresAt(atStop, run, tk, null)).toBeNull();
  });
});
