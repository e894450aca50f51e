// The answers of the export handlers (handlers/use-cases/export.ts), for people: the file as it
// would be written, printed as it is; with --out, what was written (written.ts).
import type { ResponseOf } from '../../responses.js';

/** An export's file, as it would be written (compact JSON, or the ftrace text). */
export function renderExport(r: ResponseOf<'exportTrace'>): string {
  return typeof r.trace === 'string' ? r.trace.replace(/\n$/, '') : JSON.stringify(r.trace);
}

/** A report page (report --html), as it is. */
export function renderHtml(r: ResponseOf<'report'>): string {
  return String(r.html).replace(/\n$/, '');
}
