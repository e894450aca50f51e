// The findings the guest model gives: each is a simulated guest event (a kernel message, a
// wake-up, an NTP correction), citing the guest log entries it printed (guestLog) and the recorded
// events whose clocks the guest read (positions).
import type { GuestReport } from '../guest/model.js';
import type { AuditFrame } from './frame.js';
import { fmtNs } from './format.js';
import type { Measurement } from './measure.js';
import type { Finding } from './report.js';
import type { FindingCode } from './thresholds.js';

/** [   12.345678] : printk's timestamp of a guest ns */
export function dmesgStamp(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const us = (ns % 1_000_000_000n) / 1000n;
  return `[${String(s).padStart(5, ' ')}.${String(us).padStart(6, '0')}]`;
}

export const GUEST_RULES: { code: FindingCode; condition: string }[] = [
  { code: 'guest_clocksource_unstable', condition: "the simulated clocksource watchdog found the watched clocksource's interval off the watchdog's by more than the kernel version's margin (guest.clocksource.marginNs) and marked it unstable (fail)" },
  { code: 'guest_soft_lockup', condition: 'the simulated soft-lockup detector printed "BUG: soft lockup" on one or more CPUs (fail)' },
  { code: 'guest_rcu_stall', condition: 'the simulated RCU stall detector reported a stall (fail)' },
  { code: 'guest_sleeper_stuck', condition: "the sleeper's pending LAPIC TSC deadline fired more than 1 s late, or not within the horizon (fail)" },
  { code: 'guest_wall_clock', condition: "the guest's CLOCK_REALTIME is more than 1 ms off at the resume: how and when the NTP client corrects it (warn)" },
];

/** The guest model's findings. */
export function judgeGuest(f: AuditFrame, m: Measurement, g: GuestReport | null): Finding[] {
  if (!g || !f.after) return [];
  const out: Finding[] = [];
  const writes = [...new Set([...m.cites.counterWrites, ...m.cites.kvmclockWrites, ...m.cites.kvmclockCtrl])].sort((a, b) => a - b);
  const at = (i: number) => dmesgStamp(g.log[i]!.guestNs);
  g.watchdogRuns.forEach((r) => {
    if (r.outcome !== 'unstable') return;
    const first = g.log.findIndex((e) => e.timeNs === r.timeNs && e.text.includes(`Marking clocksource '${r.clocksource}'`));
    const idx = g.log.map((_, i) => i).filter((i) => i >= first && g.log[i]!.timeNs === r.timeNs);
    out.push({
      code: 'guest_clocksource_unstable',
      severity: 'fail',
      message: `${at(first)} the guest's clocksource watchdog on CPU${r.vcpu} marks '${r.clocksource}' unstable: it advanced ${r.csNsec} ns against ${r.wdNsec} ns of '${r.watchdog}', a ${fmtNs(r.csNsec! - r.wdNsec!)} skew beyond the ${fmtNs(g.clocksource.marginNs)} margin of a ${g.kernel} guest; clocksource ${g.clocksource.before} → ${g.clocksource.after}`,
      positions: writes,
      guestLog: idx,
    });
  });
  if (g.softLockups.length) {
    const l = g.softLockups;
    out.push({
      code: 'guest_soft_lockup',
      severity: 'fail',
      message: `${at(l[0]!.log[0]!)} BUG: soft lockup on ${l.map((x) => `CPU#${x.vcpu} (${x.stuckS}s)`).join(', ')}: the clock jumped without PVCLOCK_GUEST_STOPPED on ${l.length === 1 ? 'that vCPU' : 'those vCPUs'}`,
      positions: writes,
      guestLog: l.flatMap((x) => x.log),
    });
  }
  for (const s of g.rcuStalls) {
    out.push({
      code: 'guest_rcu_stall',
      severity: 'fail',
      message: `${at(s.log[0]!)} rcu_preempt self-detected stall on CPU ${s.vcpu}: jiffies jumped ${s.jiffies} (${fmtNs((s.jiffies * 1_000_000_000n) / 250n)}) at the resume`,
      positions: writes,
      guestLog: s.log,
    });
  }
  const w = g.sleeper.wakes[0];
  if (w?.lapicDeadline && (w.lateNs === null || w.lateNs > 1_000_000_000n)) {
    out.push({
      code: 'guest_sleeper_stuck',
      severity: 'fail',
      message:
        w.lateNs === null
          ? `the sleeper on vCPU ${g.sleeper.vcpu} waits on a LAPIC TSC deadline that does not fire within the simulated horizon: stuck`
          : `the sleeper on vCPU ${g.sleeper.vcpu} wakes ${fmtNs(w.lateNs)} late: its LAPIC TSC deadline was armed against another TSC`,
      positions: m.cites.counterWrites,
      guestLog: [],
    });
  }
  const c = g.wallClock.curve.find((p) => p.at === 'resume');
  if (c && (c.errorNs > 1_000_000n || c.errorNs < -1_000_000n)) {
    const fix = g.wallClock.curve.find((p) => p.at === 'step') ? 'steps it' : g.wallClock.curve.find((p) => p.at === 'slewed') ? 'slews it' : 'does not correct it';
    const upd = g.wallClock.curve.find((p) => p.at.startsWith('ntp update'));
    out.push({
      code: 'guest_wall_clock',
      severity: 'warn',
      message: `the guest's CLOCK_REALTIME is ${fmtNs(c.errorNs)} off at the resume; ${g.wallClock.client === 'none' ? 'no NTP client corrects it' : `${g.wallClock.client} ${fix}${upd ? ` at its ${upd.at} (${fmtNs(upd.timeNs - f.after.time)} after the resume)` : ''}${g.wallClock.convergedAt !== null ? `, within 1 ms ${fmtNs(g.wallClock.convergedAt - f.after.time)} after the resume` : ''}`}`,
      positions: writes,
      guestLog: [],
    });
  }
  return out;
}
