// The Linux guest's own timekeeping around a stop and a resume, simulated from the clocks it
// reads through the emulated kernel: its clocksource and the clocksource watchdog
// (cs-watchdog.ts), the soft-lockup detector (softlockup.ts) and the RCU stall detector
// (rcu-stall.ts), both touched through kvm_check_and_clear_guest_paused() (pvclock.ts), a
// periodic sleeper on vCPU 0 (sleeper.ts), and CLOCK_REALTIME under an NTP client (ntp.ts). Each
// keeps a plain state (state.ts); this composes them: the state at the stop, the timers in the
// kernel's order (timers.ts) from the resume to the horizon, then the wall clock. Pure and
// deterministic: the same input gives the same log.
import { bootLines } from './boot.js';
import { guestClocks, runClocks, timekeepingInit, type GuestClocks, type GuestLogEntry, type Printk } from './clocks.js';
import { clocksourceWatchdog, clocksourceWatchdogArmed, clocksourceWatchdogConfig, type ClocksourceWatchdogConfig, type WatchdogRun } from './cs-watchdog.js';
import { wallClockCurve } from './ntp.js';
import { kvmCheckAndClearGuestPaused, pvclockTouchWatchdogs, type GuestStoppedFlag, type GuestStoppedFound } from './pvclock.js';
import { checkCpuStall, type RcuStall } from './rcu-stall.js';
import type { GuestSettings } from './settings.js';
import { sleeperFiresAt, sleeperWake, type SleeperWake } from './sleeper.js';
import { softlockupHrtimerForward, watchdogTimerFn, type SoftLockup } from './softlockup.js';
import { guestClocksources, guestStateAtStop, type GuestState } from './state.js';
import { nextTimer, type Timer } from './timers.js';
import type { GuestInput, GuestReport } from './types.js';

export type { GuestInput, GuestLogEntry, GuestReading, GuestReport, WatchdogRun } from './types.js';

/** The wake-ups a report follows after a resume: the sleeper is not simulated past them. */
const SLEEPER_WAKES = 4;

