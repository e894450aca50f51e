// The matrix's answer: each cell with its coordinates by name and what its audit gave, the cells
// whose verdict changed between the two sides of a before/after, and for each the changes that,
// applied alone, give the "after" verdict.
import { cellAt, cellRun, type MatrixPlan } from './plan.js';
import { changeText, probesOf, type Change, type Probe } from './changes.js';
import type { CellOutcome } from './run.js';
import type { Verdict } from './state.js';

export interface MatrixCell {
  index: number;
  from: string;
  to: string;
  strategy: string;
  guest: string;
  blackoutNs: bigint;
  /** 'n/a': the strategy has no implementation for the pair's architecture */
  verdict: Verdict;
  /** the migration's own status (null for n/a) */
  status: CellOutcome['status'] | null;
  findings: string[];
  worstTscErrorNs: bigint | null;
  worstKvmclockErrorNs: bigint | null;
  worstRealtimeErrorNs: bigint | null;
  guestLog: string[];
  /** the verdict with every finding's severity (what before/after compares exactly) */
  outcome: string;
}

/** Cell `index` of a plan with its outcome (null: n/a). */
export function cellOf(p: MatrixPlan, index: number, o: CellOutcome | null): MatrixCell {
  const c = cellAt(p, index);
  const [from, to] = p.pairs[c.pair]!;
  return {
    index,
    from: p.hosts[from]!.name,
    to: p.hosts[to]!.name,
    strategy: p.strategies[c.strategy]!,
    guest: p.guests[c.guest]!.name,
    blackoutNs: p.blackoutsNs[c.blackout]!,
    verdict: o?.verdict ?? 'n/a',
    status: o?.status ?? null,
    findings: o?.findings ?? [],
    worstTscErrorNs: o?.worstTscErrorNs ?? null,
    worstKvmclockErrorNs: o?.worstKvmclockErrorNs ?? null,
    worstRealtimeErrorNs: o?.worstRealtimeErrorNs ?? null,
    guestLog: o?.guestLog ?? [],
    outcome: o?.outcome ?? 'n/a',
  };
}

export interface ProbeResult {
  change: Change;
  /** the change in a line */
  text: string;
  /** the strategy spec the probe ran (a switch flipped on the "before" release) */
  strategy: string;
  verdict: Verdict;
  findings: string[];
  /** this change alone gives the "after" verdict */
  reproduces: boolean;
  /** ... and the "after" findings, severities included */
  exact: boolean;
}

export interface ChangedCell {
  index: number;
  from: { before: string; after: string };
  to: { before: string; after: string };
  guest: { before: string; after: string };
  blackoutNs: bigint;
  strategy: { before: string; after: string };
  verdict: { before: Verdict; after: Verdict };
  findings: { before: string[]; after: string[] };
  /** false: left out to keep within maxCells (its probes were not run) */
  attributed: boolean;
  probes: ProbeResult[];
  /** the changes responsible: each alone gives the "after" verdict (empty: none alone does, it takes them together) */
  responsible: Change[];
}

/** The cells whose verdict differs between the two sides (a cell n/a on either side has none to compare). */
export function changedIndices(before: readonly MatrixCell[], after: readonly MatrixCell[]): number[] {
  return before.flatMap((b, i) => (b.verdict !== 'n/a' && after[i]!.verdict !== 'n/a' && b.verdict !== after[i]!.verdict ? [i] : []));
}

/** The probes of each changed cell (its "before" run with each change alone). */
export function changedProbes(before: MatrixPlan, after: MatrixPlan, indices: readonly number[]): { index: number; probes: Probe[] }[] {
  return indices.map((index) => ({ index, probes: probesOf(cellRun(before, index), cellRun(after, index)) }));
}

/** A changed cell with what its probes gave (outcomes null: not attributed). */
export function changedCell(b: MatrixCell, a: MatrixCell, probes: Probe[], outcomes: CellOutcome[] | null): ChangedCell {
  const results = (outcomes ? probes : []).map((p, k): ProbeResult => {
    const o = outcomes![k]!;
    const { verdict, findings } = o;
    const reproduces = verdict === a.verdict;
    return { change: p.change, text: changeText(p.change), strategy: p.run.strategy, verdict, findings, reproduces, exact: o.outcome === a.outcome };
  });
  return {
    index: b.index,
    from: { before: b.from, after: a.from },
    to: { before: b.to, after: a.to },
    guest: { before: b.guest, after: a.guest },
    blackoutNs: b.blackoutNs,
    strategy: { before: b.strategy, after: a.strategy },
    verdict: { before: b.verdict, after: a.verdict },
    findings: { before: b.findings, after: a.findings },
    attributed: outcomes !== null,
    probes: results,
    responsible: results.filter((r) => r.reproduces).map((r) => r.change),
  };
}
