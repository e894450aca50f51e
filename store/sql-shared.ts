// What the SQLite and PostgreSQL stores share about their SQL: stream-prefix ranges, instants as
// 64-bit parameters, and the migration files on disk.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError } from './errors.js';
import type { RawEvent, StoredEvent } from './types.js';

/**
 * The stream ids starting with a prefix are exactly [prefix, prefix with its last code point + 1)
 * when text compares as UTF-8 bytes (SQLite's TEXT, PostgreSQL's COLLATE "C"), which order as
 * code points do.
 */
export function prefixRange(prefix: string): [string, string | null] {
  const cps = [...prefix];
  const last = cps.pop()!.codePointAt(0)!;
  if (last >= 0x10ffff) return [prefix, null];
  let next = last + 1;
  if (next >= 0xd800 && next <= 0xdfff) next = 0xe000; // skip the surrogate range
  return [prefix, cps.join('') + String.fromCodePoint(next)];
}

/** A stored event from its row (the raw columns and the hash): time as bigint, data and metadata parsed. */
export function storedEventOf(r: RawEvent & { hash: string }): StoredEvent {
  return {
    position: r.position,
    streamId: r.streamId,
    version: r.version,
    type: r.type,
    schemaVersion: r.schemaVersion,
    time: BigInt(r.time),
    data: JSON.parse(r.data),
    metadata: JSON.parse(r.metadata),
    hash: r.hash,
  };
}

export const I64_MIN = -(1n << 63n);
export const I64_MAX = (1n << 63n) - 1n;

/**
 * An instant a query compares against, as a signed 64-bit parameter: stored times are all in
 * that range, so an instant beyond it compares with every one of them as the range's end does.
 */
export function clampInstant(t: bigint): bigint {
  return t < I64_MIN ? I64_MIN : t > I64_MAX ? I64_MAX : t;
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const loaded = new Map<string, Migration[]>();

/**
 * The migrations in migrations/<sub> (from the sources, store/, or the build, dist/store/):
 * NNN_name.sql files, numbered 1..N without gaps.
 */
export function loadMigrationFiles(sub: '' | 'pg'): Migration[] {
  const hit = loaded.get(sub);
  if (hit) return hit;
  const here = dirname(fileURLToPath(import.meta.url));
  const where = join('migrations', sub);
  const dir = [join(here, '..', where), join(here, '../..', where)].find((d) => existsSync(d));
  if (!dir) throw new StoreError('io', `${where} directory not found near ${here}`);
  const list = readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .map((f) => ({ version: Number(f.split('_')[0]), name: f, sql: readFileSync(join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new StoreError('io', `migration ${join(where, m.name)} is out of sequence (expected ${i + 1})`);
  });
  loaded.set(sub, list);
  return list;
}

/** Code point (UTF-8 byte) order, as SQLite compares TEXT. */
export function byteOrder(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}