/** Simulate the guest across one stop and resume. */
export function simulateGuest(inp: GuestInput, s: GuestSettings): GuestReport {
  const clocksources = guestClocksources(inp, s);
  if (!clocksources.length) throw new RangeError('the guest registers no clocksource the model emulates (tsc=unstable without kvmclock)');
  // kvm_sched_clock_init(): kvm_sched_clock_offset = kvm_clock_read() on the boot CPU at boot; a
  // guest that booted on an earlier VM of its life kept the offset it took there
  const boot = inp.kvmclock && inp.vcpus.length ? (inp.boot ?? null) : null;
  const carriedBoot = inp.kvmclock && inp.vcpus.length && !boot ? (inp.carried?.boot ?? null) : null;
  const schedOffset = boot ? (inp.read(boot.timeNs, inp.vcpus[0]!).kvmclock ?? 0n) : (carriedBoot?.schedOffset ?? 0n);
  const clocks = guestClocks(inp.read, inp.vcpus, clocksources, schedOffset);
  const watchdog = clocksourceWatchdogConfig(clocks.clocksources, s);
  const printer =
    (into: GuestLogEntry[]): Printk =>
    (t, cpu, text) =>
      into.push({ timeNs: t, guestNs: clocks.localClock(t, cpu), vcpu: cpu, text }) - 1;
  const log: GuestLogEntry[] = [];
  const printk = printer(log);
  const bootLog: GuestLogEntry[] = [];
  if (boot) bootLines(boot, clocks, s, printer(bootLog));
  const before = inp.carried?.clocksource ?? timekeepingInit(clocks.clocksources, s.clocksource).clocksource;
  const report: GuestReport = {
    kernel: s.kernel,
    clocksource: {
      before,
      after: before,
      watchdog: watchdog.watchdog && watchdog.watched.length ? watchdog.watchdog.name : null,
      ratings: Object.fromEntries(clocks.clocksources.map((c) => [c.name, c.rating])),
      marginNs: watchdog.rules.marginNs,
      marginIs: watchdog.rules.marginIs,
    },
    log,
    boot: boot ? { timeNs: boot.timeNs, schedOffset, log: bootLog } : carriedBoot ? { timeNs: carriedBoot.timeNs, schedOffset, log: [] } : null,
    watchdogRuns: [],
    guestStopped: [],
    softLockups: [],
    rcuStalls: [],
    wallClock: { client: s.ntp.client, curve: [], convergedAt: null },
    sleeper: { vcpu: inp.vcpus[0] ?? 0, periodNs: s.sleeperPeriodNs, wakes: [], maxLateNs: null, stuck: false },
  };
  if (inp.resumeTime === null || !inp.vcpus.length) return report;

  const { state: atStop, monoAtStop } = guestStateAtStop(inp, s, clocks, watchdog);
  const resume = inp.resumeTime;
  const host = { guestStopped: [...inp.guestStopped].map(([vcpu, position]) => ({ vcpu, position })), lapicFiresAt: inp.deadline?.firesAt ?? null };
  const run = runGuest(atStop, { clocks, resume, until: resume + s.horizonNs, host, watchdog, settings: s, printk });
  report.clocksource.after = run.state.timekeeping.clocksource;
  report.watchdogRuns = run.watchdogRuns;
  report.guestStopped = run.guestStopped;
  report.softLockups = run.softLockups;
  report.rcuStalls = run.rcuStalls;
  const { sleeper } = report;
  sleeper.wakes = run.wakes;
  // the LAPIC deadline armed across the stop never fired within the horizon
  sleeper.stuck = atStop.sleeper.lapicDeadline && run.wakes.length === 0;
  if (sleeper.stuck) sleeper.wakes.push({ expiresNs: atStop.sleeper.expiresNs, timeNs: null, lateNs: null, lapicDeadline: true });
  const latest = (a: bigint | null, w: SleeperWake) => (w.lateNs !== null && (a === null || w.lateNs > a) ? w.lateNs : a);
  sleeper.maxLateNs = sleeper.stuck ? null : run.wakes.reduce<bigint | null>(latest, null);
  const mono = (t: bigint) => clocks.ktimeGet(run.state.timekeeping, t);
  report.wallClock = wallClockCurve(atStop.ntp, { stopTime: inp.stopTime, resumeTime: resume, monoAtStop, mono, realtime: inp.realtime }, s);
  return report;
}

/** What the host did that the guest finds once resumed. */
export interface HostAtResume {
  /** the vCPUs whose pvclock page holds PVCLOCK_GUEST_STOPPED */
  guestStopped: GuestStoppedFlag[];
  /** when KVM fires the LAPIC TSC deadline armed across the stop (null: never) */
  lapicFiresAt: bigint | null;
}

/** A run of the guest from a resume: its state at the end, and what its detectors did. */
export interface GuestRun {
  /** the state at `until` (the sleeper's as of its last wake-up followed) */
  state: GuestState;
  /** the watchdog's checks (past the first two clean ones, clean checks are not listed) */
  watchdogRuns: WatchdogRun[];
  guestStopped: GuestStoppedFound[];
  softLockups: SoftLockup[];
  rcuStalls: RcuStall[];
  /** the sleeper's first wake-ups */
  wakes: SleeperWake[];
}

/** What a run works with besides the guest's state. */
export interface GuestRunEnv {
  clocks: GuestClocks;
  resume: bigint;
  until: bigint;
  host: HostAtResume;
  watchdog: ClocksourceWatchdogConfig;
  settings: GuestSettings;
  printk: Printk;
}

type GuestTimer = Timer<'tick' | 'softlockup' | 'sleeper' | 'clocksource-watchdog'>;

