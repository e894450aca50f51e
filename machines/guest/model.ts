// The Linux guest's own timekeeping around a stop and a resume, simulated from the clocks it
// reads through the emulated kernel: its clocksource and the clocksource watchdog
// (kernel/time/clocksource.c), CLOCK_MONOTONIC and CLOCK_REALTIME with an NTP client, the
// soft-lockup detector (kernel/watchdog.c) and the RCU stall detector (kernel/rcu/tree_stall.h),
// both touched through kvm_check_and_clear_guest_paused(), and a periodic sleeper on a
// TSC-deadline LAPIC timer. Pure and deterministic: the same input gives the same log.
import {
  arm64Clocksources,
  clocksourceCyc2ns,
  clocksourceDelta,
  clocksourceSelect,
  clocksourceSelectWatchdog,
  watchdogRules,
  x86Clocksources,
  type Clocksource,
} from './clocksource.js';
import { wallClockCurve, type WallClock } from './ntp.js';
import type { GuestSettings } from './settings.js';
import { NSEC_PER_SEC } from '../../kvm/arith.js';

/** What the guest reads on one vCPU at a true instant: its counter (TSC or CNTVCT) and kvmclock (x86, once enabled). */
export interface GuestReading {
  counter: bigint;
  kvmclock: bigint | null;
}

/** The guest as the audit hands it over: every input is rebuilt from the log. */
export interface GuestInput {
  arch: 'x86' | 'arm64';
  vcpus: number[];
  /** the guest's counter rate: x86 tsc_khz × 1000 (the boot vCPU's virtual TSC), arm64 CNTFRQ */
  counterHz: bigint;
  /** x86: the guest enabled kvmclock on its boot vCPU */
  kvmclock: boolean;
  stopTime: bigint;
  /** the instant the guest began running on the stopped VM (every vCPU in KVM_RUN): a VM a migration created runs from that migration's resume, and its clocks before then are not the guest's */
  runningSince: bigint;
  /** null: nothing resumed (in flight) */
  resumeTime: bigint | null;
  /**
   * the guest's clocks on a vCPU at true time t, through the emulated kernel on the VM state in
   * force at t (before the stop: the state after the VM's last event at or before t; from the
   * resume: the resumed side as it resumed)
   */
  read(t: bigint, vcpu: number): GuestReading;
  /** before the stop: the span [from, until) of the VM state in force at t (until null: that state holds to the stop) */
  spanAt(t: bigint): { from: bigint; until: bigint | null };
  /** true wall-clock time at t (the host's CLOCK_REALTIME on the side the guest runs on) */
  realtime(t: bigint): bigint;
  /** x86: per vCPU, the log position of the guest read that found PVCLOCK_GUEST_STOPPED after the resume */
  guestStopped: Map<number, number>;
  /** x86: the boot vCPU's LAPIC TSC-deadline timer, if the guest had one armed as the stop began */
  deadline: { tscDeadline: bigint; firesAt: bigint | null; positions: number[] } | null;
}

export interface GuestLogEntry {
  /** the true instant (ns of the ledger's time axis) */
  timeNs: bigint;
  /** the guest's printk timestamp (its sched_clock, ns) */
  guestNs: bigint;
  vcpu: number;
  text: string;
}

export interface WatchdogRun {
  timeNs: bigint;
  vcpu: number;
  clocksource: string;
  watchdog: string;
  csNsec: bigint | null;
  wdNsec: bigint | null;
  outcome: 'init' | 'reset' | 'ok' | 'long-interval' | 'unstable';
}

