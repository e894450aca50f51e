// What the SQLite and PostgreSQL stores share about their SQL: stream-prefix ranges, instants as
// 64-bit parameters, and the migration files on disk.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalJson, chainHash } from './canonical.js';
import { StoreError } from './errors.js';
import type { AppendBatch, EventMetadata, NewEvent, RawEvent, StoredEvent, WrittenEvent } from './types.js';

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

/** One event's stored columns as an append writes them, its hash chained to the one before. */
interface EncodedEvent {
  data: string;
  metadata: string;
  schemaVersion: number;
  time: string;
  hash: string;
}

/**
 * Encode one event for its place in the log. A commit gives all its events one metadata object per
 * kind: `metadataText` keeps each one's text so it is encoded once. `metadata` replaces the event's
 * own (a batch's last event, stamped with its wake instant: see batchMetadata).
 */
export function encodeEvent(
  e: NewEvent,
  at: { position: number; streamId: string; version: number },
  prevHash: string,
  metadataText: Map<unknown, string>,
  metadataOf: EventMetadata | undefined = e.metadata,
): EncodedEvent {
  const data = e.canonical ? (JSON.stringify(e.data) ?? 'null') : canonicalJson(e.data ?? null);
  let metadata = metadataText.get(metadataOf);
  if (metadata === undefined) metadataText.set(metadataOf, (metadata = canonicalJson(metadataOf ?? {})));
  const schemaVersion = e.schemaVersion ?? 1;
  const time = e.time.toString();
  // (the content spelled out: a spread of `at` into a new literal took ~8 µs per event in V8)
  const hash = chainHash(prevHash, { position: at.position, streamId: at.streamId, version: at.version, type: e.type, schemaVersion, time, data, metadata });
  return { data, metadata, schemaVersion, time, hash };
}

/**
 * The metadata key under which a batch's last event records the stream's wake instant (a decimal
 * string, or null for none): the store's, so verify can recompute streams.wake_at from the events.
 */
export const WAKE_KEY = 'wakeAt';

/** Metadata objects stamped with a wake instant, by the object stamped and the instant. */
export type Stamped = Map<EventMetadata | undefined, Map<string | null, EventMetadata>>;

/**
 * The metadata of each event of a batch as the log records it: the batch's last event carries the
 * wake instant the batch sets (AppendBatch.wakeAt), so the wake index is chained with the events.
 * An event's metadata.requestId, if any, must be the commit's request id (verify relies on it).
 */
export function batchMetadata(b: AppendBatch, requestId: string | undefined, stamped: Stamped): (EventMetadata | undefined)[] {
  const out: (EventMetadata | undefined)[] = new Array(b.events.length);
  for (let i = 0; i < b.events.length; i++) {
    const m = b.events[i]!.metadata;
    if (requestId !== undefined && m?.requestId !== undefined && m.requestId !== requestId) {
      const claimed = JSON.stringify(m.requestId);
      const why = `an event's metadata.requestId (${claimed}) is not the commit's request id (${JSON.stringify(requestId)})`;
      throw new StoreError('invalid_request', why, { field: 'requestId' });
    }
    out[i] = m;
  }
  if (b.wakeAt === undefined || !b.events.length) return out;
  const wake = b.wakeAt === null ? null : b.wakeAt.toString();
  const last = out[out.length - 1];
  if (last !== undefined && Object.hasOwn(last, WAKE_KEY) && last[WAKE_KEY] !== wake) {
    const recorded = JSON.stringify(last[WAKE_KEY]);
    const why = `the last event's metadata.${WAKE_KEY} (${recorded}) is not the batch's wake instant (${wake})`;
    throw new StoreError('invalid_request', why, { streamId: b.streamId });
  }
  // (a session's events share one metadata object: stamp each object once per wake instant)
  let byWake = stamped.get(last);
  if (!byWake) stamped.set(last, (byWake = new Map()));
  let m = byWake.get(wake);
  if (m === undefined) byWake.set(wake, (m = { ...(last ?? {}), [WAKE_KEY]: wake }));
  out[out.length - 1] = m;
  return out;
}

/**
 * The wake instant a batch sets: its own (wakeAt), or, for a batch copied verbatim from a log (a
 * fork), the one its last event records; undefined leaves the stream's as it is.
 */
export function batchWake(b: AppendBatch): bigint | null | undefined {
  if (b.wakeAt !== undefined) return b.wakeAt;
  const m = b.events.at(-1)?.metadata;
  if (m === undefined || !Object.hasOwn(m, WAKE_KEY)) return undefined;
  const w = m[WAKE_KEY];
  if (w === null) return null;
  if (typeof w !== 'string' || !/^-?[0-9]{1,19}$/.test(w)) {
    const why = `metadata.${WAKE_KEY} of ${b.streamId}'s last event is not a decimal instant: ${JSON.stringify(w)}`;
    throw new StoreError('invalid_request', why, { streamId: b.streamId });
  }
  return BigInt(w);
}

/** What a commit keeps of each stream as it goes: its version, its last event written, its wake instant. */
interface CommitStreams {
  versions: Map<string, number>;
  heads: Map<string, WrittenEvent>;
  wakes: Map<string, bigint | null>;
}

/** A batch written up to `version`: note its stream's version, head (if it wrote an event) and wake instant. */
export function endBatch(s: CommitStreams, b: AppendBatch, version: number, written: WrittenEvent[]): void {
  s.versions.set(b.streamId, version);
  const last = written.at(-1);
  if (last && last.streamId === b.streamId) s.heads.set(b.streamId, last);
  const wake = batchWake(b);
  if (wake !== undefined) s.wakes.set(b.streamId, wake);
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
