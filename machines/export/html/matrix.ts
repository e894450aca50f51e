// The fleet safety matrix as one HTML page: a heatmap per side (a row per host pair and guest, a
// column per strategy and blackout, each cell its verdict, its findings in its title, a link to its
// full report where one was written), then the cells a before/after changed, with the changes
// responsible. The report's rules: no script, nothing loaded, every text escaped.
import { big, esc, page, table, td } from './page.js';

/** A cell as the matrix answers it (u64s as bigint or decimal strings). */
export type MatrixCellLike = Record<string, any>;

export interface MatrixPageData {
  matrixId: string | null;
  summary: Record<string, number>;
  cells: MatrixCellLike[];
  /** the axes of the side, in order (the heatmap's rows and columns) */
  axes: { pairs: [string, string][]; strategies: string[]; blackoutsNs: unknown[]; guests: string[] };
  after?: { summary: Record<string, number>; cells: MatrixCellLike[]; axes: MatrixPageData['axes'] };
  changed?: MatrixCellLike[];
  /** the href of a cell's report on a side, or null when none was written */
  link?: (side: 'before' | 'after', index: number) => string | null;
}

// the heatmap's own style (the page's policy allows inline style, nothing else)
const STYLE = `<style>
table.hm{border-collapse:collapse;font-size:12px}table.hm td,table.hm th{border:1px solid #fff;padding:0;text-align:center;min-width:26px}
table.hm th{background:#f3f5f8;padding:2px 6px;font-weight:600}table.hm th.row{text-align:left;white-space:nowrap}
table.hm td a,table.hm td span{display:block;color:#fff;text-decoration:none;font-weight:700;line-height:22px}
.hm-pass{background:#1f8a4c}.hm-warn{background:#c27c0e}.hm-fail{background:#c0392b}.hm-na{background:#c9ced8}
td.changed{outline:3px solid #1d2330;outline-offset:-3px}
</style>`;

/** A blackout as people write it: 300 ms, 1.5 s, 30 s, 20 µs (exact to the ns it has). */
export function span(v: unknown): string {
  const ns = big(v);
  if (ns === null) return '—';
  for (const [unit, size] of [
    ['s', 1_000_000_000n],
    ['ms', 1_000_000n],
    ['µs', 1_000n],
  ] as const) {
    if (ns >= size) {
      const frac = (ns % size)
        .toString()
        .padStart(String(size).length - 1, '0')
        .replace(/0+$/, '');
      return `${ns / size}${frac ? `.${frac}` : ''} ${unit}`;
    }
  }
  return `${ns} ns`;
}

const LETTER: Record<string, string> = { pass: 'P', warn: 'W', fail: 'F', 'n/a': '–' };
const cls = (v: string) => (v === 'n/a' ? 'hm-na' : `hm-${v}`);

function summaryText(s: Record<string, number>): string {
  return `pass ${s.pass ?? 0} · warn ${s.warn ?? 0} · fail ${s.fail ?? 0}${s.notApplicable ? ` · n/a ${s.notApplicable}` : ''}`;
}

function cellTitle(c: MatrixCellLike): string {
  const f = (c.findings as string[]).length ? (c.findings as string[]).join(', ') : 'no findings';
  return `cell ${c.index}: ${c.from} → ${c.to}, ${c.strategy}, blackout ${span(c.blackoutNs)}, guest ${c.guest}: ${c.verdict} (${f})`;
}