export interface GuestReport {
  kernel: string;
  clocksource: {
    before: string;
    after: string;
    watchdog: string | null;
    ratings: Record<string, number>;
    marginNs: bigint;
    marginIs: string;
  };
  log: GuestLogEntry[];
  /** the clocksource watchdog's runs from the last before the stop to the horizon (runs that only re-checked a clean interval after the first are counted, not listed) */
  watchdogRuns: WatchdogRun[];
  /** vCPUs on which the guest found PVCLOCK_GUEST_STOPPED and touched its watchdogs, and where */
  guestStopped: { vcpu: number; timeNs: bigint; by: 'softlockup' | 'rcu'; position: number }[];
  softLockups: { vcpu: number; timeNs: bigint; stuckS: number; log: number[] }[];
  rcuStalls: { vcpu: number; timeNs: bigint; jiffies: bigint; log: number[] }[];
  wallClock: WallClock;
  sleeper: {
    vcpu: number;
    periodNs: bigint;
    /** the first wake-ups after the resume: the CLOCK_MONOTONIC expiry, the true instant, and how late the guest sees it */
    wakes: { expiresNs: bigint; timeNs: bigint | null; lateNs: bigint | null; lapicDeadline: boolean }[];
    /** the worst lateness (null: a wake-up still pending at the horizon) */
    maxLateNs: bigint | null;
    /** the LAPIC deadline was armed and never fired within the horizon */
    stuck: boolean;
  };
}

const HZ = 250n;
const TICK_NS = NSEC_PER_SEC / HZ;
/** CLOCKSOURCE_MASK(64): kvm-clock's and the TSC's */
const MASK64 = (1n << 64n) - 1n;
const MASK = MASK64.toString(16);
const hex = (v: bigint) => BigInt.asUintN(64, v).toString(16);
const abs = (x: bigint) => (x < 0n ? -x : x);
/** div_s64(): truncation toward zero, as C's / does */
const divTrunc = (a: bigint, b: bigint) => a / b;

