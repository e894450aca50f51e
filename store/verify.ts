// verify(): everything a reader trusts is checked against the events. The engine's own integrity
// check first (SQLite's; damaged pages are `corrupt`, not "intact"); then the hash chain with the
// position and version sequences; then the tables kept beside the events (streams,
// stream_categories, requests with their response hashes). The head (last position and its hash)
// is reported so it can be kept outside the log: deleting events from the end and fixing every
// table to match leaves a shorter log that is consistent in itself, which only an outside anchor
// reveals. The checks are pure functions over rows, so the SQLite and PostgreSQL engines run the
// same ones; each engine only reads its rows.
import type Database from 'better-sqlite3';
import { chainHash, GENESIS_HASH } from './canonical.js';
import { StoreError } from './errors.js';
import { responseHash, type StoredRequestRow } from './request-check.js';
import { streamCategory } from './stream-category.js';
import type { RawEvent, VerifyAnchor, VerifyResult } from './types.js';

export type ChainRow = RawEvent & { hash: string };
export interface StreamRow {
  streamId: string;
  version: number;
  lastPosition: number;
  lastType: string;
}
export interface CategoryRow {
  category: string;
  streams: number;
}

interface StreamSeen {
  version: number;
  first: number;
  last: number;
  type: string;
}

interface Problem {
  position?: number;
  table: string;
  reason: string;
}

/** The hash chain with its position and version sequences, fed the events in position order. */
export class ChainCheck {
  private prev = GENESIS_HASH;
  private expected = 1;
  checked = 0;
  readonly streams = new Map<string, StreamSeen>();

  /** the break this row shows, if any (then stop feeding) */
  add(r: ChainRow): { firstBrokenPosition: number; reason: string } | undefined {
    if (r.position !== this.expected) return { firstBrokenPosition: this.expected, reason: `position ${this.expected} is missing` };
    const s = this.streams.get(r.streamId);
    const v = (s?.version ?? 0) + 1;
    if (r.version !== v) return { firstBrokenPosition: r.position, reason: `stream ${r.streamId} jumps to version ${r.version}, expected ${v}` };
    if (chainHash(this.prev, r) !== r.hash) return { firstBrokenPosition: r.position, reason: 'hash chain broken: the event or its predecessor was altered' };
    if (s) (s.version = v), (s.last = r.position), (s.type = r.type);
    else this.streams.set(r.streamId, { version: v, first: r.position, last: r.position, type: r.type });
    this.prev = r.hash;
    this.expected++;
    this.checked++;
    return undefined;
  }

  /** the last checked event (0 and the genesis hash before any) */
  head(): { position: number; hash: string } {
    return { position: this.checked, hash: this.prev };
  }
}

