// The findings the guest model gives, as rows of the rule table (rules.ts): each is a simulated
// guest event (kernel messages, a wake-up, an NTP correction), citing the guest log entries it
// printed (guestLog) and the recorded events whose clocks the guest read (positions).
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { nsThreeDecimals, ppbAsPpm } from '../../lib/units.js';
import { HZ } from '../guest/clocks.js';
import type { WatchdogRun } from '../guest/cs-watchdog.js';
import type { GuestSettings } from '../guest/settings.js';
import type { GuestReport } from '../guest/types.js';
import { rule, type Rule, type RuleInput } from './rule.js';

/** [12.345678]: printk's timestamp of a guest ns, unpadded for a message; dmesg pads the seconds to 5 ("[   12.345678]") */
export function dmesgStamp(ns: bigint, secondsWidth = 0): string {
  const s = ns / NSEC_PER_SEC;
  const us = (ns % NSEC_PER_SEC) / 1000n;
  return `[${String(s).padStart(secondsWidth, ' ')}.${String(us).padStart(6, '0')}]`;
}

/** the recorded writes of the guest's clocks: what it read across the stop */
const clockWrites = (_: unknown, { m }: RuleInput) => [...m.cites.counterWrites, ...m.cites.kvmclockWrites, ...m.cites.kvmclockCtrl];
const stamp = (g: GuestReport, i: number) => dmesgStamp(g.log[i]!.guestNs);
/** the RCU flavour a stall line names (rcu_preempt, or rcu_sched without CONFIG_PREEMPT_RCU) */
const rcuFlavour = (g: GuestReport, i: number) => /INFO: (\S+) self-detected/.exec(g.log[i]!.text)?.[1] ?? 'rcu_preempt';

/** the log entries of one unstable run: its first line and those printed with it */
function runLines(g: GuestReport, r: WatchdogRun): number[] {
  const first = g.log.findIndex((e) => e.timeNs === r.timeNs && e.text.includes(`Marking clocksource '${r.clocksource}'`));
  return g.log
    .map((_, i) => i)
    .filter((i) => i >= first && g.log[i]!.timeNs === r.timeNs && !g.log[i]!.text.startsWith('watchdog:') && !g.log[i]!.text.startsWith('rcu:'));
}

/** What marking a clocksource unstable did to the guest's timekeeping. */
function clocksourceOutcome(g: GuestReport, marked: string): string {
  const { before, after } = g.clocksource;
  if (before === marked) return after === marked ? `'${marked}' stays current: nothing to switch to` : `the guest switches from '${marked}' to '${after}'`;
  return `the guest stays on '${before}'`;
}

/** What the guest's NTP client does with the wall-clock error, from the curve the model drew. */
function ntpCorrection(g: GuestReport, gs: GuestSettings, resume: bigint): string {
  const w = g.wallClock;
  if (w.client === 'none') return 'no NTP client corrects it';
  const since = (t: bigint) => `${nsThreeDecimals(t - resume)} after the resume`;
  const updateBefore = (i: number) =>
    w.curve
      .slice(0, i)
      .reverse()
      .find((p) => p.at.startsWith('ntp update'))!;
  const first = w.curve.find((p) => p.at.startsWith('ntp update'));
  if (!first) return `${w.client} does not correct it within the simulation`;
  const at = (p: { at: string; timeNs: bigint }) => `its ${p.at} (${since(p.timeNs)})`;
  const panic = w.curve.findIndex((p) => p.at === 'ntpd exits (panic)');
  if (panic >= 0) {
    return `ntpd exits at ${at(updateBefore(panic))}: the offset is beyond its ${nsThreeDecimals(gs.ntp.panicNs)} panic threshold, and nothing corrects it`;
  }
  const step = w.curve.findIndex((p) => p.at === 'step');
  const spike = w.curve.some((p) => p.at === 'ignored (spike)');
  const tol = nsThreeDecimals(gs.wallClockToleranceNs);
  if (step >= 0) {
    const stepAt = updateBefore(step);
    return spike
      ? `ntpd ignores it as a spike from ${at(first)} and steps it at ${at(stepAt)}, once its ${nsThreeDecimals(gs.ntp.stepoutNs)} stepout has passed`
      : `${w.client} steps it at ${at(stepAt)}`;
  }
  const slews = `${w.client} slews it from ${at(first)}`;
  return w.convergedAt !== null
    ? `${slews}, within ${tol} ${since(w.convergedAt)}`
    : `${slews}, and never brings it within ${tol}: the guest's clock drifts away faster than its ${ppbAsPpm(gs.ntp.maxSlewPpb)} ppm slew`;
}

