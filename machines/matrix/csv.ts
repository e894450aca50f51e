// The matrix as CSV (RFC 4180: comma-separated, CRLF line ends, a field quoted when it holds a
// comma, a quote or a line break): one row per cell; with a before/after, the "after" side's
// columns beside it and the changes responsible where the verdict changed.
import { changeText, type Change } from './changes.js';
import type { ChangedCell, MatrixCell } from './cells.js';

const field = (v: unknown): string => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};
const row = (vs: unknown[]) => vs.map(field).join(',');

const RESULT = ['verdict', 'status', 'findings', 'worst_tsc_error_ns', 'worst_kvmclock_error_ns', 'worst_realtime_error_ns'];
const BASE = ['index', 'from', 'to', 'strategy', 'guest', 'blackout_ns', ...RESULT];
const AFTER = [...['from', 'to', 'strategy', 'guest', ...RESULT].map((k) => `after_${k}`), 'changed', 'responsible'];
const result = (c: MatrixCell) => [c.verdict, c.status, c.findings.join(' '), c.worstTscErrorNs, c.worstKvmclockErrorNs, c.worstRealtimeErrorNs];
const base = (c: MatrixCell) => [c.index, c.from, c.to, c.strategy, c.guest, c.blackoutNs, ...result(c)];

export function matrixCsv(cells: readonly MatrixCell[], after?: readonly MatrixCell[], changed?: readonly ChangedCell[]): string {
  const head = after ? [...BASE, ...AFTER] : BASE;
  const byIndex = new Map((changed ?? []).map((c) => [c.index, c]));
  const lines = [row(head)];
  for (const [i, c] of cells.entries()) {
    if (!after) {
      lines.push(row(base(c)));
      continue;
    }
    const a = after[i]!;
    const ch = byIndex.get(i);
    const why = (x: ChangedCell) => (x.responsible.length ? x.responsible.map((r: Change) => changeText(r)).join('; ') : 'no single change alone');
    const responsible = !ch ? '' : !ch.attributed ? 'not attributed (maxCells)' : why(ch);
    lines.push(row([...base(c), a.from, a.to, a.strategy, a.guest, ...result(a), ch ? 'yes' : 'no', responsible]));
  }
  return `${lines.join('\r\n')}\r\n`;
}
