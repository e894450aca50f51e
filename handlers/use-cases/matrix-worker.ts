// A worker thread of the matrix: it runs the batches of runs it is sent, each on a scratch ledger
// of its own, and answers with their cells in the order of the batch. Nothing it does depends on
// which worker it is or when it runs, so the cells are the same whatever the number of workers.
import { parentPort } from 'node:worker_threads';
import type { RunSpec } from '../../machines/matrix/plan.js';
import { toErrorBody } from '../errors.js';
import { runOnScratch, type ReportsOption } from './matrix-scratch.js';

export interface BatchMessage {
  batch: number;
  runs: { run: RunSpec; reports?: ReportsOption }[];
}

parentPort!.on('message', async (m: BatchMessage) => {
  try {
    const cells = [];
    for (const { run, reports } of m.runs) cells.push(await runOnScratch(run, reports));
    parentPort!.postMessage({ batch: m.batch, cells });
  } catch (e) {
    parentPort!.postMessage({ batch: m.batch, error: toErrorBody(e) });
  }
});
