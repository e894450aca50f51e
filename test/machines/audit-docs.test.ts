// docs/audit.md is generated from the audit's own tables: it is up to date, it documents every
// field a report carries (and none it does not), and every finding code has rules that reach it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPORT_FIELDS } from '../../machines/audit/fields.js';
import { RULES } from '../../machines/audit/rules.js';
import { DEFAULT_THRESHOLDS, FINDING_CODES, THRESHOLD_DOCS } from '../../machines/audit/thresholds.js';
import { auditDocs } from '../../scripts/audit-docs.js';

const root = join(import.meta.dirname, '..', '..');
const golden = Object.values(JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'audit-golden.json'), 'utf8')) as Record<string, string[]>)
  .flat()
  .map((a) => JSON.parse(a) as unknown);

/** Fields documented as a map (name → value): their keys vary, the map is the documented value. */
const MAPS = new Set(REPORT_FIELDS.filter((f) => f.type.startsWith('map')).map((f) => f.path));

/** The path of every value in a report (`a.b`, `a[].b`); an empty array or null counts as a value. */
function paths(v: unknown, p: string, out: Set<string>): Set<string> {
  if (MAPS.has(p)) out.add(p);
  else if (Array.isArray(v)) {
    if (!v.length) out.add(p);
    for (const x of v) paths(x, `${p}[]`, out);
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) paths(x, p ? `${p}.${k}` : k, out);
  } else out.add(p);
  return out;
}

describe('docs/audit.md', () => {
  it('is what `npm run docs` generates now', () => {
    expect(readFileSync(join(root, 'docs', 'audit.md'), 'utf8')).toBe(auditDocs());
  });

  it('documents every field the pinned reports carry, and only those', () => {
    const documented = new Set(REPORT_FIELDS.map((f) => f.path));
    const seen = new Set<string>();
    for (const a of golden) paths(a, '', seen);
    // a leaf path, or the array or object it is in (findings[].positions[] → findings[].positions)
    const undocumented = [...seen].filter((p) => !documented.has(p) && !documented.has(p.replace(/\[\]$/, '')));
    expect(undocumented).toEqual([]);
    const containers = new Set(
      [...seen].flatMap((p) =>
        p.split('.').map((_, i, xs) =>
          xs
            .slice(0, i + 1)
            .join('.')
            .replace(/\[\]$/, ''),
        ),
      ),
    );
    expect(REPORT_FIELDS.map((f) => f.path).filter((p) => !containers.has(p))).toEqual([]);
    // 70 before the simulated guest, 53 for its block and findings[].guestLog, 9 for its boot
    // (guest.boot and its 3 fields, the 4 of its log's entries) and rcuStalls[].ncpus
    expect(REPORT_FIELDS.length).toBe(132);
  });

  it('has rules for every finding code and a description for every threshold', () => {
    expect(new Set(RULES.map((r) => r.code))).toEqual(new Set(Object.keys(FINDING_CODES)));
    expect(Object.keys(THRESHOLD_DOCS).sort()).toEqual(Object.keys(DEFAULT_THRESHOLDS).sort());
    for (const r of RULES) for (const t of r.thresholds) expect(Object.keys(DEFAULT_THRESHOLDS)).toContain(t);
    // 29 rows: time_backwards has 5 ways (one the guest running before its kvmclock was restored), frequency_drift 2; 6 guest-model rows
    // (wall_clock_behind and wall_clock_ahead one each), tsc_writes_ignored, realtime_disagrees
    expect(RULES.length).toBe(29);
    expect(RULES.filter((r) => r.code === 'time_backwards')).toHaveLength(5);
  });

  it('gives each pinned finding a severity one of its code’s rules can give', () => {
    const can = new Map<string, Set<string>>();
    for (const r of RULES) for (const s of [r.severity, r.or?.severity]) if (s) can.set(r.code, (can.get(r.code) ?? new Set()).add(s));
    for (const a of golden as { findings: { code: string; severity: string }[] }[]) {
      for (const f of a.findings) expect(can.get(f.code), f.code).toContain(f.severity);
    }
  });
});
