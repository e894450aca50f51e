// The audit's reads of one finished migration, remembered: a run audits the same migration once
// per guest, and every read (the migration, the VM states at its cut points, the hosts, the
// events it cites) gives the same answer each time, since the scratch log no longer changes. Only
// the guest's simulation and the rules differ between guests; the audit itself is the same
// function with the same inputs (machines/audit, auditFrom).
import type { AuditSource } from '../audit/source.js';

/** An audit source that reads each thing once (for a log that no longer changes). */
export function memoAuditSource(src: AuditSource): AuditSource {
  const memo = <A extends unknown[], R>(f: (...args: A) => R) => {
    const seen = new Map<string, R>();
    return (...args: A): R => {
      const key = args.map((a) => (Array.isArray(a) ? a.join(',') : String(a))).join('\u0000');
      if (!seen.has(key)) seen.set(key, f(...args));
      return seen.get(key)!;
    };
  };
  return {
    migration: memo(src.migration.bind(src)),
    vmAt: memo(src.vmAt.bind(src)),
    vmAtTime: memo(src.vmAtTime.bind(src)),
    host: memo(src.host.bind(src)),
    vmEvents: memo(src.vmEvents.bind(src)),
    streamVersion: memo(src.streamVersion.bind(src)),
    positionOfVersion: memo(src.positionOfVersion.bind(src)),
    firstRun: memo(src.firstRun.bind(src)),
    migrationIds: memo(src.migrationIds.bind(src)),
    guestConfig: memo(src.guestConfig.bind(src)),
    hasRecordedGuests: memo(src.hasRecordedGuests.bind(src)),
    now: memo(src.now.bind(src)),
  };
}