export const GUEST_RULES: readonly Rule[] = [
  rule({
    code: 'watchdog_tsc_unstable',
    arch: 'x86',
    atResume: true,
    condition:
      "the simulated clocksource watchdog found the watched clocksource's interval off the watchdog's by more than " +
      "the guest kernel's margin (guest.clocksource.marginNs; watchdogMarginNs sets it) and marked it unstable",
    thresholds: ['watchdogMarginNs', 'watchdogIntervalNs', 'watchdogMaxIntervalNs'],
    cases: ({ g }) => (g ? g.watchdogRuns.filter((r) => r.outcome === 'unstable').map((r) => ({ r, g })) : []),
    severity: 'fail',
    message: ({ r, g }) =>
      `${stamp(g, runLines(g, r)[0]!)} the guest's clocksource watchdog on CPU${r.vcpu} marks '${r.clocksource}' unstable: ` +
      `it advanced ${r.csNsec} ns against ${r.wdNsec} ns of '${r.watchdog}', a ${nsThreeDecimals(r.csNsec! - r.wdNsec!)} skew ` +
      `beyond the ${nsThreeDecimals(g.clocksource.marginNs)} margin of a ${g.kernel} guest; ${clocksourceOutcome(g, r.clocksource)}`,
    cites: clockWrites,
    guestLog: ({ r, g }) => runLines(g, r),
  }),
  rule({
    code: 'soft_lockup_risk',
    atResume: true,
    condition:
      'the simulated soft-lockup detector printed "BUG: soft lockup" on one or more CPUs: the clock ' +
      'jumped past 2 × watchdog_thresh (softLockupNs sets it) without PVCLOCK_GUEST_STOPPED on them',
    thresholds: ['softLockupNs'],
    cases: ({ g }) => (g?.softLockups.length ? [g] : []),
    severity: 'fail',
    message: (g) =>
      `${stamp(g, g.softLockups[0]!.log[0]!)} BUG: soft lockup on ${g.softLockups.map((x) => `CPU#${x.vcpu} (${x.stuckS}s)`).join(', ')}: ` +
      `the clock jumped without PVCLOCK_GUEST_STOPPED on ${g.softLockups.length === 1 ? 'that vCPU' : 'those vCPUs'}`,
    cites: clockWrites,
    guestLog: (g) => g.softLockups.flatMap((x) => x.log),
  }),
  rule({
    code: 'guest_rcu_stall',
    atResume: true,
    condition:
      'the simulated RCU stall detector saw jiffies jump past rcu_cpu_stall_timeout since the grace period began, and the CPU found no PVCLOCK_GUEST_STOPPED',
    thresholds: [],
    cases: ({ g }) => (g ? g.rcuStalls.map((s) => ({ s, g })) : []),
    severity: 'fail',
    message: ({ s, g }) =>
      `${stamp(g, s.log[0]!)} ${rcuFlavour(g, s.log[0]!)} self-detected stall on CPU ${s.vcpu}: jiffies jumped ${s.jiffies} ` +
      `(${nsThreeDecimals((s.jiffies * NSEC_PER_SEC) / HZ)}) at the resume`,
    cites: clockWrites,
    guestLog: ({ s }) => s.log,
  }),
  rule({
    code: 'guest_sleeper_stuck',
    arch: 'x86',
    atResume: true,
    condition: "the sleeper's pending LAPIC TSC deadline fired more than 1 s late, or not within the simulated horizon",
    thresholds: [],
    cases: ({ g }) => {
      const w = g?.sleeper.wakes[0];
      return g && w?.lapicDeadline && (w.lateNs === null || w.lateNs > NSEC_PER_SEC) ? [{ g, late: w.lateNs }] : [];
    },
    severity: 'fail',
    message: ({ g, late }) =>
      late === null
        ? `the sleeper on vCPU ${g.sleeper.vcpu} waits on a LAPIC TSC deadline that does not fire within the simulated horizon: stuck`
        : `the sleeper on vCPU ${g.sleeper.vcpu} wakes ${nsThreeDecimals(late)} late: its LAPIC TSC deadline was armed against another TSC`,
    cites: ['counterWrites'],
  }),
  ...(['behind', 'ahead'] as const).map((dir) =>
    rule({
      code: dir === 'behind' ? 'wall_clock_behind' : 'wall_clock_ahead',
      atResume: true,
      condition:
        `the simulated guest's CLOCK_REALTIME is ${dir === 'behind' ? 'behind' : 'ahead of'} ` +
        `true time by more than the guest setting wallClockToleranceNs (1 ms) at the resume`,
      thresholds: [],
      cases: ({ g, gs }) => {
        const c = g?.wallClock.curve.find((p) => p.at === 'resume');
        const tol = gs.wallClockToleranceNs;
        return g && c && (dir === 'behind' ? c.errorNs < -tol : c.errorNs > tol) ? [{ g, error: c.errorNs }] : [];
      },
      severity: 'warn',
      message: ({ g, error }, { f, gs }) =>
        `the guest's CLOCK_REALTIME is ${nsThreeDecimals(error < 0n ? -error : error)} ${dir} at the resume; ${ntpCorrection(g, gs, f.resumeTime)}`,
      cites: clockWrites,
    }),
  ),
];
