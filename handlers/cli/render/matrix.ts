// Human renderings of the matrix: the summary, a grid of verdicts (a row per host pair and guest, a
// column per strategy and blackout), the cells that do not pass, and the changed cells of a
// before/after with the changes responsible.
import { nsReadable as humanNs } from '../../../lib/units.js';
import { keyValues, table } from '../format.js';

type R = Record<string, any>;

const LETTER: Record<string, string> = { pass: 'P', warn: 'W', fail: 'F', 'n/a': '-' };
const summaryLine = (s: R) => `pass ${s.pass} · warn ${s.warn} · fail ${s.fail}${s.notApplicable ? ` · n/a ${s.notApplicable}` : ''}`;
const firstSeen = (xs: string[]) => [...new Set(xs)];
const LIST_AT_MOST = 40;

/** The verdict grid of one side, its axes read back from the cells (which come in index order). */
function grid(cells: R[]): string {
  const strategies = firstSeen(cells.map((c) => c.strategy));
  const blackouts = firstSeen(cells.map((c) => String(c.blackoutNs)));
  const guests = firstSeen(cells.map((c) => c.guest));
  const pairs = firstSeen(cells.map((c) => `${c.from} → ${c.to}`));
  const columns = strategies.length * blackouts.length;
  if (columns > 60 || pairs.length * guests.length > 200) {
    return `(${pairs.length * guests.length} rows × ${columns} columns: too large to draw here; --format html --out FILE draws the heatmap)`;
  }
  const cols = strategies.flatMap((s) => blackouts.map((b) => `${s} ${humanNs(b)}`));
  const rows = pairs.flatMap((p, pi) =>
    guests.map((g, gi) => {
      const letters = cols.map((_, k) => LETTER[cells[(pi * columns + k) * guests.length + gi]?.verdict] ?? '?');
      return [p, g, letters.join(' ')];
    }),
  );
  const legend = cols.map((c, k) => `  ${String(k + 1).padStart(2)}: ${c}`).join('\n');
  const header = cols.map((_, k) => String((k + 1) % 10)).join(' ');
  return `${table(['FROM → TO', 'GUEST', header], rows, { wrap: false })}\n\ncolumns (P pass, W warn, F fail, - n/a):\n${legend}`;
}

function notPassing(cells: R[]): string {
  const bad = cells.filter((c) => c.verdict === 'warn' || c.verdict === 'fail');
  if (!bad.length) return 'every cell passes';
  const rows = bad
    .slice(0, LIST_AT_MOST)
    .map((c) => [c.index, `${c.from} → ${c.to}`, c.strategy, humanNs(c.blackoutNs), c.guest, c.verdict, c.findings.join(' ')]);
  const more = bad.length > LIST_AT_MOST ? `\n… ${bad.length - LIST_AT_MOST} more (--json or --format csv lists every cell)` : '';
  return `${table(['CELL', 'FROM → TO', 'STRATEGY', 'BLACKOUT', 'GUEST', 'VERDICT', 'FINDINGS'], rows)}${more}`;
}

function changedList(changed: R[]): string {
  if (!changed.length) return 'no cell changed its verdict';
  const responsible = (c: R) => {
    if (!c.attributed) return 'not attributed (beyond --max-cells)';
    return c.responsible.length
      ? c.probes
          .filter((p: R) => p.reproduces)
          .map((p: R) => p.text)
          .join('; ')
      : 'no single change alone: together';
  };
  const rows = changed
    .slice(0, LIST_AT_MOST)
    .map((c) => [
      c.index,
      `${c.from.before} → ${c.to.before}`,
      c.strategy.before === c.strategy.after ? c.strategy.before : `${c.strategy.before} → ${c.strategy.after}`,
      humanNs(c.blackoutNs),
      c.guest.before,
      `${c.verdict.before} → ${c.verdict.after}`,
      responsible(c),
    ]);
  const more = changed.length > LIST_AT_MOST ? `\n… ${changed.length - LIST_AT_MOST} more (--json lists them all)` : '';
  return `${table(['CELL', 'FROM → TO', 'STRATEGY', 'BLACKOUT', 'GUEST', 'VERDICT', 'RESPONSIBLE'], rows)}${more}`;
}

export function renderMatrix(r: R): string {
  const head = keyValues([
    ['matrix', r.matrixId],
    ['cells', `${r.cells.length}: ${summaryLine(r.summary)}`],
    ['after', r.after ? summaryLine(r.after.summary) : undefined],
    ['changed', r.changed ? `${r.changed.length} cells changed their verdict` : undefined],
    ['left out', r.skipped?.crossArchPairs ? `${r.skipped.crossArchPairs} host pairs across architectures` : undefined],
    ['reports', r.reportsDir ? `${String(r.reportsDir).replace(/\/+$/, '')}/index.html` : undefined],
  ]);
  const parts = [head, '', grid(r.cells), '', notPassing(r.cells)];
  if (r.after) parts.push('', 'after:', grid(r.after.cells), '', changedList(r.changed ?? []));
  parts.push('', `a cell's full audit, run again from the record: clockledger matrix cell ${r.matrixId} <cell>${r.after ? ' [--after]' : ''}`);
  return parts.join('\n');
}

export function renderMatrixCell(r: R): string {
  const c = r.cell as R;
  const out = keyValues([
    ['matrix', `${r.matrixId} (${r.side}), cell ${c.index}`],
    ['migration', `${c.from} → ${c.to}, ${c.strategy}, blackout ${humanNs(c.blackoutNs)}, guest ${c.guest}`],
    ['verdict', `${c.verdict}${c.findings.length ? `: ${c.findings.join(' ')}` : ''}`],
    ['recorded', `${r.recorded.verdict}${r.recorded.findings.length ? `: ${r.recorded.findings.join(' ')}` : ''}`],
    ['same as recorded', r.same ? 'yes' : 'NO: the code now gives another answer'],
    ['worst TSC error', c.worstTscErrorNs === null ? '-' : humanNs(c.worstTscErrorNs)],
    ['worst kvmclock error', c.worstKvmclockErrorNs === null ? '-' : humanNs(c.worstKvmclockErrorNs)],
    ['worst wall-clock error', c.worstRealtimeErrorNs === null ? '-' : humanNs(c.worstRealtimeErrorNs)],
  ]);
  const log = c.guestLog.length ? `\n\nthe guest printed:\n${c.guestLog.map((l: string) => `  ${l}`).join('\n')}` : '';
  const findings = ((r.audit?.findings ?? []) as R[]).map((f) => `  ${f.severity.padEnd(4)} ${f.code}: ${f.message}`).join('\n');
  return `${out}${findings ? `\n\nfindings:\n${findings}` : ''}${log}`;
}