/** One side's heatmap: rows pair × guest, columns strategy × blackout, in the matrix's index order. */
function heatmap(side: 'before' | 'after', cells: MatrixCellLike[], axes: MatrixPageData['axes'], link: MatrixPageData['link'], changed: Set<number>): string {
  const { pairs, strategies, blackoutsNs, guests } = axes;
  const S = strategies.length;
  const B = blackoutsNs.length;
  const G = guests.length;
  const rowHeads = '<th class="row" rowspan="2">from → to</th><th class="row" rowspan="2">guest</th>';
  const head1 = `<tr>${rowHeads}${strategies.map((s) => `<th colspan="${B}">${esc(s)}</th>`).join('')}</tr>`;
  const head2 = `<tr>${strategies.map(() => blackoutsNs.map((b) => `<th>${esc(span(b))}</th>`).join('')).join('')}</tr>`;
  const rows: string[] = [];
  pairs.forEach(([from, to], p) => {
    guests.forEach((g, gi) => {
      const tds: string[] = [];
      for (let s = 0; s < S; s++) {
        for (let b = 0; b < B; b++) {
          const index = ((p * S + s) * B + b) * G + gi;
          const c = cells[index]!;
          const href = link?.(side, index) ?? null;
          const mark = `${LETTER[c.verdict] ?? '?'}`;
          const inner = href ? `<a href="${esc(href)}" title="${esc(cellTitle(c))}">${mark}</a>` : `<span title="${esc(cellTitle(c))}">${mark}</span>`;
          tds.push(`<td class="${cls(c.verdict)}${changed.has(index) ? ' changed' : ''}">${inner}</td>`);
        }
      }
      rows.push(`<tr><th class="row">${esc(`${from} → ${to}`)}</th><th class="row">${esc(g)}</th>${tds.join('')}</tr>`);
    });
  });
  return `<div class="scroll"><table class="hm"><thead>${head1}${head2}</thead><tbody>${rows.join('\n')}</tbody></table></div>`;
}

const pairText = (c: MatrixCellLike) => {
  const before = `${c.from.before} → ${c.to.before}`;
  const after = `${c.from.after} → ${c.to.after}`;
  return before === after ? before : `${before} / ${after}`;
};

function changedTable(changed: MatrixCellLike[], link: MatrixPageData['link']): string {
  if (!changed.length) return '<p>No cell changed its verdict.</p>';
  const linked = (side: 'before' | 'after', index: number, text: string) => {
    const href = link?.(side, index) ?? null;
    return href ? `<a href="${esc(href)}">${esc(text)}</a>` : esc(text);
  };
  const responsible = (c: MatrixCellLike) => {
    if (!c.attributed) return 'not attributed (beyond maxCells)';
    if (!c.responsible.length) return `no single change alone (${c.probes.length} tried): together`;
    return (c.probes as MatrixCellLike[])
      .filter((p) => p.reproduces)
      .map((p) => p.text)
      .join('; ');
  };
  return table(
    ['cell', 'from → to', 'guest', 'blackout', 'strategy', 'verdict', 'responsible'].map(esc),
    changed.map((c) => [
      `<td>${esc(c.index)}</td>`,
      td(pairText(c)),
      td(c.guest.before === c.guest.after ? c.guest.before : `${c.guest.before} / ${c.guest.after}`),
      td(span(c.blackoutNs)),
      td(c.strategy.before === c.strategy.after ? c.strategy.before : `${c.strategy.before} → ${c.strategy.after}`),
      `<td>${linked('before', c.index, c.verdict.before)} → ${linked('after', c.index, c.verdict.after)}</td>`,
      td(responsible(c)),
    ]),
  );
}

/** The matrix page. */
export function matrixHtml(d: MatrixPageData): string {
  const changed = new Set<number>((d.changed ?? []).map((c) => c.index as number));
  const title = d.matrixId ? `Fleet safety matrix ${d.matrixId}` : 'Fleet safety matrix';
  const out: string[] = [STYLE, `<h1>${esc(title)}</h1>`];
  out.push(`<div class="sub">${esc(`${d.cells.length} cells: ${summaryText(d.summary)}`)}</div>`);
  const how = [
    'Rows: source → destination host class and guest; columns: VMM strategy and blackout.',
    'P pass, W warn, F fail, – not applicable (no implementation for the architecture).',
    "A cell's title lists its findings; a linked cell opens its full migration report.",
  ];
  out.push(`<p class="sub">${esc(how.join(' '))}</p>`);
  out.push(`<h2>${esc(d.after ? 'Before' : 'Cells')}</h2>`, heatmap('before', d.cells, d.axes, d.link, new Set()));
  if (d.after) {
    out.push(`<h2>${esc(`After: ${summaryText(d.after.summary)}`)}</h2>`, `<p class="sub">${esc('Outlined: the cells whose verdict changed.')}</p>`);
    out.push(heatmap('after', d.after.cells, d.after.axes, d.link, changed));
    out.push(`<h2>${esc(`Changed cells (${changed.size})`)}</h2>`, changedTable(d.changed ?? [], d.link));
  }
  return page(`clockledger: ${title}`, out.join('\n'));
}
