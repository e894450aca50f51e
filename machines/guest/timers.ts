// The guest's timers in one small queue: each detector's next firing, taken in the order the kernel
// runs them. At one instant the hardirq hrtimers (the tick, the soft-lockup hrtimer, a sleeper's
// wake-up: __hrtimer_run_queues() from the timer interrupt) run before the timer wheel
// (run_timer_softirq(), where the clocksource watchdog runs), and timers of one context in the
// order they were registered: the same input gives the same log.

export type TimerContext = 'hardirq' | 'softirq';

export interface Timer<Id extends string = string> {
  id: Id;
  context: TimerContext;
  /** the true instant it fires next (null: not armed) */
  firesAt: bigint | null;
}

const ORDER: Record<TimerContext, number> = { hardirq: 0, softirq: 1 };

/** The timer that fires first at or before `until` (null: none does). */
export function nextTimer<T extends Timer>(timers: readonly T[], until: bigint): T | null {
  let first: T | null = null;
  for (const timer of timers) {
    const at = timer.firesAt;
    if (at === null || at > until) continue;
    if (first === null || at < first.firesAt! || (at === first.firesAt && ORDER[timer.context] < ORDER[first.context])) first = timer;
  }
  return first;
}
