// verify(): everything a read or a retry trusts is checked against the events. The engine's own
// integrity check first (SQLite's; damaged pages are `corrupt`, not "intact"); then the hash chain
// with the position and version sequences; then every table kept beside the events:
// - streams: each row's version, last position and type are its events'; its wake instant is the
//   one its last event records (metadata.wakeAt, written by the store with the batch that set it),
//   or, where the last event records none (a log written before wakes were recorded, a fork cut
//   inside a batch), what a replay of the stream implies (with a replayer), else counted unchecked;
// - stream_categories: each count is the number of streams with events;
// - requests: each row's response hash, its number (1, 2, ... without gaps) and the digest chained
//   over them; the request ids events carry (metadata.requestId) have a row whose positions hold
//   them, except a run of them ending the log (what a fork cut inside a request leaves);
// - snapshots: each one's binding (store/snapshot-binding.ts), and with a replayer its state,
//   re-derived by replaying its stream up to it.
// The head (last position and hash, the requests' number and digest) is reported so it can be
// kept outside the log: a log shortened at its end with every table fixed to match, or a request
// rewritten with its hashes recomputed, is consistent in itself, and only an anchor reveals it.
// The checks are pure functions over rows, so the SQLite and PostgreSQL engines run the same ones;
// each engine only reads its rows.
import type Database from 'better-sqlite3';
import { chainHash, GENESIS_HASH } from './canonical.js';
import { StoreError } from './errors.js';
import { requestsLink, responseHash, type StoredRequestRow } from './request-check.js';
import { snapshotProblem, type SnapshotRow } from './snapshot-binding.js';
import { WAKE_KEY } from './append-plan.js';
import { streamCategory } from './stream-category.js';
import type { EventRow, LedgerHead, RawEvent, StreamReplayer, VerifyAnchor, VerifyCoverage, VerifyResult } from './types.js';

export type ChainRow = RawEvent & { hash: string };
export interface StreamRow {
  streamId: string;
  version: number;
  lastPosition: number;
  lastType: string;
  /** decimal text (null: none) */
  wakeAt: string | null;
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
  /** the last event's metadata text */
  metadata: string;
}

export interface Problem {
  position?: number;
  table: string;
  reason: string;
}

/** A top-level string field of a metadata text (undefined: absent, or the text is not an object). */
function metadataField(text: string, key: string): { found: false } | { found: true; value: unknown } {
  // (canonical JSON writes a key as "key": only a text holding that may have it)
  if (!text.includes(`"${key}"`)) return { found: false };
  try {
    const m = JSON.parse(text) as unknown;
    if (m === null || typeof m !== 'object' || Array.isArray(m) || !Object.hasOwn(m, key)) return { found: false };
    return { found: true, value: (m as Record<string, unknown>)[key] };
  } catch {
    return { found: false };
  }
}

/** The hash chain with its position and version sequences, fed the events in position order. */
export class ChainCheck {
  private prev = GENESIS_HASH;
  private expected = 1;
  checked = 0;
  readonly streams = new Map<string, StreamSeen>();
  /** the request ids events carry: where the events carrying each are */
  readonly requestEvents = new Map<string, { first: number; last: number; count: number }>();
  // (a commit's events share one metadata text: parsed once per run)
  private metaText = '';
  private metaRequest: string | undefined;

