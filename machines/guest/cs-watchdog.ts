// The clocksource watchdog (kernel/time/clocksource.c): a timer-wheel timer every
// WATCHDOG_INTERVAL that compares each watched clocksource's interval with the watchdog
// clocksource's, on the next online CPU each run, marks a clocksource whose skew is beyond the
// kernel version's margin unstable, and moves timekeeping to the best clocksource left.
import { TICK_NSEC, changeClocksource, type GuestClocks, type Printk, type RunClocks, type TimekeepingState } from './clocks.js';
import {
  clocksourceCyc2ns,
  clocksourceDelta,
  clocksourceSelect,
  clocksourceSelectWatchdog,
  watchdogRules,
  type Clocksource,
  type ClocksourceName,
  type WatchdogRules,
} from './clocksource.js';
import type { GuestSettings } from './settings.js';

export interface WatchdogRun {
  timeNs: bigint;
  vcpu: number;
  clocksource: string;
  watchdog: string;
  csNsec: bigint | null;
  wdNsec: bigint | null;
  outcome: 'init' | 'reset' | 'ok' | 'long-interval' | 'unstable';
}

/** cs->cs_last and cs->wd_last of a watched clocksource: the raw readings of its last check */
export interface WatchdogReadings {
  csLast: bigint;
  wdLast: bigint;
}

export interface ClocksourceWatchdogState {
  /** the runs since boot: the k-th ran on online CPU (k − 1) mod n, the first only read the clocks */
  runs: bigint;
  /** watchdog_timer.expires on CLOCK_MONOTONIC (ns): runs + 1 intervals, unless a long interval restarted it */
  expiresNs: bigint;
  /** each watched clocksource's readings at its last check (absent: never read, its next run initialises) */
  last: Partial<Record<ClocksourceName, WatchdogReadings>>;
  /** watchdog_reset_pending: the runs to come that only re-read the clocks (clocksource_resume_watchdog()) */
  resetPending: number;
  /** watchdog_max_interval: the longest interval a "Long readout interval" line reported (ns) */
  maxIntervalNs: bigint;
}

/** What the watchdog works with: its clocksource, those it watches, the kernel version's rules, its interval. */
export interface ClocksourceWatchdogConfig {
  /** the watchdog clocksource (null: none registered, nothing is checked) */
  watchdog: Clocksource | null;
  /** the clocksources on the watchdog_list (CLOCK_SOURCE_MUST_VERIFY); none without a watchdog */
  watched: Clocksource[];
  rules: WatchdogRules;
  /** WATCHDOG_INTERVAL (ns) */
  intervalNs: bigint;
  /** clocksource= on the command line: the reselection honours it */
  override: string;
}

/** CLOCKSOURCE_MASK(64): kvm-clock's and the TSC's */
const MASK64 = (1n << 64n) - 1n;
const MASK = MASK64.toString(16);
const hex = (v: bigint) => BigInt.asUintN(64, v).toString(16);
const abs = (x: bigint) => (x < 0n ? -x : x);
/** div_s64(): truncation toward zero, as C's / does */
const divTrunc = (a: bigint, b: bigint) => a / b;

/** The watchdog of a guest: clocksource_select_watchdog() over its clocksources, its kernel version's rules and the settings that override them. */
export function clocksourceWatchdogConfig(clocksources: readonly Clocksource[], s: GuestSettings): ClocksourceWatchdogConfig {
  const watchdog = clocksourceSelectWatchdog(clocksources);
  const rules = {
    ...watchdogRules(s.kernel, s.watchdogMaxSkewUs),
    ...(s.watchdogMarginNs !== undefined ? { marginNs: s.watchdogMarginNs, marginIs: 'set (watchdogMarginNs)' } : {}),
    ...(s.watchdogMaxIntervalNs !== undefined ? { maxIntervalNs: s.watchdogMaxIntervalNs } : {}),
  };
  return { watchdog, watched: watchdog ? clocksources.filter((c) => c.mustVerify) : [], rules, intervalNs: s.watchdogIntervalNs, override: s.clocksource };
}

/** The online CPU the k-th run goes to: add_timer_on() of the next online CPU each run, the first on the boot CPU. */
export const watchdogCpu = (cpus: readonly number[], run: bigint): number => cpus[Number((run - 1n) % BigInt(cpus.length))]!;

/**
 * The watchdog as the stop began: it ran at each WATCHDOG_INTERVAL of CLOCK_MONOTONIC since boot,
 * and its last run read the clocks where `firedAt` says the guest's clock reached that expiry.
 */
export function clocksourceWatchdogInit(
  config: ClocksourceWatchdogConfig,
  clocks: GuestClocks,
  monoAtStop: bigint,
  firedAt: (expiresNs: bigint) => bigint,
): ClocksourceWatchdogState {
  const runs = monoAtStop / config.intervalNs;
  const last: ClocksourceWatchdogState['last'] = {};
  const wd = config.watchdog;
  if (runs >= 1n && wd && config.watched.length) {
    const t = firedAt(runs * config.intervalNs);
    const cpu = watchdogCpu(clocks.cpus, runs);
    for (const c of config.watched) last[c.name] = { csLast: clocks.read(c, t, cpu), wdLast: clocks.read(wd, t, cpu) };
  }
  return { runs, expiresNs: (runs + 1n) * config.intervalNs, last, resetPending: 0, maxIntervalNs: 0n };
}

