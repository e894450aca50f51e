// The fleet safety matrix: which migrations are unsafe, for which guests, and because of what.
// Every cell (a host pair, a VMM release, a blackout, a guest) is the migration run on a scratch
// ledger through the handlers and audited; a before/after names, for each cell whose verdict
// changed, the switch responsible. The request, the plan as run and every cell's verdict are
// recorded in the ledger (matrix-<id>), and any cell can be run again from that record (matrixCell).
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { matrixHtml, type MatrixPageData } from '../../machines/export/html/matrix.js';
import { changedCell, changedIndices, changedProbes, cellOf, type ChangedCell, type MatrixCell } from '../../machines/matrix/cells.js';
import { matrixCsv } from '../../machines/matrix/csv.js';
import { cellAt, cellCount, cellRun, runAt, runCount, type MatrixPlan } from '../../machines/matrix/plan.js';
import { compactCells, planFromJson, planToJson, recordedCell, recordedMatrix, recordMatrix, summaryOf } from '../../machines/matrix/record.js';
import type { MatrixCheckedData } from '../../machines/matrix/record.js';
import { runCells, type CellOutcome } from '../../machines/matrix/run.js';
import { defineHandler, type HandlerEnv } from '../define.js';
import { HandlerError } from '../errors.js';
import { commonFields, idSchema } from '../fields.js';
import { matrixSchema, resolveMatrix, strategyRunsOn, type MatrixRequest } from './matrix-request.js';
import { runJobs, type Job } from './matrix-pool.js';
import { cellReportHtml, openScratch, reportFile, scratchCall, type ReportsOption } from './matrix-scratch.js';

/** Report file prefixes of the two sides. */
const PREFIX = { before: 'cell-', after: 'after-' } as const;

/** Workers by default: one per core, but a small matrix is not worth starting threads for. */
function workersFor(runs: number, asked?: number): number {
  if (asked !== undefined) return asked;
  return runs < 16 ? 1 : Math.max(1, Math.min(availableParallelism(), 16));
}

/** The runs of a plan to do (a strategy without an implementation for the pair's architecture: none, its cells n/a). */
function jobsOf(p: MatrixPlan, reports: ReportsOption | undefined): { jobs: Job[]; runs: number[] } {
  const runs: number[] = [];
  for (let r = 0; r < runCount(p); r++) if (strategyRunsOn(runAt(p, r).strategy, runAt(p, r).from.arch)) runs.push(r);
  return { runs, jobs: runs.map((r) => ({ run: runAt(p, r), ...(reports ? { reports } : {}) })) };
}

/** The cells of a plan from the outcomes of the runs done (in run order). */
function cellsFrom(p: MatrixPlan, runs: number[], outcomes: CellOutcome[][]): MatrixCell[] {
  const byRun = new Map(runs.map((r, i) => [r, outcomes[i]!]));
  const G = p.guests.length;
  return Array.from({ length: cellCount(p) }, (_, index) => cellOf(p, index, byRun.get(Math.floor(index / G))?.[index % G] ?? null));
}

/** A directory for the reports: created, or an existing empty one (nothing is overwritten). */
function reportsDirectory(dir: string): string {
  try {
    if (existsSync(dir)) {
      if (readdirSync(dir).length) throw new HandlerError('invalid_request', `reportsDir: ${dir} is not empty`, { field: 'reportsDir' });
    } else mkdirSync(dir, { recursive: true });
  } catch (e) {
    if (e instanceof HandlerError) throw e;
    throw new HandlerError('io', `reportsDir: cannot create ${dir}: ${(e as Error).message}`, { field: 'reportsDir' });
  }
  return dir;
}

const NOT_PASSING: CellOutcome['verdict'][] = ['warn', 'fail'];

/** The cell as the response shows it (its exact outcome string is for comparing, not for users). */
const shown = ({ outcome: _o, ...c }: MatrixCell) => c;

/** What the heatmap page shows of a side. */
const axesOf = (p: MatrixPlan): MatrixPageData['axes'] => ({
  pairs: p.pairs.map(([a, b]) => [p.hosts[a]!.name, p.hosts[b]!.name] as [string, string]),
  strategies: p.strategies,
  blackoutsNs: p.blackoutsNs,
  guests: p.guests.map((g) => g.name),
});

