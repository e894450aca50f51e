// The stream of a checked matrix (matrix-<id>): one MatrixChecked event. Its data and the state it
// evolves to; the rest of the record (compact cells, the plan's codec, recording) is in record.ts.
import type { Json } from '../codec.js';

export type Verdict = 'pass' | 'warn' | 'fail' | 'n/a';

export interface Summary {
  pass: number;
  warn: number;
  fail: number;
  /** cells that cannot exist: a strategy without an implementation for the pair's architecture */
  notApplicable: number;
}

/** Every cell's verdict (one letter each: p, w, f, n for n/a) and finding codes (an index into the distinct code lists). */
export interface CompactCells {
  verdicts: string;
  findingSets: string[];
  findings: number[];
}

/** One cell's switch attribution as recorded: the changes whose run alone gave the "after" verdict. */
export interface RecordedChange {
  index: number;
  before: Verdict;
  after: Verdict;
  responsible: string[];
}

export interface MatrixCheckedData {
  matrixId: string;
  /** the plan as run, canonical (u64s as decimal strings) */
  plan: Json;
  cells: number;
  summary: Summary;
  results: CompactCells;
  /** the "after" plan of a before/after, its summary and cells, and the cells whose verdict changed */
  after?: { plan: Json; summary: Summary; results: CompactCells; changed: RecordedChange[] };
}

export type MatrixEvent = { type: 'MatrixChecked'; data: MatrixCheckedData };

export interface MatrixState {
  matrixId: string;
  cells: number;
  summary: Summary;
  compared: boolean;
}

export function applyMatrixEvent(state: MatrixState | null, ev: MatrixEvent): MatrixState {
  if (state) throw new Error(`matrix ${state.matrixId} is already recorded`);
  const d = ev.data;
  return { matrixId: d.matrixId, cells: d.cells, summary: { ...d.summary }, compared: d.after !== undefined };
}
