// The matrix's runs spread over worker threads (one per core by default): batches handed out as
// workers finish their last, the answers put back in run order, so the cells never depend on the
// number of workers or on which finished first. One worker, or a single run, runs in this thread.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RunSpec } from '../../machines/matrix/plan.js';
import type { CellOutcome } from '../../machines/matrix/run.js';
import type { ErrorBody } from '../errors.js';
import { HandlerError } from '../errors.js';
import { runOnScratch, type ReportsOption } from './matrix-scratch.js';
import type { BatchMessage } from './matrix-worker.js';

export interface Job {
  run: RunSpec;
  reports?: ReportsOption;
}

export interface PoolOptions {
  workers: number;
  /** after each run: how many cells are done in all */
  onCells?: (done: number) => void;
}

/** This process's node options, less those a worker refuses (a process started with `--input-type=module -e ...`). */
function workerExecArgv(): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const a = process.execArgv[i]!;
    if (a === '--input-type') i++;
    else if (!a.startsWith('--input-type=')) out.push(a);
  }
  return out;
}

/**
 * The worker thread: the compiled module beside this one, or, when this module runs from its
 * TypeScript source (tests, tsx), the source loaded through tsx's loader in the worker.
 */
function startWorker(): Worker {
  const compiled = import.meta.url.endsWith('.js');
  const url = new URL(`./matrix-worker.${compiled ? 'js' : 'ts'}`, import.meta.url);
  if (compiled) return new Worker(url, { execArgv: workerExecArgv() });
  // tsx's ESM loader API, by the path its package exports it under for import
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  const entry = (JSON.parse(readFileSync(pkg, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']!.import.default;
  const api = pathToFileURL(join(dirname(pkg), entry)).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => m.register()).then(() => import(${JSON.stringify(url.href)}))`;
  return new Worker(boot, { eval: true });
}

/** Run every job; the cells of each, in job order. */
export async function runJobs(jobs: Job[], o: PoolOptions): Promise<CellOutcome[][]> {
  let done = 0;
  const count = (cells: CellOutcome[]) => o.onCells?.((done += cells.length));
  const workers = Math.min(o.workers, jobs.length);
  if (workers <= 1) {
    const out: CellOutcome[][] = [];
    for (const j of jobs) {
      const cells = await runOnScratch(j.run, j.reports);
      count(cells);
      out.push(cells);
    }
    return out;
  }
  // batches small enough that the last ones keep every worker busy, large enough to cost few messages
  const size = Math.max(1, Math.min(16, Math.floor(jobs.length / (workers * 8))));
  const batches: Job[][] = [];
  for (let i = 0; i < jobs.length; i += size) batches.push(jobs.slice(i, i + size));
  const results: CellOutcome[][][] = new Array(batches.length);
  const pool = Array.from({ length: workers }, startWorker);
  try {
    await new Promise<void>((resolve, reject) => {
      let next = 0;
      let finished = 0;
      let failed = false;
      const fail = (e: unknown) => {
        if (!failed) (failed = true), reject(e);
      };
      const feed = (w: Worker) => {
        if (failed || next >= batches.length) return;
        const batch = next++;
        w.postMessage({ batch, runs: batches[batch]! } satisfies BatchMessage);
      };
      for (const w of pool) {
        w.on('message', (m: { batch: number; cells?: CellOutcome[][]; error?: ErrorBody }) => {
          if (m.error) return fail(new HandlerError(m.error.code, m.error.message, m.error.details));
          results[m.batch] = m.cells!;
          for (const c of m.cells!) count(c);
          if (++finished === batches.length) resolve();
          else feed(w);
        });
        w.on('error', fail);
        w.on('exit', (code) => {
          if (finished < batches.length) fail(new HandlerError('internal', `a matrix worker thread exited (code ${code}) before the work was done`));
        });
        feed(w);
      }
    });
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results.flat();
}