async function runMatrix(req: MatrixRequest, env: HandlerEnv): Promise<Record<string, unknown>> {
  if (req.reportsDir !== undefined && env.forkDir !== undefined) {
    const why = 'reportsDir: reports are written to a directory by the CLI and scripts; here ask for format: html';
    throw new HandlerError('invalid_request', why, { field: 'reportsDir' });
  }
  const ledger = req.fleet ? await env.log() : undefined;
  const m = resolveMatrix(req, () => ledger!);
  const dir = req.reportsDir !== undefined ? reportsDirectory(req.reportsDir) : undefined;
  const reports = (side: 'before' | 'after'): ReportsOption | undefined => (dir ? { dir, prefix: PREFIX[side], verdicts: NOT_PASSING } : undefined);

  // both sides in one pass over the workers; cells n/a count as done from the start
  const b = jobsOf(m.before, reports('before'));
  const a = m.after ? jobsOf(m.after, reports('after')) : { jobs: [], runs: [] };
  const todo = [...b.jobs, ...a.jobs];
  const done = (b.runs.length + a.runs.length) * m.before.guests.length;
  const na = m.cells - done;
  const workers = workersFor(todo.length, req.workers);
  const outcomes = await runJobs(todo, { workers, onCells: env.onProgress && ((n) => env.onProgress!(na + n)) });
  const cells = cellsFrom(m.before, b.runs, outcomes.slice(0, b.jobs.length));
  const after = m.after ? cellsFrom(m.after, a.runs, outcomes.slice(b.jobs.length)) : null;

  // before/after: every changed cell's probes, as far as maxCells allows
  let changed: ChangedCell[] | undefined;
  if (m.after && after) {
    const wanted = changedProbes(m.before, m.after, changedIndices(cells, after));
    let budget = req.maxCells - m.cells;
    const run = wanted.filter((w) => (budget -= w.probes.length) >= 0);
    const probeOutcomes = await runJobs(
      run.flatMap((w) => w.probes.map((p) => ({ run: p.run }))),
      { workers: workersFor(run.length * 2, req.workers) },
    );
    let k = 0;
    changed = wanted.map((w, i) => {
      const got = i < run.length ? w.probes.map(() => probeOutcomes[k++]![0]!) : null;
      return changedCell(cells[w.index]!, after[w.index]!, w.probes, got);
    });
  }

  const summary = summaryOf(cells.map((c) => c.verdict));
  const afterSummary = after ? summaryOf(after.map((c) => c.verdict)) : undefined;
  const record: Omit<MatrixCheckedData, 'matrixId'> = {
    plan: planToJson(m.before),
    cells: cells.length,
    summary,
    results: compactCells(cells),
    ...(m.after && after && changed
      ? {
          after: {
            plan: planToJson(m.after),
            summary: afterSummary!,
            results: compactCells(after),
            changed: changed.map((c) => ({
              index: c.index,
              before: c.verdict.before,
              after: c.verdict.after,
              responsible: c.responsible.map((r) => (r.on ? `${r.on}: ${r.name}` : r.name)),
            })),
          },
        }
      : {}),
  };
  const { matrixId } = (await env.write(
    (s) => recordMatrix(s, record, req.matrixId),
    (id) => ({ matrixId: id }),
  )) as { matrixId: string };

  const written = dir ? new Set(readdirSync(dir)) : null;
  const page = (): string =>
    matrixHtml({
      matrixId,
      summary: { ...summary },
      cells,
      axes: axesOf(m.before),
      ...(m.after && after ? { after: { summary: { ...afterSummary! }, cells: after, axes: axesOf(m.after) }, changed } : {}),
      link: written ? (side, index) => (written.has(reportFile(PREFIX[side], index)) ? reportFile(PREFIX[side], index) : null) : undefined,
    });
  if (dir) writeFileSync(join(dir, 'index.html'), page());
  return {
    matrixId,
    cells: cells.map(shown),
    summary,
    ...(m.crossArchPairs ? { skipped: { crossArchPairs: m.crossArchPairs } } : {}),
    ...(after ? { after: { cells: after.map(shown), summary: afterSummary }, changed } : {}),
    workers: Math.min(workers, todo.length),
    ...(req.format === 'csv' ? { csv: matrixCsv(cells, after ?? undefined, changed) } : {}),
    ...(req.format === 'html' ? { html: page() } : {}),
    ...(dir ? { reportsDir: dir } : {}),
  };
}

export const matrix = defineHandler({ name: 'matrix', schema: matrixSchema, run: runMatrix });

/** Run one recorded cell again, from the matrix's record alone; its cell, full audit, and whether it gives what was recorded. */
export const matrixCell = defineHandler({
  name: 'matrixCell',
  schema: z
    .object({
      ...commonFields,
      matrixId: idSchema,
      cell: z.number().int().min(0),
      /** the side of a before/after */
      side: z.enum(['before', 'after']).default('before'),
      /** html: also the cell's full report page */
      format: z.enum(['json', 'html']).default('json'),
    })
    .strict(),
  async run(req, env) {
    const rec = recordedMatrix(await env.log(), req.matrixId);
    if (!rec) throw new HandlerError('not_found', `no matrix '${req.matrixId}'`, { matrixId: req.matrixId });
    const sideRec = req.side === 'after' ? rec.after : rec;
    if (!sideRec) throw new HandlerError('invalid_request', `side: matrix '${req.matrixId}' has no after side (it was not a before/after)`, { field: 'side' });
    const plan = planFromJson(sideRec.plan);
    const n = cellCount(plan);
    if (req.cell >= n) throw new HandlerError('invalid_request', `cell: matrix '${req.matrixId}' has cells 0 to ${n - 1}`, { field: 'cell' });
    const recorded = recordedCell(sideRec.results, req.cell);
    const run = cellRun(plan, req.cell);
    if (!strategyRunsOn(run.strategy, run.from.arch)) {
      return { matrixId: req.matrixId, side: req.side, cell: shown(cellOf(plan, req.cell, null)), recorded, same: recorded.verdict === 'n/a', audit: null };
    }
    const store = openScratch();
    try {
      let audit: Record<string, any> = {};
      const [o] = await runCells(run, scratchCall(store, run), (_, a) => (audit = a));
      const cell = cellOf(plan, req.cell, o!);
      const same = cell.verdict === recorded.verdict && JSON.stringify(cell.findings) === JSON.stringify(recorded.findings);
      return {
        matrixId: req.matrixId,
        side: req.side,
        coordinates: cellAt(plan, req.cell),
        cell: shown(cell),
        recorded,
        same,
        audit,
        ...(req.format === 'html' ? { html: cellReportHtml(store, audit) } : {}),
      };
    } finally {
      store.close();
    }
  },
});
