// The answers of the replay-debugging handlers (handlers/use-cases/replay.ts), for people: the
// kernel profiles, a replay under another profile, a diff of two logs, and the bisects.
import { msPerDayReadable, nsExactAndReadable } from '../../../lib/units.js';
import type { ResponseOf } from '../../responses.js';
import { cellText, formatGeneric, keyValues, table, yesNo, type Cell } from '../format.js';

type Replay = ResponseOf<'replay'>;
type MigrationReplay = Replay['byMigration'][number];
type Pvclock = Replay['byVm'][number]['pvclock']['recorded'];
type Probe = ResponseOf<'bisect'>['probes'][number];

export function renderProfiles(r: ResponseOf<'profiles'>): string {
  const ps = r.profiles ?? [];
  const rows = ps.map((p) => [p.name === r.default ? `${p.name} (default)` : p.name, p.summary]);
  const sws = Object.entries(r.switchSources ?? {});
  return [
    table(['PROFILE', 'SUMMARY'], rows),
    '',
    'Sources:',
    ...ps.map((p) => `  ${p.name}: ${p.source}`),
    ...(sws.length ? ['', 'Switch sources:', ...sws.map(([k, v]) => `  ${k}: ${v}`)] : []),
  ].join('\n');
}

/** diff: its fields, nested blocks, and tables of their lists. */
export function renderDiff(r: ResponseOf<'diff'>): string {
  return formatGeneric(r) || 'done';
}

const signedNs = (v: unknown) => (v === null || v === undefined ? '-' : nsExactAndReadable(v));
const upper = (v: unknown) => (v == null ? '-' : String(v).toUpperCase());

/** kvmclock's frequency as a profile gives it: "2999999000 Hz (drift 333 ppb, 28.771 ms/day)". */
function pvclockText(p: Pvclock | null | undefined): string {
  if (!p) return '-';
  return `${p.frequencyHz} Hz for a guest TSC at ${p.guestTscHz} Hz (drift ${p.driftPpb} ppb, ${msPerDayReadable(p.msPerDay)})`;
}

/** One migration's audits under the recording and under the replayed profile, side by side. */
function auditSideBySide(m: MigrationReplay, replayedName: string, recordedName: string): string {
  const a = m.audit?.recorded ?? null;
  const b = m.audit?.replayed ?? null;
  const d = m.difference ?? null;
  const rows: Cell[][] = [
    ['verdict', upper(a?.verdict), upper(b?.verdict), ''],
    ['status', a?.status ?? '-', b?.status ?? '-', ''],
  ];
  for (const v of d?.tscErrorNs ?? []) rows.push([`TSC error vCPU ${v.vcpu}`, signedNs(v.recorded), signedNs(v.replayed), signedNs(v.delta)]);
  const kvmclock = d?.kvmclockErrorNs;
  if (kvmclock) rows.push(['kvmclock error', signedNs(kvmclock.recorded), signedNs(kvmclock.replayed), signedNs(kvmclock.delta)]);
  if (d?.skewCycles) rows.push(['skew after (cycles)', d.skewCycles.recorded, d.skewCycles.replayed, '']);
  if (d?.masterClock) rows.push(['master clock after', yesNo(d.masterClock.recorded), yesNo(d.masterClock.replayed), '']);
  const codes = (x: typeof a) => (x?.findings ?? []).map((f) => f.code).join(', ') || '(none)';
  return [
    table(['AUDIT', recordedName.toUpperCase(), replayedName.toUpperCase(), 'DIFFERENCE'], rows, { indent: '    ', wrap: false }),
    keyValues(
      [
        [`findings (${recordedName})`, codes(a)],
        [`findings (${replayedName})`, codes(b)],
      ],
      '    ',
    ),
  ].join('\n');
}

/** replay: the first divergence, per VM the kvmclock frequency, per migration both audits, every divergence. */
export function renderReplay(r: Replay): string {
  const out: string[] = [];
  const first = r.firstDivergence;
  out.push(
    keyValues([
      ['profile', r.profile],
      ['compared with', r.reference],
      ['events replayed', r.eventsReplayed],
      ['VMs replayed', r.vmsReplayed],
      ['divergences', r.divergenceCount],
      ['first divergence', first ? first.summary : 'none: every result is the same'],
    ]),
  );
  for (const v of r.byVm ?? []) {
    out.push('', `VM ${v.vmId}: ${v.divergences} divergence${v.divergences === 1 ? '' : 's'}, the first: ${v.firstDivergence?.summary ?? '-'}`);
    out.push(
      keyValues(
        [
          [`kvmclock (${r.reference})`, pvclockText(v.pvclock?.recorded)],
          [`kvmclock (${r.profile})`, pvclockText(v.pvclock?.replayed)],
        ],
        '  ',
      ),
    );
  }
  for (const m of r.byMigration ?? []) {
    const many = `${m.divergences} divergence${m.divergences === 1 ? '' : 's'}`;
    out.push('', `migration ${m.migrationId} (${m.strategy}): ${many}, the first: ${m.firstDivergence?.summary ?? '-'}`);
    const f = m.failingStep;
    if (f) {
      const on = f.vcpu != null ? ` on vCPU ${f.vcpu}` : '';
      out.push(`  the strategy would fail at its ${f.step ?? f.phase ?? '?'} step: ${f.ioctl}${on} (${f.errno ?? 'error'}, position ${f.position})`);
    }
    out.push('  audits:', auditSideBySide(m, String(r.profile), String(r.reference)));
    const only = m.difference?.findings;
    if (only && (only.onlyRecorded.length || only.onlyReplayed.length)) {
      out.push(`  findings only with ${r.reference}: ${only.onlyRecorded.join(', ') || '-'}; only with ${r.profile}: ${only.onlyReplayed.join(', ') || '-'}`);
    }
  }
  const ds = r.divergences ?? [];
  if (ds.length) {
    out.push('', `divergences${ds.length < r.divergenceCount ? ` (the first ${ds.length} of ${r.divergenceCount}; --keep for more)` : ''}:`);
    const rows = ds.map((d) => [d.position, d.vmId, d.migrationId ?? '', d.step ?? '', d.summary]);
    out.push(table(['POS', 'VM', 'MIGRATION', 'STEP', 'SUMMARY'], rows, { indent: '  ' }));
  }
  return out.join('\n');
}

