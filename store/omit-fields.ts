// ReadOptions.omitDataFields: top-level fields of an event's data a reader does not use, left out
// before (SQLite's json_remove) or after the data is parsed. One check of the names, one removal.
import { StoreError } from './errors.js';

/** a top-level field's name as omitDataFields takes it (an engine may splice it into a JSON path) */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The names asked to be left out, checked (invalid_request: one is not a plain field name). */
export function omittedFields(opts: { omitDataFields?: string[] }): string[] {
  const omit = opts.omitDataFields ?? [];
  for (const f of omit) if (!FIELD_NAME.test(f)) throw new StoreError('invalid_request', `omitDataFields: '${f}' is not a field name`, { field: f });
  return omit;
}

/** Parsed data without those fields (in place). */
export function withoutFields<T>(data: T, omit: readonly string[]): T {
  if (omit.length && data !== null && typeof data === 'object' && !Array.isArray(data)) for (const f of omit) delete (data as Record<string, unknown>)[f];
  return data;
}