  /** the break this row shows, if any (then stop feeding) */
  add(r: ChainRow): { firstBrokenPosition: number; reason: string } | undefined {
    if (r.position !== this.expected) return { firstBrokenPosition: this.expected, reason: `position ${this.expected} is missing` };
    const s = this.streams.get(r.streamId);
    const v = (s?.version ?? 0) + 1;
    if (r.version !== v) return { firstBrokenPosition: r.position, reason: `stream ${r.streamId} jumps to version ${r.version}, expected ${v}` };
    if (chainHash(this.prev, r) !== r.hash) return { firstBrokenPosition: r.position, reason: 'hash chain broken: the event or its predecessor was altered' };
    if (s) (s.version = v), (s.last = r.position), (s.type = r.type), (s.metadata = r.metadata);
    else this.streams.set(r.streamId, { version: v, first: r.position, last: r.position, type: r.type, metadata: r.metadata });
    if (r.metadata !== this.metaText) {
      this.metaText = r.metadata;
      const f = metadataField(r.metadata, 'requestId');
      this.metaRequest = f.found && typeof f.value === 'string' ? f.value : undefined;
    }
    if (this.metaRequest !== undefined) {
      const e = this.requestEvents.get(this.metaRequest);
      if (e) (e.last = r.position), e.count++;
      else this.requestEvents.set(this.metaRequest, { first: r.position, last: r.position, count: 1 });
    }
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

/** One stream to replay: up to where, the snapshots to compare on the way, and whether to check its wake at the end. */
export interface ReplayTask {
  streamId: string;
  toPosition: number;
  /** snapshots of the replayer's code version with a sound binding, by position */
  snapshots: SnapshotRow[];
  /** the stream's wake_at, to compare with the replay's at its last event (undefined: not checked) */
  wakeAt?: string | null;
}

/**
 * Every check of a ledger but the engine's own, fed by the engine: the events in order (add), then
 * the tables beside them, then the replays they call for (with a replayer), then the verdict.
 */
export class LedgerCheck {
  readonly chain = new ChainCheck();
  private readonly problems: Problem[] = [];
  private readonly coverage: VerifyCoverage = { requests: 0, snapshots: 0, snapshotStates: 0, wakes: 0, wakesUnchecked: 0 };
  private requestsHead = { seq: 0, hash: GENESIS_HASH };
  /** streams whose wake only a replay can judge, with their wake_at */
  private readonly wakeByReplay = new Map<string, string | null>();
  private readonly snapshotsToReplay: SnapshotRow[] = [];

  constructor(
    private readonly anchor?: VerifyAnchor,
    private readonly replayer?: StreamReplayer,
  ) {}

  add(r: ChainRow): { firstBrokenPosition: number; reason: string } | undefined {
    return this.chain.add(r);
  }

  /** Each stream's row holds its last event's version, position, type and recorded wake; no row without events. */
  streams(rows: StreamRow[]): void {
    const seen = this.chain.streams;
    const last = this.chain.checked;
    const out = this.problems;
    const listed = new Set<string>();
    for (const r of rows) {
      listed.add(r.streamId);
      const s = seen.get(r.streamId);
      if (r.lastPosition > last) {
        out.push({
          table: 'streams',
          position: last + 1,
          reason:
            `stream ${r.streamId} ends at position ${r.lastPosition} ` + `(version ${r.version}) but the log ends at ${last}: events were removed from its end`,
        });
      } else if (!s) {
        out.push({
          table: 'streams',
          position: r.lastPosition || undefined,
          reason: `stream ${r.streamId} is listed (version ${r.version}) but has no events`,
        });
      } else if (s.version !== r.version || s.last !== r.lastPosition || s.type !== r.lastType) {
        out.push({
          table: 'streams',
          position: Math.min(s.last, r.lastPosition || s.last),
          reason:
            `stream ${r.streamId} is listed at version ${r.version} (position ${r.lastPosition}, ${r.lastType}) ` +
            `but its events end at version ${s.version} (position ${s.last}, ${s.type})`,
        });
      } else this.wake(r, s);
    }
    for (const [id, s] of seen) if (!listed.has(id)) out.push({ table: 'streams', position: s.first, reason: `stream ${id} has events but no row in streams` });
  }

  /** A stream's wake instant against the one its last event records (or, recording none, against a replay). */
  private wake(r: StreamRow, s: StreamSeen): void {
    const rec = metadataField(s.metadata, WAKE_KEY);
    if (!rec.found) {
      if (this.replayer && !this.replayer.hasWake(r.streamId)) this.compareWake(r.streamId, r.wakeAt, null, s.last, 'it can have none');
      else if (this.replayer) this.wakeByReplay.set(r.streamId, r.wakeAt);
      else this.coverage.wakesUnchecked++;
      return;
    }
    const want = typeof rec.value === 'string' || rec.value === null ? rec.value : JSON.stringify(rec.value);
    this.compareWake(r.streamId, r.wakeAt, want, s.last, `its last event (position ${s.last}) records ${want ?? 'none'}`);
  }

  private compareWake(streamId: string, have: string | null, want: string | null, position: number, why: string): void {
    this.coverage.wakes++;
    if (have === want) return;
    const reason = `stream ${streamId} is to be woken at ${have ?? 'no instant'}, but ${why}: its timers would fire differently`;
    this.problems.push({ table: 'streams', position, reason });
  }

  /** Each category's count is the number of streams with events whose id it begins. */
  categories(rows: CategoryRow[]): void {
    const last = this.chain.checked;
    // per category, its streams' first positions in log order
    const want = new Map<string, number[]>();
    for (const [id, s] of this.chain.streams) {
      const c = streamCategory(id);
      const firsts = want.get(c);
      if (firsts) firsts.push(s.first);
      else want.set(c, [s.first]);
    }
    for (const f of want.values()) f.sort((a, b) => a - b);
    for (const r of rows) {
      const firsts = want.get(r.category) ?? [];
      want.delete(r.category);
      if (firsts.length === r.streams) continue;
      this.problems.push({
        table: 'stream_categories',
        // an undercount: where the first stream it misses begins; an overcount: past the end
        position: r.streams < firsts.length ? firsts[Math.max(r.streams, 0)] : last + 1,
        reason: `category ${r.category} counts ${r.streams} stream${r.streams === 1 ? '' : 's'} but the log has ${firsts.length}`,
      });
    }
    for (const [c, firsts] of want) {
      this.problems.push({
        table: 'stream_categories',
        position: firsts[0],
        reason: `category ${c} has ${firsts.length} stream${firsts.length === 1 ? '' : 's'} but no row`,
      });
    }
  }

  /**
   * Each request's positions lie in the log and its stored response matches its hash; requests are
   * numbered without gaps and their digest matches the anchor's; the request ids the events carry
   * have rows holding them.
   */
  requests(rows: StoredRequestRow[]): void {
    const last = this.chain.checked;
    const out = this.problems;
    const byId = new Map<string, StoredRequestRow>();
    rows.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
    let digest = GENESIS_HASH;
    const anchored = this.anchor?.requests;
    let anchoredDigest: string | undefined = anchored?.seq === 0 ? GENESIS_HASH : undefined;
    let expected = 1;
    for (const r of rows) {
      byId.set(r.requestId, r);
      this.coverage.requests++;
      const at = r.firstPosition ?? r.lastPosition ?? undefined;
      if (r.seq === null) out.push({ table: 'requests', position: at, reason: `request ${r.requestId} has no number` });
      else {
        if (r.seq !== expected) {
          out.push({
            table: 'requests',
            position: at,
            reason:
              `requests jump from number ${expected - 1} to ${r.seq} (request ${r.requestId}): ` +
              (r.seq > expected ? 'a request row was removed (a retry of it would run again)' : 'numbers repeat'),
          });
        }
        expected = r.seq + 1;
      }
      const rowHash = responseHash(r);
      digest = requestsLink(digest, r.seq ?? 0, rowHash);
      if (anchored && r.seq === anchored.seq) anchoredDigest = digest;
      if ((r.firstPosition === null) !== (r.lastPosition === null) || (r.firstPosition !== null && r.firstPosition > r.lastPosition!)) {
        out.push({ table: 'requests', position: at, reason: `request ${r.requestId} records impossible positions ${r.firstPosition}..${r.lastPosition}` });
      } else if (r.lastPosition !== null && r.lastPosition > last) {
        out.push({
          table: 'requests',
          position: last + 1,
          reason: `request ${r.requestId} wrote positions ${r.firstPosition}..${r.lastPosition} but the log ends at ${last}: events were removed from its end`,
        });
      } else if (r.responseHash !== rowHash) {
        const reason = `the stored response of request ${r.requestId} does not match its hash: it was altered (a retry would return it)`;
        out.push({ table: 'requests', position: r.lastPosition ?? undefined, reason });
      }
    }
    this.requestsHead = { seq: expected - 1, hash: digest };
    if (anchored) {
      if (anchored.seq > this.requestsHead.seq) {
        const reason = `the requests end at number ${this.requestsHead.seq}, before the anchored ${anchored.seq}: requests were removed from the end`;
        out.push({ table: 'requests', reason });
      } else if (anchoredDigest !== anchored.hash) {
        const reason =
          `the requests up to number ${anchored.seq} digest to ${anchoredDigest ?? '(a missing number)'}, ` +
          `not the anchored ${anchored.hash}: a request was rewritten or removed`;
        out.push({ table: 'requests', reason });
      }
    }
    // the request ids the events carry
    for (const [id, ev] of this.chain.requestEvents) {
      const r = byId.get(id);
      const where = ev.first === ev.last ? `position ${ev.first}` : `positions ${ev.first}..${ev.last}`;
      if (!r) {
        // (a fork cut inside a request keeps a run of its events at the log's end, and no row)
        if (ev.last === last && ev.count === ev.last - ev.first + 1) continue;
        const reason = `events at ${where} carry request id ${id} but no request row holds it: the row was removed (a retry would run the request again)`;
        out.push({ table: 'requests', position: ev.first, reason });
      } else if (r.firstPosition === null || ev.first < r.firstPosition || ev.last > r.lastPosition!) {
        const held = r.firstPosition === null ? 'none' : `${r.firstPosition}..${r.lastPosition}`;
        out.push({
          table: 'requests',
          position: ev.first,
          reason: `events at ${where} carry request id ${id}, outside the positions its row records (${held})`,
        });
      }
    }
  }

  /** Each snapshot is bound where it claims to be; those a replayer can re-derive are kept for replay. */
  snapshots(rows: SnapshotRow[]): void {
    for (const r of rows) {
      this.coverage.snapshots++;
      const why = snapshotProblem(r);
      if (why !== undefined) this.problems.push({ table: 'snapshots', position: r.position, reason: `${why} (a read would not use it)` });
      else if (this.replayer && r.codeVersion === this.replayer.codeVersion) this.snapshotsToReplay.push(r);
    }
  }

  /** The streams to replay, one task each (call after the tables: empty without a replayer). */
  replayTasks(): ReplayTask[] {
    const tasks = new Map<string, ReplayTask>();
    for (const sn of this.snapshotsToReplay) {
      let t = tasks.get(sn.streamId);
      if (!t) tasks.set(sn.streamId, (t = { streamId: sn.streamId, toPosition: 0, snapshots: [] }));
      t.snapshots.push(sn);
      t.toPosition = Math.max(t.toPosition, sn.position);
    }
    for (const [streamId, wakeAt] of this.wakeByReplay) {
      let t = tasks.get(streamId);
      if (!t) tasks.set(streamId, (t = { streamId, toPosition: 0, snapshots: [] }));
      t.wakeAt = wakeAt;
      t.toPosition = this.chain.streams.get(streamId)!.last;
    }
    for (const t of tasks.values()) t.snapshots.sort((a, b) => a.position - b.position);
    return [...tasks.values()];
  }

  /** Replay one task's stream from rows the engine reads (the stream's events up to task.toPosition, in order). */
  replay(task: ReplayTask, rows: Iterable<EventRow>): void {
    const run = this.startReplay(task);
    for (const row of rows) run.apply(row);
    run.end();
  }

  /** The same, fed a row at a time (an engine that reads asynchronously). */
  startReplay(task: ReplayTask): { apply(row: EventRow): void; end(): void } {
    const replay = this.replayer!.replay(task.streamId);
    let next = 0;
    let lastPosition = 0;
    let failed = false;
    return {
      apply: (row) => {
        if (failed) return;
        try {
          replay.apply(row);
        } catch (e) {
          // (events this code cannot evolve: nothing after them can be re-derived)
          failed = true;
          const reason = `a replay of stream ${task.streamId} fails at position ${row[0]}: ${(e as Error).message}`;
          this.problems.push({ table: 'events', position: row[0], reason });
          return;
        }
        lastPosition = row[0];
        while (next < task.snapshots.length && task.snapshots[next]!.position <= row[0]) {
          const sn = task.snapshots[next++]!;
          if (sn.position !== row[0]) continue;
          this.coverage.snapshotStates++;
          const why = replay.differs(sn.state);
          if (why !== undefined) {
            this.problems.push({
              table: 'snapshots',
              position: sn.position,
              reason:
                `the snapshot of ${sn.streamId} at version ${sn.version} (position ${sn.position}) is not the state its events give (${why}): ` +
                'it was forged with its binding recomputed (a read would use it)',
            });
          }
        }
      },
      end: () => {
        if (task.wakeAt === undefined || failed) return;
        const want = replay.wakeAt();
        this.compareWake(task.streamId, task.wakeAt, want === null ? null : want.toString(), lastPosition, `a replay of its events gives ${want ?? 'none'}`);
      },
    };
  }

  /** The verdict: the earliest problem, or intact; then the anchor's events part (hashThere: the log's hash at anchorPosition()). */
  verdict(hashThere?: string): VerifyResult {
    const c = this.chain;
    const head: LedgerHead = { ...c.head(), requests: this.requestsHead };
    const base = { checked: c.checked, head, coverage: this.coverage };
    if (this.problems.length) {
      // the earliest position a problem touches (one without a position last)
      const problems = [...this.problems].sort((a, b) => (a.position ?? Infinity) - (b.position ?? Infinity));
      const p = problems[0]!;
      return {
        intact: false,
        ...base,
        ...(p.position !== undefined ? { firstBrokenPosition: p.position } : {}),
        reason: problems.length > 1 ? `${p.reason} (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : p.reason,
        table: p.table,
      };
    }
    return applyAnchor({ intact: true, ...base }, this.anchor, hashThere);
  }

  /** The position whose hash the anchor's events part needs read from the log (none: undefined). */
  anchorPosition(): number | undefined {
    const a = this.anchor;
    return !this.problems.length && a && a.position > 0 && a.position <= this.chain.checked ? a.position : undefined;
  }

  /** A verdict for a chain broken at a row: what was checked up to it, and the engine's last row and requests as the head. */
  broken(b: { firstBrokenPosition: number; reason: string }, last: { position: number; hash: string } | undefined, requests: StoredRequestRow[]): VerifyResult {
    const head = { ...(last ?? { position: 0, hash: GENESIS_HASH }), requests: requestsHeadOf(requests) };
    return { intact: false, checked: this.chain.checked, head, ...b, table: 'events' };
  }
}

/** The requests' head: the last number and the digest over the rows in number order. */
export function requestsHeadOf(rows: StoredRequestRow[]): { seq: number; hash: string } {
  let hash = GENESIS_HASH;
  let seq = 0;
  for (const r of [...rows].sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity))) {
    hash = requestsLink(hash, r.seq ?? 0, responseHash(r));
    seq = r.seq ?? seq;
  }
  return { seq, hash };
}

/**
 * An intact log checked against a head kept from an earlier verify: it must still hold that
 * position with that hash. hashThere is the log's hash at the anchor's position (read by the engine).
 */
function applyAnchor(v: VerifyResult, anchor: VerifyAnchor | undefined, hashThere: string | undefined): VerifyResult {
  if (!v.intact || !anchor) return v;
  const { head } = v;
  if (anchor.position > head.position) {
    const reason = `the log ends at position ${head.position}, before the anchored position ${anchor.position}: events were removed from its end`;
    return { ...v, intact: false, firstBrokenPosition: head.position + 1, reason, table: 'events' };
  }
  const at = anchor.position === 0 ? GENESIS_HASH : hashThere;
  if (at !== anchor.hash) {
    const reason = `position ${anchor.position} has hash ${at}, not the anchored ${anchor.hash}: the log up to it was rewritten`;
    return { ...v, intact: false, firstBrokenPosition: anchor.position, reason, table: 'events' };
  }
  return v;
}

// ---- SQLite

const COLUMNS = 'position, stream_id AS streamId, version, type, schema_version AS schemaVersion, CAST(time AS TEXT) AS time, data, metadata, hash';
/**
 * a request row with the hash of its last event (the same select on both engines, positions as numbers);
 * migrations/pg/007_load_function.sql holds a frozen copy of it (clockledger_load): change both
 */
export const REQUEST_ROW_SQL = (requests: string, events: string, num: (col: string) => string) =>
  `SELECT r.request_id AS "requestId", r.handler, r.fingerprint, ${num('r.first_position')} AS "firstPosition", ${num('r.last_position')} AS "lastPosition",
          r.response, r.response_hash AS "responseHash", ${num('r.seq')} AS seq, e.hash AS "lastHash"
   FROM ${requests} r LEFT JOIN ${events} e ON e.position = r.last_position`;
/** snapshot rows with the event at each one's position (the same select on both engines) */
export const SNAPSHOT_ROW_SQL = (snapshots: string, events: string, num: (col: string) => string) =>
  `SELECT s.stream_id AS "streamId", s.version, ${num('s.position')} AS position, s.code_version AS "codeVersion", s.state,
          s.chain_hash AS "chainHash", s.binding,
          e.stream_id AS "atStreamId", e.version AS "atVersion", e.hash AS "atHash"
   FROM ${snapshots} s LEFT JOIN ${events} e ON e.position = s.position`;
/** a stream's events up to a position, as replay rows (the same select on both engines; $1 stream, $2 after, $3 up to) */
export const STREAM_ROWS_SQL = (events: string, time: string, num: (col: string) => string) =>
  `SELECT ${num('position')} AS position, stream_id, version, type, ${time} AS time, data FROM ${events}`;

export function verifyLedger(db: Database.Database, path: string, anchor?: VerifyAnchor, replayer?: StreamReplayer): VerifyResult {
  const check = db.pragma('integrity_check') as { integrity_check: string }[];
  if (check.length !== 1 || check[0]!.integrity_check !== 'ok') {
    const found = check.map((r) => r.integrity_check);
    throw new StoreError('corrupt', `${path} is damaged (SQLite integrity check: ${found.slice(0, 3).join('; ')}${found.length > 3 ? '; …' : ''})`, {
      integrityCheck: found.slice(0, 20),
    });
  }
  const v = new LedgerCheck(anchor, replayer);
  for (const r of db.prepare(`SELECT ${COLUMNS} FROM events ORDER BY position`).iterate() as IterableIterator<ChainRow>) {
    const broken = v.add(r);
    if (broken) {
      const last = db.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1').get() as { position: number; hash: string } | undefined;
      return v.broken(broken, last, db.prepare(REQUEST_ROW_SQL('requests', 'events', (c) => c)).all() as StoredRequestRow[]);
    }
  }
  const streams = 'SELECT stream_id AS streamId, version, last_position AS lastPosition, last_type AS lastType, CAST(wake_at AS TEXT) AS wakeAt FROM streams';
  v.streams(db.prepare(streams).all() as StreamRow[]);
  v.categories(db.prepare('SELECT category, streams FROM stream_categories').all() as CategoryRow[]);
  v.requests(db.prepare(REQUEST_ROW_SQL('requests', 'events', (c) => c)).all() as StoredRequestRow[]);
  v.snapshots(db.prepare(SNAPSHOT_ROW_SQL('snapshots', 'events', (c) => c)).all() as SnapshotRow[]);
  const rows = db.prepare(`${STREAM_ROWS_SQL('events', 'CAST(time AS TEXT)', (c) => c)} WHERE stream_id = ? AND position <= ? ORDER BY position`).raw(true);
  for (const t of v.replayTasks()) v.replay(t, rows.iterate(t.streamId, t.toPosition) as IterableIterator<EventRow>);
  const at = v.anchorPosition();
  return v.verdict(at === undefined ? undefined : (db.prepare('SELECT hash FROM events WHERE position = ?').pluck().get(at) as string));
}
