// The guest's clocks as its kernel reads them: each clocksource's read() on a vCPU, local_clock()
// (printk's timestamps, the lockup detector's clock), CLOCK_MONOTONIC through the timekeeper's
// current clocksource (kernel/time/timekeeping.c), and when a timer on it fires. The timekeeper's
// state is plain data the guest carries; the readings come from the emulated kernel (`read`).
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { clocksourceCyc2ns, clocksourceSelect, type Clocksource, type ClocksourceName } from './clocksource.js';

/** CONFIG_HZ: 250, kernel/Kconfig.hz's default (HZ_250): jiffies, the timer wheel's tick */
export const HZ = 250n;
export const TICK_NSEC = NSEC_PER_SEC / HZ;

/** What the guest reads on one vCPU at a true instant: its counter (TSC or CNTVCT) and kvmclock (x86, once enabled). */
export interface GuestReading {
  counter: bigint;
  kvmclock: bigint | null;
}

export interface GuestLogEntry {
  /** the true instant (ns of the ledger's time axis) */
  timeNs: bigint;
  /** the guest's printk timestamp (its sched_clock, ns) */
  guestNs: bigint;
  vcpu: number;
  text: string;
}

/** printk(): a line of the guest kernel's log at a true instant on a vCPU; returns its index in the log. */
export type Printk = (t: bigint, cpu: number, text: string) => number;

/** The timekeeper: the clocksource CLOCK_MONOTONIC runs on, and the clocksources' flags. */
export interface TimekeepingState {
  /** curr_clocksource */
  clocksource: ClocksourceName;
  /** the clocksources marked CLOCK_SOURCE_UNSTABLE, in the order marked (a clocksource marked stays marked) */
  unstable: ClocksourceName[];
  /** CLOCK_MONOTONIC − the current clocksource's ns on the boot CPU: what kept it continuous across a change (ns) */
  monoOffsetNs: bigint;
}

export interface GuestClocks {
  /** the online CPUs (vCPU ids), the boot CPU first */
  cpus: readonly number[];
  /** the registered clocksources */
  clocksources: readonly Clocksource[];
  /** a clocksource's read() on a CPU at true time t (kvm-clock: the CPU's pvclock; tsc, arch_sys_counter: its counter) */
  read(c: Clocksource, t: bigint, cpu: number): bigint;
  /** local_clock(): printk's timestamp and the lockup detector's clock (kvm_sched_clock_read() with kvmclock) */
  localClock(t: bigint, cpu: number): bigint;
  /** kvm_sched_clock_offset: kvm-clock as the guest's kvm_sched_clock_init() read it at boot (0: no kvm-clock, or not known) */
  schedOffset: bigint;
  /** ktime_get(): CLOCK_MONOTONIC, the timekeeper's clocksource read on the boot CPU */
  ktimeGet(tk: TimekeepingState, t: bigint): bigint;
}

/**
 * The guest's clocks over what it reads on each vCPU. With kvm-clock, sched_clock() is
 * kvm_sched_clock_read(): kvm-clock minus `schedOffset`, the kvm_sched_clock_offset its boot took
 * (u64 arithmetic, as the kernel's: a kvm-clock set back below it wraps). Once the scheduler marks
 * sched_clock stable a real guest's local_clock() adds __sched_clock_offset ("sched_clock: Marking
 * stable (…)->(…, offset)"), which depends on its boot's timing: the model does not have it.
 */
export function guestClocks(
  reading: (t: bigint, vcpu: number) => GuestReading,
  cpus: readonly number[],
  clocksources: readonly Clocksource[],
  schedOffset = 0n,
): GuestClocks {
  const kvmclock = clocksources.find((c) => c.name === 'kvm-clock');
  const schedClock = kvmclock ?? clocksources[0]!;
  const offset = kvmclock ? schedOffset : 0n;
  const read = (c: Clocksource, t: bigint, cpu: number): bigint => {
    const r = reading(t, cpu);
    return c.name === 'kvm-clock' ? (r.kvmclock ?? 0n) : r.counter;
  };
  const ns = (c: Clocksource, t: bigint, cpu: number) => clocksourceCyc2ns(read(c, t, cpu), c.mult, c.shift);
  return {
    cpus,
    clocksources,
    read,
    localClock: (t, cpu) => BigInt.asUintN(64, ns(schedClock, t, cpu) - offset), // kvm_sched_clock_read()
    schedOffset: offset,
    ktimeGet: (tk, t) => ns(currentClocksource(clocksources, tk), t, cpus[0]!) + tk.monoOffsetNs,
  };
}