/** The verdict of an intact chain and the problems found in the tables beside it. */
export function verdict(chain: ChainCheck, problems: Problem[]): VerifyResult {
  const head = chain.head();
  if (!problems.length) return { intact: true, checked: chain.checked, head };
  // the earliest position a problem touches (one without a position last)
  problems.sort((a, b) => (a.position ?? Infinity) - (b.position ?? Infinity));
  const p = problems[0]!;
  return {
    intact: false,
    checked: chain.checked,
    head,
    ...(p.position !== undefined ? { firstBrokenPosition: p.position } : {}),
    reason: problems.length > 1 ? `${p.reason} (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : p.reason,
    table: p.table,
  };
}

/** The position whose hash an anchor check needs read from the log (none: undefined). */
export function anchorPosition(v: VerifyResult, anchor: VerifyAnchor | undefined): number | undefined {
  return v.intact && anchor && anchor.position > 0 && anchor.position <= v.head.position ? anchor.position : undefined;
}

/**
 * An intact log checked against a head kept from an earlier verify: it must still hold that
 * position with that hash. hashThere is the log's hash at anchorPosition() (read by the engine).
 */
export function applyAnchor(v: VerifyResult, anchor: VerifyAnchor | undefined, hashThere: string | undefined): VerifyResult {
  if (!v.intact || !anchor) return v;
  const { checked, head } = v;
  if (anchor.position > head.position) {
    return { intact: false, checked, head, firstBrokenPosition: head.position + 1, reason: `the log ends at position ${head.position}, before the anchored position ${anchor.position}: events were removed from its end`, table: 'events' };
  }
  const at = anchor.position === 0 ? GENESIS_HASH : hashThere;
  if (at !== anchor.hash) {
    return { intact: false, checked, head, firstBrokenPosition: anchor.position, reason: `position ${anchor.position} has hash ${at}, not the anchored ${anchor.hash}: the log up to it was rewritten`, table: 'events' };
  }
  return v;
}

/** Each stream's row holds its last event's version, position and type; no row without events. */
export function checkStreams(rows: StreamRow[], chain: ChainCheck): Problem[] {
  const seen = chain.streams;
  const last = chain.checked;
  const out: Problem[] = [];
  const listed = new Set<string>();
  for (const r of rows) {
    listed.add(r.streamId);
    const s = seen.get(r.streamId);
    if (r.lastPosition > last) {
      out.push({
        table: 'streams',
        position: last + 1,
        reason: `stream ${r.streamId} ends at position ${r.lastPosition} (version ${r.version}) but the log ends at ${last}: events were removed from its end`,
      });
    } else if (!s) {
      out.push({ table: 'streams', position: r.lastPosition || undefined, reason: `stream ${r.streamId} is listed (version ${r.version}) but has no events` });
    } else if (s.version !== r.version || s.last !== r.lastPosition || s.type !== r.lastType) {
      out.push({
        table: 'streams',
        position: Math.min(s.last, r.lastPosition || s.last),
        reason: `stream ${r.streamId} is listed at version ${r.version} (position ${r.lastPosition}, ${r.lastType}) but its events end at version ${s.version} (position ${s.last}, ${s.type})`,
      });
    }
  }
  for (const [id, s] of seen) if (!listed.has(id)) out.push({ table: 'streams', position: s.first, reason: `stream ${id} has events but no row in streams` });
  return out;
}

/** Each category's count is the number of streams with events whose id it begins. */
export function checkCategories(rows: CategoryRow[], chain: ChainCheck): Problem[] {
  const last = chain.checked;
  // per category, its streams' first positions in log order
  const want = new Map<string, number[]>();
  for (const [id, s] of chain.streams) {
    const c = streamCategory(id);
    const firsts = want.get(c);
    if (firsts) firsts.push(s.first);
    else want.set(c, [s.first]);
  }
  for (const f of want.values()) f.sort((a, b) => a - b);
  const out: Problem[] = [];
  for (const r of rows) {
    const firsts = want.get(r.category) ?? [];
    want.delete(r.category);
    if (firsts.length === r.streams) continue;
    out.push({
      table: 'stream_categories',
      // an undercount: where the first stream it misses begins; an overcount: past the end
      position: r.streams < firsts.length ? firsts[Math.max(r.streams, 0)] : last + 1,
      reason: `category ${r.category} counts ${r.streams} stream${r.streams === 1 ? '' : 's'} but the log has ${firsts.length}`,
    });
  }
  for (const [c, firsts] of want) out.push({ table: 'stream_categories', position: firsts[0], reason: `category ${c} has ${firsts.length} stream${firsts.length === 1 ? '' : 's'} but no row` });
  return out;
}

/** Each request's positions lie in the log and its stored response matches its hash. */
export function checkRequests(rows: StoredRequestRow[], chain: ChainCheck): Problem[] {
  const last = chain.checked;
  const out: Problem[] = [];
  for (const r of rows) {
    if ((r.firstPosition === null) !== (r.lastPosition === null) || (r.firstPosition !== null && r.firstPosition > r.lastPosition!)) {
      out.push({ table: 'requests', position: r.firstPosition ?? r.lastPosition ?? undefined, reason: `request ${r.requestId} records impossible positions ${r.firstPosition}..${r.lastPosition}` });
    } else if (r.lastPosition !== null && r.lastPosition > last) {
      out.push({ table: 'requests', position: last + 1, reason: `request ${r.requestId} wrote positions ${r.firstPosition}..${r.lastPosition} but the log ends at ${last}: events were removed from its end` });
    } else if (r.responseHash !== responseHash(r)) {
      out.push({
        table: 'requests',
        position: r.lastPosition ?? undefined,
        reason: `the stored response of request ${r.requestId} does not match its hash: it was altered (a retry would return it)`,
      });
    }
  }
  return out;
}

// ---- SQLite

const COLUMNS = 'position, stream_id AS streamId, version, type, schema_version AS schemaVersion, CAST(time AS TEXT) AS time, data, metadata, hash';
/** a request row with the hash of its last event (the same select on both engines, positions as numbers) */
export const REQUEST_ROW_SQL = (requests: string, events: string, num: (col: string) => string) =>
  `SELECT r.request_id AS "requestId", r.handler, r.fingerprint, ${num('r.first_position')} AS "firstPosition", ${num('r.last_position')} AS "lastPosition", r.response, r.response_hash AS "responseHash", e.hash AS "lastHash"
   FROM ${requests} r LEFT JOIN ${events} e ON e.position = r.last_position`;

export function verifyLedger(db: Database.Database, path: string, anchor?: VerifyAnchor): VerifyResult {
  const check = db.pragma('integrity_check') as { integrity_check: string }[];
  if (check.length !== 1 || check[0]!.integrity_check !== 'ok') {
    const found = check.map((r) => r.integrity_check);
    throw new StoreError('corrupt', `${path} is damaged (SQLite integrity check: ${found.slice(0, 3).join('; ')}${found.length > 3 ? '; …' : ''})`, { integrityCheck: found.slice(0, 20) });
  }
  const chain = new ChainCheck();
  for (const r of db.prepare(`SELECT ${COLUMNS} FROM events ORDER BY position`).iterate() as IterableIterator<ChainRow>) {
    const broken = chain.add(r);
    if (broken) return { intact: false, checked: chain.checked, head: headOf(db), ...broken, table: 'events' };
  }
  const streams = db.prepare('SELECT stream_id AS streamId, version, last_position AS lastPosition, last_type AS lastType FROM streams').all() as StreamRow[];
  const categories = db.prepare('SELECT category, streams FROM stream_categories').all() as CategoryRow[];
  const requests = db.prepare(REQUEST_ROW_SQL('requests', 'events', (c) => c)).all() as StoredRequestRow[];
  const v = verdict(chain, [...checkStreams(streams, chain), ...checkCategories(categories, chain), ...checkRequests(requests, chain)]);
  const at = anchorPosition(v, anchor);
  return applyAnchor(v, anchor, at === undefined ? undefined : (db.prepare('SELECT hash FROM events WHERE position = ?').pluck().get(at) as string));
}

function headOf(db: Database.Database): { position: number; hash: string } {
  const r = db.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1').get() as { position: number; hash: string } | undefined;
  return r ?? { position: 0, hash: GENESIS_HASH };
}