/** The timer is armed while a watched clocksource is left to check (clocksource_stop_watchdog() otherwise). */
export const clocksourceWatchdogArmed = (config: ClocksourceWatchdogConfig, tk: TimekeepingState): boolean =>
  config.watchdog !== null && config.watched.some((c) => !tk.unstable.includes(c.name));

/** clocksource_touch_watchdog() → clocksource_resume_watchdog(): the next run only re-reads the clocks. */
export const clocksourceTouchWatchdog = (state: ClocksourceWatchdogState): ClocksourceWatchdogState => ({ ...state, resetPending: state.resetPending + 1 });

export interface ClocksourceWatchdogResult {
  state: ClocksourceWatchdogState;
  timekeeping: TimekeepingState;
  /** each watched clocksource's check, in list order */
  runs: WatchdogRun[];
  /** the true instant the timer fires next */
  firesAt: bigint;
}

/** clocksource_watchdog(): one run of the timer at true time t. */
export function clocksourceWatchdog(
  state: ClocksourceWatchdogState,
  timekeeping: TimekeepingState,
  t: bigint,
  clocks: RunClocks,
  config: ClocksourceWatchdogConfig,
  printk: Printk,
): ClocksourceWatchdogResult {
  const wd = config.watchdog!;
  const { rules } = config;
  const run = state.runs + 1n;
  const cpu = watchdogCpu(clocks.cpus, run);
  const pending = state.resetPending;
  const last = { ...state.last };
  let tk = timekeeping;
  let maxIntervalNs = state.maxIntervalNs;
  let restartFromNow = false;
  const runs: WatchdogRun[] = [];
  for (const c of config.watched) {
    if (tk.unstable.includes(c.name)) continue;
    const csnow = clocks.read(c, t, cpu);
    const wdnow = clocks.read(wd, t, cpu);
    const prev = last[c.name];
    last[c.name] = { csLast: csnow, wdLast: wdnow };
    const check: WatchdogRun = { timeNs: t, vcpu: cpu, clocksource: c.name, watchdog: wd.name, csNsec: null, wdNsec: null, outcome: 'init' };
    runs.push(check);
    if (!prev || pending) {
      check.outcome = prev ? 'reset' : 'init';
      continue;
    }
    const wdNsec = cyclesToNsecSafe(wd, prev.wdLast, wdnow, rules);
    const csNsec = cyclesToNsecSafe(c, prev.csLast, csnow, rules);
    check.csNsec = csNsec;
    check.wdNsec = wdNsec;
    const interval = csNsec > wdNsec ? csNsec : wdNsec;
    if (rules.maxIntervalNs !== null && interval > rules.maxIntervalNs) {
      check.outcome = 'long-interval';
      if (interval > 2n * maxIntervalNs) {
        maxIntervalNs = interval;
        printk(t, cpu, `clocksource: Long readout interval, skipping watchdog check: cs_nsec: ${csNsec} wd_nsec: ${wdNsec}`);
      }
      restartFromNow = true; // watchdog_timer.expires = jiffies
      continue;
    }
    if (abs(csNsec - wdNsec) > rules.marginNs) {
      check.outcome = 'unstable';
      printUnstable(t, cpu, c, wd, tk, rules, { csNsec, wdNsec, csnow, wdnow, cslast: prev.csLast, wdlast: prev.wdLast }, printk);
      tk = clocksourceUnstable(tk, c, t, cpu, printk);
      tk = clocksourceWatchdogKthread(tk, c, t, cpu, clocks, config, printk);
      continue;
    }
    check.outcome = 'ok';
  }
  // watchdog_timer.expires += WATCHDOG_INTERVAL, on the next CPU; an expiry already past fires at the next tick
  const expiresNs = (restartFromNow ? (clocks.ktimeGet(tk, t) / TICK_NSEC) * TICK_NSEC : state.expiresNs) + config.intervalNs;
  const due = clocks.whenMono(tk, t, expiresNs);
  return {
    state: { runs: run, expiresNs, last, resetPending: pending ? pending - 1 : pending, maxIntervalNs },
    timekeeping: tk,
    runs,
    firesAt: due > t + TICK_NSEC ? due : t + TICK_NSEC,
  };
}

/** cycles_to_nsec_safe(): the masked delta through clocksource_delta(), as int64_t. */
function cyclesToNsecSafe(c: Clocksource, start: bigint, end: bigint, rules: WatchdogRules): bigint {
  return BigInt.asIntN(64, clocksourceCyc2ns(clocksourceDelta(end, start, MASK64, rules.negativeMotion), c.mult, c.shift));
}