/** The timekeeper as the guest booted: clocksource_select() over what registered, nothing unstable. */
export function timekeepingInit(clocksources: readonly Clocksource[], override: string): TimekeepingState {
  return { clocksource: clocksourceSelect(clocksources, override).name, unstable: [], monoOffsetNs: 0n };
}

export const currentClocksource = (clocksources: readonly Clocksource[], tk: TimekeepingState): Clocksource =>
  clocksources.find((c) => c.name === tk.clocksource)!;

/** change_clocksource() (from timekeeping_notify()): CLOCK_MONOTONIC runs on `next` from t on, continuous at t. */
export function changeClocksource(clocks: GuestClocks, tk: TimekeepingState, next: Clocksource, t: bigint): TimekeepingState {
  const mono = clocks.ktimeGet(tk, t);
  const nextNs = clocksourceCyc2ns(clocks.read(next, t, clocks.cpus[0]!), next.mult, next.shift);
  return { ...tk, clocksource: next.name, monoOffsetNs: mono - nextNs };
}

/** The clocks of one run from a resume, with when its timers on CLOCK_MONOTONIC fire. */
export interface RunClocks extends GuestClocks {
  resumeTime: bigint;
  /**
   * CLOCK_MONOTONIC's advance over the first true second from the resume: a guest counter on a
   * host of another rate (arm64 CNTFRQ, x86 catch-up) runs its timers at that rate
   */
  ratePerS: bigint;
  /** the true instant from t0 on at which CLOCK_MONOTONIC reaches e (t0 itself if it already has) */
  whenMono(tk: TimekeepingState, t0: bigint, e: bigint): bigint;
}

export function runClocks(clocks: GuestClocks, tk: TimekeepingState, resumeTime: bigint): RunClocks {
  const rate = clocks.ktimeGet(tk, resumeTime + NSEC_PER_SEC) - clocks.ktimeGet(tk, resumeTime);
  const ratePerS = rate > 0n ? rate : NSEC_PER_SEC;
  return {
    ...clocks,
    resumeTime,
    ratePerS,
    whenMono: (tk, t0, e) => {
      const m = clocks.ktimeGet(tk, t0);
      return e <= m ? t0 : t0 + ((e - m) * NSEC_PER_SEC + ratePerS - 1n) / ratePerS;
    },
  };
}

/** The guest's clocks before the stop, as the VM's states in force then give them. */
export interface ClocksBeforeStop {
  /** the guest began running on this VM here: its clocks before are not the guest's */
  runningSince: bigint;
  stopTime: bigint;
  /** the span [from, until) of the VM state in force at t (until null: that state holds to the stop) */
  spanAt(t: bigint): { from: bigint; until: bigint | null };
}

/**
 * The first instant, between the guest's first run on this VM and the stop, at which its
 * CLOCK_MONOTONIC (`mono`, read through the state in force then; `monoAtStop` at the stop)
 * reached e: searched from the
 * estimate that the clock ran at true time's rate back from the stop, span by span where the VM's
 * clocks were written in between (a restore's KVM_SET_CLOCK after its KVM_RUN).
 */
export function monoReachedAt(mono: (t: bigint) => bigint, before: ClocksBeforeStop, monoAtStop: bigint, e: bigint): bigint {
  const { runningSince: lo, stopTime } = before;
  const est = stopTime - (monoAtStop - e);
  let t = est < lo ? lo : est > stopTime ? stopTime : est;
  for (let guard = 0; guard < 256; guard++) {
    const span = before.spanAt(t);
    const from = span.from < lo ? lo : span.from;
    const until = span.until ?? stopTime + 1n;
    if (mono(t) >= e) {
      if (t === from) {
        if (t === lo || mono(t - 1n) < e) return t;
        t -= 1n; // reached in an earlier span
        continue;
      }
      if (mono(from) >= e) {
        t = from;
        continue;
      }
    } else if (mono(until - 1n) < e) {
      if (span.until === null) return stopTime;
      t = span.until; // not in this span: a later one
      continue;
    }
    // within [from, until): the clock runs at about true time's rate here; settle to the first ns
    let c = t;
    for (let i = 0; i < 64; i++) {
      const d = e - mono(c);
      if (d === 0n) break;
      const next = c + d;
      c = next < from ? from : next >= until ? until - 1n : next;
      if (d > 0n && mono(c) >= e) break;
    }
    while (c < until - 1n && mono(c) < e) c++;
    while (c > from && mono(c - 1n) >= e) c--;
    return c;
  }
  return t;
}