/** The guest from the resume to `until`: its timers in the kernel's order, each detector's handler on its own state. */
export function runGuest(start: GuestState, env: GuestRunEnv): GuestRun {
  const { resume, until, host, watchdog, settings: s, printk } = env;
  const clocks = runClocks(env.clocks, start.timekeeping, resume);
  const bootCpu = clocks.cpus[0]!;
  let g = start;
  let flags = host.guestStopped;
  const out: GuestRun = { state: g, watchdogRuns: [], guestStopped: [], softLockups: [], rcuStalls: [], wakes: [] };
  /** kvm_check_and_clear_guest_paused() on a CPU: the flag found touches every detector (pvclock_touch_watchdogs()) */
  const guestPaused = (cpu: number, t: bigint, by: GuestStoppedFound['by']): boolean => {
    const found = kvmCheckAndClearGuestPaused(flags, cpu);
    if (found.position === null) return false;
    flags = found.flags;
    g = pvclockTouchWatchdogs(g, cpu);
    out.guestStopped.push({ vcpu: cpu, timeNs: t, by, position: found.position });
    return true;
  };

  const tk = g.timekeeping;
  const tick: GuestTimer = { id: 'tick', context: 'hardirq', firesAt: resume }; // the first tick after the resume
  const softlockup: GuestTimer = { id: 'softlockup', context: 'hardirq', firesAt: clocks.whenMono(tk, resume, g.softlockup.expiresNs) };
  const sleeper: GuestTimer = { id: 'sleeper', context: 'hardirq', firesAt: sleeperFiresAt(g.sleeper, clocks, tk, host.lapicFiresAt) };
  const csWatchdog: GuestTimer = {
    id: 'clocksource-watchdog',
    context: 'softirq',
    firesAt: clocksourceWatchdogArmed(watchdog, tk) ? clocks.whenMono(tk, resume, g.clocksourceWatchdog.expiresNs) : null,
  };
  const timers = [tick, softlockup, sleeper, csWatchdog];
  let quietRuns = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    const timer = nextTimer(timers, until);
    if (!timer) break;
    const t = timer.firesAt!;
    switch (timer.id) {
      case 'tick': {
        // rcu_sched_clock_irq() → check_cpu_stall(): the grace period in flight since the stop
        const mono = clocks.ktimeGet(g.timekeeping, t);
        const stall = checkCpuStall(g.rcu, t, bootCpu, mono, s, clocks.cpus.length, () => guestPaused(bootCpu, t, 'rcu'), printk);
        if (stall) out.rcuStalls.push(stall);
        tick.firesAt = null; // later ticks see nothing new: the jump is at the resume
        break;
      }
      case 'softlockup': {
        // watchdog_timer_fn() on every CPU: its kvm_check_and_clear_guest_paused() first, then the check
        for (const cpu of clocks.cpus) {
          guestPaused(cpu, t, 'softlockup');
          const fn = watchdogTimerFn(g.softlockup, t, cpu, clocks, s, printk);
          g = { ...g, softlockup: fn.state };
          if (fn.lockup) out.softLockups.push(fn.lockup);
        }
        g = { ...g, softlockup: softlockupHrtimerForward(g.softlockup, t, clocks, g.timekeeping, s) };
        softlockup.firesAt = clocks.whenMono(g.timekeeping, t, g.softlockup.expiresNs);
        break;
      }
      case 'sleeper': {
        const woke = sleeperWake(g.sleeper, t, bootCpu, clocks, g.timekeeping, s.sleeperPeriodNs);
        g = { ...g, sleeper: woke.state };
        out.wakes.push(woke.wake);
        sleeper.firesAt = out.wakes.length < SLEEPER_WAKES ? clocks.whenMono(g.timekeeping, t, woke.state.expiresNs) : null;
        break;
      }
      case 'clocksource-watchdog': {
        const wd = clocksourceWatchdog(g.clocksourceWatchdog, g.timekeeping, t, clocks, watchdog, printk);
        g = { ...g, clocksourceWatchdog: wd.state, timekeeping: wd.timekeeping };
        for (const r of wd.runs) if (r.outcome !== 'ok' || quietRuns++ < 2) out.watchdogRuns.push(r);
        csWatchdog.firesAt = clocksourceWatchdogArmed(watchdog, g.timekeeping) ? wd.firesAt : null;
        break;
      }
    }
  }
  out.state = g;
  return out;
}