/** A raw divergence (as bisect reports it), in one line. */
function divergenceText(d: Probe['firstDivergence'] | undefined): string {
  if (!d) return '-';
  const what = d.ioctl ?? d.op ?? d.type;
  type Side = typeof d.recorded;
  const res = (o: Side) => {
    const x = o?.result;
    if (x && typeof x === 'object' && 'ret' in x) return `ret ${x.ret}${x.errno ? ` ${x.errno}` : ''}`;
    if (x && typeof x === 'object' && 'value' in x) return `value ${x.value}`;
    return `${(o?.trace ?? []).length} tracepoints`;
  };
  const a = res(d.recorded);
  const b = res(d.replayed);
  const tail = a !== b ? '' : JSON.stringify(d.recorded?.result) !== JSON.stringify(d.replayed?.result) ? ', output differs' : ', tracepoints differ';
  return `${what}${d.vcpu != null ? ` on vCPU ${d.vcpu}` : ''} at position ${d.position} (${d.vmId}): recorded ${a}, replayed ${b}${tail}`;
}

/** bisect: each probe, and the first profile (or the switches) that diverge. */
export function renderBisect(r: ResponseOf<'bisect'>): string {
  if ('culprits' in r) {
    const head = keyValues([
      ['base', r.base],
      ['target', r.target],
      ['switches that differ', (r.differing ?? []).map(cellText).join(', ') || '(none)'],
      ['responsible', (r.culprits ?? []).map(cellText).join(', ') || 'none alone'],
    ]);
    const rows = r.probes.map((p) => [cellText(p.switch), yesNo(p.diverged), p.divergenceCount, divergenceText(p.firstDivergence)]);
    const t = table(['SWITCH', 'DIVERGES', 'DIVERGENCES', 'FIRST DIVERGENCE'], rows);
    return `${head}\n\n${t}`;
  }
  const first = r.firstDivergent;
  const head = keyValues([
    ['order', (r.order ?? []).join(', ')],
    ['compared with', r.reference],
    ['first divergent', first ? `${first.profile}: ${divergenceText(first.firstDivergence)}` : 'none: every profile probed reproduces the results'],
  ]);
  const rows = r.probes.map((p) => [p.profile, yesNo(p.diverged), p.divergenceCount, divergenceText(p.firstDivergence)]);
  const t = table(['PROFILE', 'DIVERGES', 'DIVERGENCES', 'FIRST DIVERGENCE'], rows);
  return `${head}\n\nprobed:\n${t}`;
}

/** Bisect across releases: each release's outcome, the first that differs, and the switch probes. */
export function renderReleaseBisect(r: ResponseOf<'bisectReleases'>): string {
  const d = r.firstDivergent;
  const head = keyValues([
    ['migration', r.migrationId],
    ['strategy', r.strategy],
    ['compared', r.compared],
    [
      'first divergent',
      d
        ? `${d.spec} (${d.release}): ${JSON.stringify(d.outcome)}, where ${d.previous} gave ${JSON.stringify(d.previousOutcome)}`
        : 'none: every release gives the same',
    ],
  ]);
  const probes = table(
    ['RELEASE', 'SPEC', 'OUTCOME'],
    (r.probes ?? []).map((p) => [p.release, p.spec, JSON.stringify(p.outcome)]),
  );
  const sw = r.switchProbes ?? [];
  const swRows = sw.map((p) => [p.switch, String(p.from), String(p.to), JSON.stringify(p.outcome), p.reproduces ? 'yes' : 'no']);
  const switches = sw.length
    ? `\n\nswitches (each flipped alone on ${d!.previous}):\n${table(['SWITCH', 'FROM', 'TO', 'OUTCOME', 'REPRODUCES'], swRows, { indent: '  ' })}`
    : '';
  return `${head}\n\n${probes}${switches}`;
}
