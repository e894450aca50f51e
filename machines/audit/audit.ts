// The audit of a migration, from the log alone: the guest clocks rebuilt at the stop and at the
// resume, compared with true elapsed time, and the findings they predict for the guest, each
// citing the recorded events that caused it. One frame for every architecture (frame.ts), a
// measurement per architecture (measure-x86.ts, measure-arm64.ts), one table of rules (rules.ts)
// and one report (report.ts).
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import type { EventStore } from '../../store/types.js';
import type { EvolveOptions } from '../vm/evolve.js';
import { guestSettings, type GuestOverrides } from '../guest/settings.js';
import { frameOf } from './frame.js';
import { guestOf } from './guest.js';
import { measureArm64 } from './measure-arm64.js';
import { measureX86 } from './measure-x86.js';
import { buildReport, type AuditReport } from './report.js';
import { judge } from './rules.js';
import { logAuditSource, type AuditSource } from './source.js';
import { DEFAULT_THRESHOLDS, type AuditThresholds } from './thresholds.js';

export type { Arm64Audit, AuditReport, Finding, Severity, VcpuAudit, Verdict } from './report.js';
export { worstError } from './magnitudes.js';
export { guestTscHz, guestTscTickHz, pvclockDriftPpb } from './measure-x86.js';

/** What an audit asks, wherever it reads the log from: the migration, threshold overrides, evolve options. */
type AuditArgs = [migrationId: string, thresholds?: AuditOverrides, opts?: EvolveOptions];

/** Threshold overrides, and the simulated guest's settings (`guest`). */
export type AuditOverrides = Partial<AuditThresholds> & { guest?: GuestOverrides };

/**
 * The guest settings a request asks for: the old thresholds that judged the guest's reactions
 * (THRESHOLD_TO_GUEST) become the guest settings they stand for; a `guest` value given too wins.
 */
export function guestSettingsOf(th: Partial<AuditThresholds>, guest: GuestOverrides = {}): GuestOverrides {
  const mapped: GuestOverrides = {};
  for (const k of ['watchdogMarginNs', 'watchdogIntervalNs', 'watchdogMaxIntervalNs'] as const) if (th[k] !== undefined) mapped[k] = th[k];
  // softLockupNs = 2 × watchdog_thresh: the nearest whole second of its half, within the kernel's 1..60
  if (th.softLockupNs !== undefined) {
    const s = Number((th.softLockupNs + NSEC_PER_SEC) / (2n * NSEC_PER_SEC));
    mapped.watchdogThreshS = Math.min(60, Math.max(1, s));
  }
  return { ...mapped, ...guest };
}

/** Audit one migration from the log (optionally as it would have gone under another kernel profile). */
export function auditMigration(store: EventStore, ...args: AuditArgs): AuditReport | null {
  return auditFrom(logAuditSource(store, args[2] ?? {}), ...args);
}

/** Audit one migration from what a source holds of the log. */
export function auditFrom(src: AuditSource, ...[migrationId, thresholds = {}, opts = {}]: AuditArgs): AuditReport | null {
  const { guest: guestOverrides, ...rest } = thresholds;
  const settings = guestSettings(guestSettingsOf(rest, guestOverrides));
  // tsc_jump's fail severity stays at 2 × watchdog_thresh, the guest's
  const th = { ...DEFAULT_THRESHOLDS, ...rest, softLockupNs: BigInt(settings.watchdogThreshS) * 2n * NSEC_PER_SEC };
  const f = frameOf(src, migrationId);
  if (!f) return null;
  const m = f.before.rec.arm64 ? measureArm64(f, th) : measureX86(f);
  const g = guestOf(f, settings);
  return buildReport(f, m, judge(f, m, th, g, settings), opts, g);
}
