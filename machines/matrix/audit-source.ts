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
  // every read of the source, each remembered (a read the interface gains is remembered too)
  const reads = Object.keys(src) as (keyof AuditSource)[];
  return Object.fromEntries(reads.map((k) => [k, memo((src[k] as (...a: unknown[]) => unknown).bind(src))])) as unknown as AuditSource;
}