/** Simulate the guest across one stop and resume. */
export function simulateGuest(inp: GuestInput, s: GuestSettings): GuestReport {
  const list: Clocksource[] = inp.arch === 'x86' ? x86Clocksources(s, Number(inp.counterHz / 1000n), inp.kvmclock) : arm64Clocksources(inp.counterHz);
  const ratings = Object.fromEntries(list.map((c) => [c.name, c.rating]));
  const kernelRules = watchdogRules(s.kernel, s.watchdogMaxSkewUs);
  const rules = {
    ...kernelRules,
    ...(s.watchdogMarginNs !== undefined ? { marginNs: s.watchdogMarginNs, marginIs: 'set (watchdogMarginNs)' } : {}),
    ...(s.watchdogMaxIntervalNs !== undefined ? { maxIntervalNs: s.watchdogMaxIntervalNs } : {}),
  };
  const WATCHDOG_INTERVAL_NS = s.watchdogIntervalNs;
  const unstable = new Set<string>();
  let cur = clocksourceSelect(list, s.clocksource);
  const before = cur.name;
  const wd = clocksourceSelectWatchdog(list);
  const watched = wd ? list.filter((c) => c.mustVerify) : [];
  const schedCs = list.find((c) => c.name === 'kvm-clock') ?? list[0]!;
  const ncpu = inp.vcpus.length;
  const log: GuestLogEntry[] = [];

  const raw = (c: Clocksource, t: bigint, cpu: number): bigint => {
    const r = inp.read(t, cpu);
    return c.name === 'kvm-clock' ? r.kvmclock ?? 0n : r.counter;
  };
  const nsOf = (c: Clocksource, t: bigint, cpu: number) => clocksourceCyc2ns(raw(c, t, cpu), c.mult, c.shift);
  /** local_clock(): the printk timestamp and the lockup detector's clock (kvm_sched_clock_read with kvmclock) */
  const sched = (t: bigint, cpu: number) => nsOf(schedCs, t, cpu);
  let monoOff = 0n;
  /** ktime_get(): CLOCK_MONOTONIC from the current clocksource (the boot vCPU's reading) */
  const mono = (t: bigint) => nsOf(cur, t, inp.vcpus[0]!) + monoOff;
  const printk = (t: bigint, cpu: number, text: string): number => {
    log.push({ timeNs: t, guestNs: sched(t, cpu), vcpu: cpu, text });
    return log.length - 1;
  };

  const Ms = mono(inp.stopTime);

  /**
   * The first instant, between the guest's first run on this VM and the stop, at which its
   * CLOCK_MONOTONIC (read through the state in force then) reached e: searched from the estimate
   * that the clock ran at true time's rate back from the stop, span by span where the VM's clocks
   * were written in between (a restore's KVM_SET_CLOCK after its KVM_RUN).
   */
  function monoReachedAt(e: bigint): bigint {
    const lo = inp.runningSince;
    const est = inp.stopTime - (Ms - e);
    let t = est < lo ? lo : est > inp.stopTime ? inp.stopTime : est;
    for (let guard = 0; guard < 256; guard++) {
      const span = inp.spanAt(t);
      const from = span.from < lo ? lo : span.from;
      const until = span.until ?? inp.stopTime + 1n;
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
        if (span.until === null) return inp.stopTime;
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

  const report: GuestReport = {
    kernel: s.kernel,
    clocksource: { before, after: before, watchdog: wd && watched.length ? wd.name : null, ratings, marginNs: rules.marginNs, marginIs: rules.marginIs },
    log,
    watchdogRuns: [],
    guestStopped: [],
    softLockups: [],
    rcuStalls: [],
    wallClock: { client: s.ntp.client, curve: [], convergedAt: null },
    sleeper: { vcpu: inp.vcpus[0] ?? 0, periodNs: s.sleeperPeriodNs, wakes: [], maxLateNs: null, stuck: false },
  };
  if (inp.resumeTime === null || !ncpu) return report;
  const R = inp.resumeTime;
  const horizon = R + s.horizonNs;
  const Mr = mono(R);
  // CLOCK_MONOTONIC's rate once resumed (ns per true second): a guest counter on a host of another
  // rate (arm64 CNTFRQ, x86 catch-up) runs its timers at that rate
  const ratePerS = (() => {
    const r = mono(R + NSEC_PER_SEC) - Mr;
    return r > 0n ? r : NSEC_PER_SEC;
  })();
  /** the true instant after t0 at which CLOCK_MONOTONIC reaches e (t0 itself if it already has) */
  const whenMono = (t0: bigint, e: bigint) => {
    const m = mono(t0);
    return e <= m ? t0 : t0 + ((e - m) * NSEC_PER_SEC + ratePerS - 1n) / ratePerS;
  };
  /** the true instant a timer expiring at CLOCK_MONOTONIC e fires once resumed (at once if already expired) */
  const fireAt = (e: bigint) => whenMono(R, e);

  // --- the stop: each detector's state as the guest left it ---
  // clocksource watchdog: runs at k × 0.5 s since boot, the k-th on CPU (k − 1) mod n; the first initialises
  const k0 = Ms / WATCHDOG_INTERVAL_NS;
  let wdRun = k0;
  const last = new Map<string, { cs: bigint; wd: bigint }>();
  if (k0 >= 1n && wd) {
    // its readings as the timer fired, once the guest's clock had reached k0 × 0.5 s while it ran
    // on this VM (an expiry in an earlier blackout fires as the guest runs again), through the
    // state in force then: a clock KVM wrote later is not what it read
    const tL = monoReachedAt(k0 * WATCHDOG_INTERVAL_NS);
    const cpu = inp.vcpus[Number((k0 - 1n) % BigInt(ncpu))]!;
    for (const c of watched) last.set(c.name, { cs: raw(c, tL, cpu), wd: raw(wd, tL, cpu) });
  }
  let wdExpires = (k0 + 1n) * WATCHDOG_INTERVAL_NS;
  let resetPending = 0;
  let wdMaxInterval = 0n;
  // soft-lockup detector: its hrtimer every 2 × thresh / 5 s; touch_ts (s, as running_clock() >> 30) at its last run
  const periodNs = (BigInt(s.watchdogThreshS) * 2n * NSEC_PER_SEC) / 5n;
  const threshS = BigInt(s.watchdogThreshS) * 2n;
  const SchedStop = sched(inp.stopTime, inp.vcpus[0]!);
  const touch = new Map<number, bigint>();
  const delayReport = new Set<number>();
  for (const v of inp.vcpus) touch.set(v, ((SchedStop / periodNs) * periodNs) >> 30n);
  let lockupExpires = (Ms / periodNs + 1n) * periodNs;
  // PVCLOCK_GUEST_STOPPED, found once per vCPU by kvm_check_and_clear_guest_paused()
  const stoppedFlag = new Map(inp.guestStopped);
  let rcuReset = false;
  /** kvm_check_and_clear_guest_paused() → pvclock_touch_watchdogs() */
  const kvmCheckAndClearGuestPaused = (cpu: number, t: bigint, by: 'softlockup' | 'rcu'): boolean => {
    const position = stoppedFlag.get(cpu);
    if (position === undefined) return false;
    stoppedFlag.delete(cpu);
    report.guestStopped.push({ vcpu: cpu, timeNs: t, by, position });
    delayReport.add(cpu); // touch_softlockup_watchdog_sync()
    resetPending++; // clocksource_touch_watchdog() → clocksource_resume_watchdog()
    rcuReset = true; // rcu_cpu_stall_reset()
    return true;
  };

  // --- the first tick after the resume: jiffies catch up, RCU's stall check (a grace period in flight since the stop) ---
  const stallJiffies = ((Mr - Ms) * HZ) / NSEC_PER_SEC;
  if (Mr - Ms > BigInt(s.rcuStallTimeoutS) * NSEC_PER_SEC) {
    const cpu = inp.vcpus[0]!;
    // check_cpu_stall(): the host may have stopped the VM
    if (!kvmCheckAndClearGuestPaused(cpu, R, 'rcu') && !rcuReset) {
      const i = printk(R, cpu, 'rcu: INFO: rcu_preempt self-detected stall on CPU');
      report.rcuStalls.push({ vcpu: cpu, timeNs: R, jiffies: stallJiffies, log: [i] });
    }
  }

  // --- the sleeper on the boot vCPU ---
  const sleeperCpu = inp.vcpus[0]!;
  const tscCs = list.find((c) => c.name === 'tsc');
  let sleeperExpires = (Ms / s.sleeperPeriodNs + 1n) * s.sleeperPeriodNs;
  let sleeperAt: bigint | null = fireAt(sleeperExpires);
  let lapic = false;
  if (inp.deadline && tscCs) {
    // the wake-up pending at the stop is the LAPIC deadline: it comes when KVM fires that timer
    lapic = true;
    const deadlineNs = clocksourceCyc2ns(inp.deadline.tscDeadline, tscCs.mult, tscCs.shift);
    sleeperExpires = deadlineNs;
    sleeperAt = inp.deadline.firesAt !== null && inp.deadline.firesAt <= horizon ? (inp.deadline.firesAt < R ? R : inp.deadline.firesAt) : null;
  }

  // --- after the resume: the timers in order (hardirq hrtimers before the softirq timer wheel) ---
  let wdAt = fireAt(wdExpires);
  let lockupAt = fireAt(lockupExpires);
  let quietRuns = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    const candidates: [bigint, number][] = [];
    if (lockupAt <= horizon) candidates.push([lockupAt, 0]);
    if (sleeperAt !== null && sleeperAt <= horizon && report.sleeper.wakes.length < 4) candidates.push([sleeperAt, 1]);
    if (wd && watched.some((c) => !unstable.has(c.name)) && wdAt <= horizon) candidates.push([wdAt, 2]);
    if (!candidates.length) break;
    candidates.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
    const [t, which] = candidates[0]!;
    if (which === 0) {
      // watchdog_timer_fn() on every CPU
      for (const cpu of inp.vcpus) {
        const now = sched(t, cpu) >> 30n;
        kvmCheckAndClearGuestPaused(cpu, t, 'softlockup');
        if (delayReport.has(cpu)) {
          delayReport.delete(cpu);
        } else {
          // is_softlockup()
          const touched = touch.get(cpu)!;
          if (now > touched + threshS) {
            const stuck = now - touched;
            const i = printk(t, cpu, `watchdog: BUG: soft lockup - CPU#${cpu} stuck for ${stuck}s! [swapper/${cpu}:0]`);
            report.softLockups.push({ vcpu: cpu, timeNs: t, stuckS: Number(stuck), log: [i] });
          }
        }
        touch.set(cpu, now); // softlockup_fn() → update_touch_ts()
      }
      lockupExpires = (mono(t) / periodNs + 1n) * periodNs; // hrtimer_forward_now()
      lockupAt = whenMono(t, lockupExpires);
    } else if (which === 1) {
      const m = lapic && tscCs ? clocksourceCyc2ns(inp.read(t, sleeperCpu).counter, tscCs.mult, tscCs.shift) : mono(t);
      report.sleeper.wakes.push({ expiresNs: sleeperExpires, timeNs: t, lateNs: m - sleeperExpires, lapicDeadline: lapic });
      lapic = false;
      sleeperExpires = mono(t) + s.sleeperPeriodNs;
      sleeperAt = whenMono(t, sleeperExpires);
    } else {
      wdRun++;
      const cpu = inp.vcpus[Number((wdRun - 1n) % BigInt(ncpu))]!;
      const pending = resetPending;
      let restartFromNow = false;
      for (const c of watched) {
        if (unstable.has(c.name)) continue;
        const csnow = raw(c, t, cpu);
        const wdnow = raw(wd!, t, cpu);
        const prev = last.get(c.name);
        last.set(c.name, { cs: csnow, wd: wdnow });
        const run: WatchdogRun = { timeNs: t, vcpu: cpu, clocksource: c.name, watchdog: wd!.name, csNsec: null, wdNsec: null, outcome: 'init' };
        if (!prev || pending) {
          run.outcome = prev ? 'reset' : 'init';
          report.watchdogRuns.push(run);
          continue;
        }
        // cycles_to_nsec_safe(): the masked delta through clocksource_delta(), as int64_t
        const wdNsec = BigInt.asIntN(64, clocksourceCyc2ns(clocksourceDelta(wdnow, prev.wd, MASK64, rules.negativeMotion), wd!.mult, wd!.shift));
        const csNsec = BigInt.asIntN(64, clocksourceCyc2ns(clocksourceDelta(csnow, prev.cs, MASK64, rules.negativeMotion), c.mult, c.shift));
        run.csNsec = csNsec;
        run.wdNsec = wdNsec;
        const interval = csNsec > wdNsec ? csNsec : wdNsec;
        if (rules.maxIntervalNs !== null && interval > rules.maxIntervalNs) {
          run.outcome = 'long-interval';
          report.watchdogRuns.push(run);
          if (interval > 2n * wdMaxInterval) {
            wdMaxInterval = interval;
            printk(t, cpu, `clocksource: Long readout interval, skipping watchdog check: cs_nsec: ${csNsec} wd_nsec: ${wdNsec}`);
          }
          restartFromNow = true; // watchdog_timer.expires = jiffies
          continue;
        }
        if (abs(csNsec - wdNsec) > rules.marginNs) {
          run.outcome = 'unstable';
          report.watchdogRuns.push(run);
          clocksourceWatchdogUnstable(t, cpu, c, wd!, { csNsec, wdNsec, csnow, wdnow, cslast: prev.cs, wdlast: prev.wd });
          continue;
        }
        run.outcome = 'ok';
        if (quietRuns++ < 2) report.watchdogRuns.push(run);
      }
      if (pending) resetPending--;
      // watchdog_timer.expires += WATCHDOG_INTERVAL, on the next CPU; an expiry already past fires at the next tick
      if (restartFromNow) wdExpires = (mono(t) / TICK_NS) * TICK_NS;
      wdExpires += WATCHDOG_INTERVAL_NS;
      const due = whenMono(t, wdExpires);
      wdAt = due > t + TICK_NS ? due : t + TICK_NS;
    }
  }

  /** The kernel's lines as the watchdog marks a clocksource unstable, and the reselection that follows. */
  function clocksourceWatchdogUnstable(
    t: bigint,
    cpu: number,
    c: Clocksource,
    w: Clocksource,
    v: { csNsec: bigint; wdNsec: bigint; csnow: bigint; wdnow: bigint; cslast: bigint; wdlast: bigint },
  ): void {
    const pad = 'clocksource:                       ';
    printk(t, cpu, `clocksource: timekeeping watchdog on CPU${cpu}: Marking clocksource '${c.name}' as unstable because the skew is too large:`);
    const wdNsec = rules.nsecLines ? ` wd_nsec: ${v.wdNsec}` : '';
    const csNsec = rules.nsecLines ? ` cs_nsec: ${v.csNsec}` : '';
    printk(t, cpu, `${pad}'${w.name}'${wdNsec} wd_now: ${hex(v.wdnow)} wd_last: ${hex(v.wdlast)} mask: ${MASK}`);
    printk(t, cpu, `${pad}'${c.name}'${csNsec} cs_now: ${hex(v.csnow)} cs_last: ${hex(v.cslast)} mask: ${MASK}`);
    if (rules.skewLine) {
      const skew = v.csNsec - v.wdNsec;
      // div_s64_rem() from e40806e9bcf8; div_u64_rem() before: a negative skew's ms came out as a large positive number
      const ms = (x: bigint) => (rules.skewLineSigned ? divTrunc(x, 1_000_000n) : BigInt.asUintN(64, x) / 1_000_000n);
      printk(t, cpu, `${pad}Clocksource '${c.name}' skewed ${skew} ns (${ms(skew)} ms) over watchdog '${w.name}' interval of ${v.wdNsec} ns (${ms(v.wdNsec)} ms)`);
    }
    if (rules.currentLine) printk(t, cpu, cur === c ? `${pad}'${c.name}' is current clocksource.` : `${pad}'${cur.name}' (not '${c.name}') is current clocksource.`);
    unstable.add(c.name);
    // tsc_cs_mark_unstable()
    if (c.name === 'tsc') printk(t, cpu, 'tsc: Marking TSC unstable due to clocksource watchdog');
    // clocksource_watchdog_kthread(): the per-CPU check of a current clocksource marked unstable, then
    // clocksource_select(): timekeeping moves on, CLOCK_MONOTONIC continuous
    if (rules.verifyPercpu && cur === c && c.verifyPercpu) printk(t, cpu, clocksourceVerifyPercpuLine(c.name, cpu, inp.vcpus));
    const next = clocksourceSelect(list, s.clocksource, unstable);
    if (next !== cur) {
      const m = mono(t);
      cur = next;
      monoOff = m - nsOf(cur, t, inp.vcpus[0]!);
      printk(t, cpu, `clocksource: Switched to clocksource ${cur.name}`);
    }
  }

  report.clocksource.after = cur.name;
  const late = report.sleeper.wakes.map((w) => w.lateNs);
  report.sleeper.stuck = inp.deadline !== null && sleeperAt === null && report.sleeper.wakes.length === 0;
  if (report.sleeper.stuck) report.sleeper.wakes.push({ expiresNs: sleeperExpires, timeNs: null, lateNs: null, lapicDeadline: true });
  report.sleeper.maxLateNs = report.sleeper.stuck ? null : late.reduce<bigint | null>((a, b) => (b !== null && (a === null || b > a) ? b : a), null);
  report.wallClock = wallClockCurve({ stopTime: inp.stopTime, resumeTime: R, monoAtStop: Ms, mono, realtime: inp.realtime }, s);
  return report;
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
