// verify(): everything a reader trusts is checked against the events. SQLite's own integrity
// check first (damaged pages are `corrupt`, not "intact"); then the hash chain with the position
// and version sequences; then the tables kept beside the events (streams, stream_categories,
// requests with their response hashes). The head (last position and its hash) is reported so it
// can be kept outside the file: deleting events from the end and fixing every table to match
// leaves a shorter log that is consistent in itself, which only an outside anchor reveals.
import type Database from 'better-sqlite3';
import { chainHash, GENESIS_HASH } from './canonical.js';
import { StoreError } from './errors.js';
import { responseHash } from './request-check.js';
import { streamCategory } from './stream-category.js';
import type { RawEvent, VerifyResult } from './types.js';

const COLUMNS = 'position, stream_id AS streamId, version, type, schema_version AS schemaVersion, CAST(time AS TEXT) AS time, data, metadata, hash';

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

export function verifyLedger(db: Database.Database, path: string): VerifyResult {
  const check = db.pragma('integrity_check') as { integrity_check: string }[];
  if (check.length !== 1 || check[0]!.integrity_check !== 'ok') {
    const found = check.map((r) => r.integrity_check);
    throw new StoreError('corrupt', `${path} is damaged (SQLite integrity check: ${found.slice(0, 3).join('; ')}${found.length > 3 ? '; …' : ''})`, { integrityCheck: found.slice(0, 20) });
  }
  let prev = GENESIS_HASH;
  let expected = 1;
  let checked = 0;
  const streams = new Map<string, StreamSeen>();
  const rows = db.prepare(`SELECT ${COLUMNS} FROM events ORDER BY position`).iterate() as IterableIterator<RawEvent & { hash: string }>;
  for (const r of rows) {
    const broken = (reason: string, at = r.position): VerifyResult => ({ intact: false, checked, head: headOf(db), firstBrokenPosition: at, reason, table: 'events' });
    if (r.position !== expected) return broken(`position ${expected} is missing`, expected);
    const s = streams.get(r.streamId);
    const v = (s?.version ?? 0) + 1;
    if (r.version !== v) return broken(`stream ${r.streamId} jumps to version ${r.version}, expected ${v}`);
    if (chainHash(prev, r) !== r.hash) return broken('hash chain broken: the event or its predecessor was altered');
    if (s) (s.version = v), (s.last = r.position), (s.type = r.type);
    else streams.set(r.streamId, { version: v, first: r.position, last: r.position, type: r.type });
    prev = r.hash;
    expected++;
    checked++;
  }
  const head = { position: checked, hash: prev };
  const problems = [...checkStreams(db, streams, head.position), ...checkCategories(db, streams, head.position), ...checkRequests(db, head.position)];
  if (!problems.length) return { intact: true, checked, head };
  // the earliest position a problem touches (one without a position last)
  problems.sort((a, b) => (a.position ?? Infinity) - (b.position ?? Infinity));
  const p = problems[0]!;
  return {
    intact: false,
    checked,
    head,
    ...(p.position !== undefined ? { firstBrokenPosition: p.position } : {}),
    reason: problems.length > 1 ? `${p.reason} (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : p.reason,
    table: p.table,
  };
}

function headOf(db: Database.Database): { position: number; hash: string } {
  const r = db.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1').get() as { position: number; hash: string } | undefined;
  return r ?? { position: 0, hash: GENESIS_HASH };
}

/** Each stream's row holds its last event's version, position and type; no row without events. */
function checkStreams(db: Database.Database, seen: Map<string, StreamSeen>, last: number): Problem[] {
  const out: Problem[] = [];
  const rows = db.prepare('SELECT stream_id AS streamId, version, last_position AS lastPosition, last_type AS lastType FROM streams').all() as {
    streamId: string;
    version: number;
    lastPosition: number;
    lastType: string;
  }[];
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
function checkCategories(db: Database.Database, seen: Map<string, StreamSeen>, last: number): Problem[] {
  // per category, its streams' first positions in log order
  const want = new Map<string, number[]>();
  for (const [id, s] of seen) {
    const c = streamCategory(id);
    const firsts = want.get(c);
    if (firsts) firsts.push(s.first);
    else want.set(c, [s.first]);
  }
  for (const f of want.values()) f.sort((a, b) => a - b);
  const out: Problem[] = [];
  const rows = db.prepare('SELECT category, streams FROM stream_categories').all() as { category: string; streams: number }[];
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
function checkRequests(db: Database.Database, last: number): Problem[] {
  const out: Problem[] = [];
  const rows = db
    .prepare(
      `SELECT r.request_id AS requestId, r.handler, r.fingerprint, r.first_position AS firstPosition, r.last_position AS lastPosition, r.response, r.response_hash AS responseHash, e.hash AS lastHash
       FROM requests r LEFT JOIN events e ON e.position = r.last_position`,
    )
    .all() as { requestId: string; handler: string; fingerprint: string | null; firstPosition: number | null; lastPosition: number | null; response: string; responseHash: string | null; lastHash: string | null }[];
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
