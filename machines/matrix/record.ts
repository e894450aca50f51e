// A checked matrix as the ledger keeps it: a stream of its own (matrix-<id>) holding one
// MatrixChecked event with the plan as run (every default filled in, canonical JSON), the summary,
// and every cell's verdict and finding codes compactly, so "we checked this before the rollout" is
// evidence and any cell can be run again from the record and compared with what it gave then.
import type { EventStore } from '../../store/types.js';
import { toSortedJson, type Json } from '../codec.js';
import { DomainError, type Session } from '../session/index.js';
import { MATRIX_STREAM_PREFIX, matrixStreamId } from '../stream-ids.js';
import type { MatrixPlan } from './plan.js';
import type { CompactCells, MatrixCheckedData, Summary, Verdict } from './state.js';

export { MATRIX_STREAM_PREFIX, matrixStreamId };
export type { CompactCells, MatrixCheckedData, MatrixEvent, MatrixState, RecordedChange, Summary, Verdict } from './state.js';

const LETTER: Record<Verdict, string> = { pass: 'p', warn: 'w', fail: 'f', 'n/a': 'n' };
const VERDICT: Record<string, Verdict> = { p: 'pass', w: 'warn', f: 'fail', n: 'n/a' };

export function summaryOf(verdicts: readonly Verdict[]): Summary {
  const s: Summary = { pass: 0, warn: 0, fail: 0, notApplicable: 0 };
  for (const v of verdicts) {
    if (v === 'n/a') s.notApplicable++;
    else s[v]++;
  }
  return s;
}

/** Cells (verdict, finding codes) in their compact recorded form. */
export function compactCells(cells: readonly { verdict: Verdict; findings: readonly string[] }[]): CompactCells {
  const sets = new Map<string, number>();
  const findings = cells.map((c) => {
    const key = c.findings.join(',');
    let i = sets.get(key);
    if (i === undefined) sets.set(key, (i = sets.size));
    return i;
  });
  return { verdicts: cells.map((c) => LETTER[c.verdict]).join(''), findingSets: [...sets.keys()], findings };
}

/** A recorded cell's verdict and finding codes. */
export function recordedCell(r: CompactCells, index: number): { verdict: Verdict; findings: string[] } {
  const set = r.findingSets[r.findings[index]!] ?? '';
  return { verdict: VERDICT[r.verdicts[index]!]!, findings: set ? set.split(',') : [] };
}

const HOST_BIGINTS = ['cntfrqHz', 'actualTscHz', 'initialTsc', 'realtimeOffsetNs'] as const;
const SETUP_BIGINTS = ['sourceUptimeNs', 'destinationUptimeNs', 'warmupNs', 'sleeperNs', 'vmmLatencyNs'] as const;

export const planToJson = (p: MatrixPlan): Json => toSortedJson(p);

/** A recorded plan read back (its u64s as bigint again). */
export function planFromJson(j: Json): MatrixPlan {
  const p = structuredClone(j) as unknown as MatrixPlan & Record<string, any>;
  for (const h of p.hosts as unknown as Record<string, unknown>[]) for (const k of HOST_BIGINTS) if (typeof h[k] === 'string') h[k] = BigInt(h[k]);
  const setup = p.setup as unknown as Record<string, string | bigint>;
  for (const k of SETUP_BIGINTS) setup[k] = BigInt(setup[k]!);
  p.blackoutsNs = p.blackoutsNs.map((b) => BigInt(b));
  return p;
}

/** The next free matrix id: x{n+1} for n matrices in the log, or the first free one after it. */
export function nextMatrixId(s: Session): string {
  let n = s.log.countCategory('matrix') + 1;
  while (s.log.streamVersion(matrixStreamId(`x${n}`)) > 0) n++;
  return `x${n}`;
}

/** Record a checked matrix on a stream of its own; its id. */
export function recordMatrix(s: Session, data: Omit<MatrixCheckedData, 'matrixId'>, matrixId = nextMatrixId(s)): string {
  const sid = matrixStreamId(matrixId);
  if (s.log.streamVersion(sid) > 0 || s.currentVersion(sid)) throw new DomainError('conflict', `matrix '${matrixId}' already exists`, { matrixId });
  s.record(sid, { type: 'MatrixChecked', data: toSortedJson({ matrixId, ...data }) } satisfies { type: string; data: Json }, s.now());
  return matrixId;
}

/** A recorded matrix, as its event holds it (null: none with that id). */
export function recordedMatrix(store: EventStore, matrixId: string): MatrixCheckedData | null {
  const e = store.read({ streamId: matrixStreamId(matrixId), limit: 1 })[0];
  return e ? (e.data as MatrixCheckedData) : null;
}
