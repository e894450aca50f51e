// The answer of the demo handler (handlers/use-cases/demo.ts), for people.
import type { ResponseOf } from '../../responses.js';
import { formatGeneric, table } from '../format.js';
import { auditsTable } from './migrations.js';

/** The comparison table, one line per audit, the rest of the answer, and the HTML reports written. */
export function renderDemo(r: ResponseOf<'demo'>): string {
  const parts: string[] = [];
  const t = r.table;
  if (t && Array.isArray(t.columns) && Array.isArray(t.rows)) parts.push(table(t.columns.map(String), t.rows));
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (k !== 'table' && k !== 'audits' && k !== 'ok' && k !== 'reports') rest[k] = v;
  if (Array.isArray(r.audits) && r.audits.length) parts.push(`audits:\n${auditsTable(r.audits)}`);
  const g = formatGeneric(rest);
  if (g) parts.push(g);
  const files = r.reports?.files;
  if (Array.isArray(files) && files.length) parts.push(`HTML reports (open in a browser):\n${files.map((f) => `  ${String(f)}`).join('\n')}`);
  return parts.join('\n\n') || 'done';
}
