// The guest's timer queue (machines/guest/timers.ts): the earliest firing first; at one instant the
// hardirq hrtimers before the softirq timer wheel, then the order the timers were registered.
import { describe, expect, it } from 'vitest';
import { nextTimer, type Timer } from '../../machines/guest/timers.js';

const timer = (id: string, context: Timer['context'], firesAt: bigint | null): Timer => ({ id, context, firesAt });

describe('nextTimer', () => {
  it('takes the earliest firing, whatever its context', () => {
    expect(nextTimer([timer('hr', 'hardirq', 20n), timer('wheel', 'softirq', 10n)], 100n)?.id).toBe('wheel');
  });

  it('at one instant: the hardirq hrtimer before the timer wheel, even registered after it', () => {
    expect(nextTimer([timer('wheel', 'softirq', 10n), timer('hr', 'hardirq', 10n)], 100n)?.id).toBe('hr');
  });

  it('at one instant in one context: the first registered', () => {
    const timers = [timer('tick', 'hardirq', 10n), timer('softlockup', 'hardirq', 10n), timer('sleeper', 'hardirq', 10n)];
    expect(nextTimer(timers, 100n)?.id).toBe('tick');
    expect(nextTimer(timers.slice(1), 100n)?.id).toBe('softlockup');
  });

  it('skips a timer not armed or firing after `until`; at `until` it fires', () => {
    expect(nextTimer([timer('off', 'hardirq', null), timer('late', 'hardirq', 101n), timer('wheel', 'softirq', 100n)], 100n)?.id).toBe('wheel');
    expect(nextTimer([timer('off', 'hardirq', null), timer('late', 'hardirq', 101n)], 100n)).toBeNull();
  });
});
