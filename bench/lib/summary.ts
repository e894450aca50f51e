// The figures a bench reports to `npm run bench` (bench/all.ts): one JSON line per figure, appended
// to the file BENCH_SUMMARY names. A bench run on its own (no BENCH_SUMMARY) only prints its table.
import { appendFileSync } from 'node:fs';

export interface Figure {
  /** what is measured, as the table names it */
  figure: string;
  /** clockledger's figure, with its unit */
  value: string;
  /** the baseline measured in the same run, with its unit */
  baseline: string;
  /** clockledger against the baseline, in the direction the target states (null: no ratio) */
  ratio: number | null;
  target: string;
  met: boolean;
}

export function reportFigures(bench: string, figures: Figure[]): void {
  const file = process.env.BENCH_SUMMARY;
  if (!file) return;
  appendFileSync(file, figures.map((f) => `${JSON.stringify({ bench, ...f })}\n`).join(''));
}
