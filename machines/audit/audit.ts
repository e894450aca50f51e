// The audit of a migration, from the log alone: the guest clocks rebuilt at the stop and at the
// resume, compared with true elapsed time, and the findings they predict for the guest, each
// citing the recorded events that caused it. One frame for every architecture (frame.ts), a
// measurement per architecture (measure-x86.ts, measure-arm64.ts), one table of rules (rules.ts)
// and one report (report.ts).
import type { EventStore } from '../../store/types.js';
import type { EvolveOptions } from '../vm/evolve.js';
import { carryFor, guestOverridesAt } from '../life/life.js';
import { auditOnce } from './audit-core.js';
import type { AuditOverrides } from './overrides.js';
import type { AuditReport } from './report.js';
import { logAuditSource, type AuditSource } from './source.js';

export type { Arm64Audit, AuditReport, Finding, Severity, VcpuAudit, Verdict } from './report.js';
export { worstError } from './magnitudes.js';
export { guestTscHz, guestTscTickHz, pvclockDriftPpb } from './measure-x86.js';

/** What an audit asks, wherever it reads the log from: the migration, threshold overrides, evolve options. */
type AuditArgs = [migrationId: string, thresholds?: AuditOverrides, opts?: EvolveOptions];

export { guestSettingsOf, type AuditOverrides } from './overrides.js';

/** Audit one migration from the log (optionally as it would have gone under another kernel profile). */
export function auditMigration(store: EventStore, ...args: AuditArgs): AuditReport | null {
  return auditFrom(logAuditSource(store, args[2] ?? {}), ...args);
}

/**
 * Audit one migration from what a source holds of the log, with the guest its life brought to the
 * stop: the settings recorded with its VM (a request's `guest` still wins) and, after its first
 * stop or once it has recorded settings, its clocksource, unstable marks and wall-clock error
 * (machines/life). A guest with neither is audited from a guest fresh at the stop, as always.
 */
export function auditFrom(src: AuditSource, ...[migrationId, thresholds = {}, opts = {}]: AuditArgs): AuditReport | null {
  // a log with no recorded guest (every log recorded before guests were): each stop alone, as always
  if (!src.hasRecordedGuests()) return auditOnce(src, migrationId, thresholds, opts, null);
  const m = src.migration(migrationId);
  if (!m) return null;
  const stop = BigInt(m.state.phases.find((p) => p.phase === 'pausing')?.time ?? m.state.startedAt);
  const guest = guestOverridesAt(src, m.state.vmId, stop, thresholds.guest);
  const withGuest = guest ? { ...thresholds, guest } : thresholds;
  return auditOnce(src, migrationId, withGuest, opts, carryFor(src, migrationId, thresholds, opts));
}