/** The lines clocksource_watchdog() prints as it marks a clocksource unstable, as the guest kernel version has them. */
function printUnstable(
  t: bigint,
  cpu: number,
  c: Clocksource,
  wd: Clocksource,
  tk: TimekeepingState,
  rules: WatchdogRules,
  v: { csNsec: bigint; wdNsec: bigint; csnow: bigint; wdnow: bigint; cslast: bigint; wdlast: bigint },
  printk: Printk,
): void {
  const pad = 'clocksource:                       ';
  printk(t, cpu, `clocksource: timekeeping watchdog on CPU${cpu}: Marking clocksource '${c.name}' as unstable because the skew is too large:`);
  const wdNsec = rules.nsecLines ? ` wd_nsec: ${v.wdNsec}` : '';
  const csNsec = rules.nsecLines ? ` cs_nsec: ${v.csNsec}` : '';
  printk(t, cpu, `${pad}'${wd.name}'${wdNsec} wd_now: ${hex(v.wdnow)} wd_last: ${hex(v.wdlast)} mask: ${MASK}`);
  printk(t, cpu, `${pad}'${c.name}'${csNsec} cs_now: ${hex(v.csnow)} cs_last: ${hex(v.cslast)} mask: ${MASK}`);
  if (rules.skewLine) {
    const skew = v.csNsec - v.wdNsec;
    // div_s64_rem() from e40806e9bcf8; div_u64_rem() before: a negative skew's ms came out as a large positive number
    const ms = (x: bigint) => (rules.skewLineSigned ? divTrunc(x, 1_000_000n) : BigInt.asUintN(64, x) / 1_000_000n);
    const interval = `interval of ${v.wdNsec} ns (${ms(v.wdNsec)} ms)`;
    printk(t, cpu, `${pad}Clocksource '${c.name}' skewed ${skew} ns (${ms(skew)} ms) over watchdog '${wd.name}' ${interval}`);
  }
  if (rules.currentLine) {
    const cur = tk.clocksource;
    printk(t, cpu, cur === c.name ? `${pad}'${c.name}' is current clocksource.` : `${pad}'${cur}' (not '${c.name}') is current clocksource.`);
  }
}

/** __clocksource_unstable(): CLOCK_SOURCE_UNSTABLE, then the clocksource's mark_unstable (tsc_cs_mark_unstable() for the TSC). */
function clocksourceUnstable(tk: TimekeepingState, c: Clocksource, t: bigint, cpu: number, printk: Printk): TimekeepingState {
  if (c.name === 'tsc') printk(t, cpu, 'tsc: Marking TSC unstable due to clocksource watchdog');
  return { ...tk, unstable: [...tk.unstable, c.name] };
}

/**
 * clocksource_watchdog_kthread(): the per-CPU check of a current clocksource marked unstable
 * (clocksource_verify_percpu()), then clocksource_select(): timekeeping moves on, CLOCK_MONOTONIC
 * continuous.
 */
function clocksourceWatchdogKthread(
  tk: TimekeepingState,
  marked: Clocksource,
  t: bigint,
  cpu: number,
  clocks: GuestClocks,
  config: ClocksourceWatchdogConfig,
  printk: Printk,
): TimekeepingState {
  if (config.rules.verifyPercpu && tk.clocksource === marked.name && marked.verifyPercpu) {
    printk(t, cpu, clocksourceVerifyPercpuLine(marked.name, cpu, clocks.cpus));
  }
  const next = clocksourceSelect(clocks.clocksources, config.override, new Set(tk.unstable));
  if (next.name === tk.clocksource) return tk;
  printk(t, cpu, `clocksource: Switched to clocksource ${next.name}`);
  return changeClocksource(clocks, tk, next, t);
}

/** verify_n_cpus: clocksource_verify_percpu() checks at most this many CPUs (fa218f1cce6b) */
const VERIFY_N_CPUS = 8;

/** %*pbl: a CPU list as ranges ("0,2-3"). */
export function cpuListString(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return out.join(',');
}

/**
 * clocksource_verify_percpu()'s first line (kernel/time/clocksource.c). It runs in the kwatchdog
 * kthread, on whichever CPU the scheduler gives it: the model takes the watchdog's CPU.
 * clocksource_verify_choose_cpus() takes the first online CPU other than that one, then
 * verify_n_cpus − 1 random draws (get_random_u32_below(nr_cpu_ids), the next online CPU from
 * there): the model takes the draws 1, 2, … (one of their outcomes; every other CPU of a guest of
 * up to 8). The ahead/behind and "check durations" lines that may follow depend on IPI round
 * trips and are not printed.
 */
export function clocksourceVerifyPercpuLine(name: string, testcpu: number, online: readonly number[]): string {
  const cpus = [...online].sort((a, b) => a - b);
  if (cpus.length <= 1) return `clocksource: Not enough CPUs to check clocksource '${name}'.`;
  const chosen = new Set<number>([cpus.find((c) => c !== testcpu)!]);
  const n = Math.min(VERIFY_N_CPUS, cpus.length);
  for (let draw = 1; draw < n; draw++) chosen.add(cpus.find((c) => c >= draw) ?? cpus[0]!);
  chosen.delete(testcpu);
  return `clocksource: Checking clocksource ${name} synchronization from CPU ${testcpu} to CPUs ${cpuListString([...chosen])}.`;
}
