// The event log on SQLite (better-sqlite3): WAL, a busy timeout and BEGIN IMMEDIATE so several
// processes can append to one file; every append checks the expected stream version and extends
// the hash chain inside the same transaction. A read-only store (readonly: true) never creates,
// converts or writes the file: it opens an existing ledger read-only, and reads an older schema
// through temporary views; where it cannot (or, with openLedgerForReading, must not) create
// SQLite's -wal and -shm beside the ledger, it reads the file as immutable (store/sqlite-open.ts).
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { GENESIS_HASH } from './canonical.js';
import { checkPath, sqliteStoreError, StoreError } from './errors.js';
import { CATEGORY_SQL, inspectLedger, STREAM_HEADS_SQL, viewOlderSchema } from './ledger-file.js';
import { openDatabase } from './sqlite-open.js';
import { omittedFields, withoutFields } from './omit-fields.js';
import { latestSchemaVersion, migrate } from './migrate.js';
import { checkRequestId, missingRowError, registerResponseHash, storedAnswer, type RequestEvents, type StoredRequestRow } from './request-check.js';
import { boundHere, snapshotBinding, snapshotProblem, usableSnapshot, type SnapshotRow } from './snapshot-binding.js';
import { planAppend, requestRow, type AppendHeads } from './append-plan.js';
import { byteOrder, clampInstant, prefixRange } from './sql-shared.js';
import { streamCategory } from './stream-category.js';
import { REQUEST_ROW_SQL, SNAPSHOT_ROW_SQL, verifyLedger } from './verify.js';
import type {
  AppendBatch,
  CommitOptions,
  CommitResult,
  EventChunk,
  EventRow,
  EventStore,
  RawEvent,
  ReadOptions,
  SnapshotRecord,
  StoredEvent,
  StreamReplayer,
  VerifyAnchor,
  VerifyResult,
} from './types.js';

export interface OpenOptions {
  /** how long a writer waits for another process's lock (ms) */
  busyTimeoutMs?: number;
  /** open an existing ledger for reading only: nothing is converted or written (see store/sqlite-open.ts for the files SQLite may create beside it) */
  readonly?: boolean;
  /** with readonly: create no file beside the ledger either, the caller vouching that nothing writes it meanwhile (openLedgerForReading) */
  createNothing?: boolean;
  /** discard snapshots written by any other code version */
  codeVersion?: string;
}

const RAW_COLUMNS = 'position, stream_id AS streamId, version, type, schema_version AS schemaVersion, CAST(time AS TEXT) AS time, data, metadata';
// read(): a stored event's columns as an array (better-sqlite3 builds no object of column names per row:
// a stream read 0.86 of the time of reading rows as objects)
const READ_COLUMNS = 'position, stream_id, version, type, schema_version, CAST(time AS TEXT), data, metadata, hash';
type ReadRow = [
  position: number,
  streamId: string,
  version: number,
  type: string,
  schemaVersion: number,
  time: string,
  data: string,
  metadata: string,
  hash: string,
];
const storedEventOfRow = (r: ReadRow): StoredEvent => ({
  position: r[0],
  streamId: r[1],
  version: r[2],
  type: r[3],
  schemaVersion: r[4],
  time: BigInt(r[5]),
  data: JSON.parse(r[6]),
  metadata: JSON.parse(r[7]),
  hash: r[8],
});
// scanRows(): the columns of an EventRow, read as arrays
const ROW_COLUMNS = 'position, stream_id, version, type, CAST(time AS TEXT), data';
// scanChunks(): the same columns for up to CHUNK_ROWS rows as the text of one JSON array, six values a
// row (time as a decimal string, data as stored), so a replay pays one string and one JSON.parse per
// chunk instead of a row array and four strings per event
const CHUNK_ROWS = 256;
const chunkText = (data: string) =>
  `count(*), '[' || group_concat(position || ',' || json_quote(stream_id) || ',' ` +
  `|| version || ',' || json_quote(type) || ',"' || CAST(time AS TEXT) || '",' || ${data}, ',') || ']'`;
const RAW_COLUMNS_NO_METADATA =
  "position, stream_id AS streamId, version, type, schema_version AS schemaVersion, CAST(time AS TEXT) AS time, data, '{}' AS metadata";

/** Every fixed statement (one that reads a single column hands back its value: see st()). */
const SQL = {
  insert: 'INSERT INTO events (position, stream_id, version, type, schema_version, time, data, metadata, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  last: 'SELECT position, hash FROM events ORDER BY position DESC LIMIT 1',
  streamVersion: 'SELECT version FROM streams WHERE stream_id = ?',
  upsertStream:
    'INSERT INTO streams (stream_id, version, last_position, last_type) VALUES (?, ?, ?, ?) ON CONFLICT (stream_id) ' +
    'DO UPDATE SET version = excluded.version, last_position = excluded.last_position, last_type = excluded.last_type',
  streamVersionAt: 'SELECT COALESCE(MAX(version), 0) AS v FROM events WHERE stream_id = ? AND position <= ?',
  positionOfVersion: 'SELECT position FROM events WHERE stream_id = ? AND version = ?',
  findRequest: `${REQUEST_ROW_SQL('requests', 'events', (c) => c)} WHERE r.request_id = ?`,
  insertRequest: `INSERT INTO requests (request_id, handler, first_position, last_position, response, fingerprint, response_hash, seq)
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  lastSeq: 'SELECT COALESCE(MAX(seq), 0) FROM requests',
  // the events that carry a request id (through the events_by_request index: one seek)
  requestEvents: "SELECT MIN(position) AS first, MAX(position) AS last, COUNT(*) AS count FROM events WHERE json_extract(metadata, '$.requestId') = ?",
  eventAt: 'SELECT stream_id AS streamId, version, hash FROM events WHERE position = ?',
  // Positions grow with time (writers assert the time they read), so the last entry of the
  // (time, position) index at or before t is the answer: a seek, not a scan.
  positionAtTime: 'SELECT position FROM events WHERE time <= ? ORDER BY time DESC, position DESC LIMIT 1',
  addCategory: 'INSERT INTO stream_categories (category, streams) VALUES (?, ?) ON CONFLICT (category) DO UPDATE SET streams = streams + excluded.streams',
  categoryCount: 'SELECT streams FROM stream_categories WHERE category = ?',
  setWake: 'UPDATE streams SET wake_at = ? WHERE stream_id = ?',
  due:
    'SELECT stream_id AS streamId, CAST(wake_at AS TEXT) AS wakeAt FROM streams WHERE wake_at IS NOT ' +
    'NULL AND wake_at <= ? AND stream_id >= ? AND (? IS NULL OR stream_id < ?) ORDER BY wake_at, stream_id',
  saveSnapshot: 'INSERT OR REPLACE INTO snapshots (stream_id, version, position, code_version, state, chain_hash, binding) VALUES (?, ?, ?, ?, ?, ?, ?)',
  latestSnapshot: `${SNAPSHOT_ROW_SQL('snapshots', 'events', (c) => c)}
                   WHERE s.stream_id = ? AND s.code_version = ? AND s.position <= ? ORDER BY s.position DESC LIMIT 1`,
  // streams with fewer snapshots at multiples of `every` than multiples up to their version
  // (a bound number may arrive as a REAL: the division must be an integer one)
  snapshotGaps: `SELECT s.stream_id FROM streams s WHERE s.version >= @every AND s.version / CAST(@every AS INTEGER) >
                   (SELECT count(*) FROM snapshots p
                     WHERE p.stream_id = s.stream_id AND p.code_version = @code AND p.version % @every = 0)
            ORDER BY s.stream_id`,
  // changes when another connection commits to the file (never for this connection's own commits)
  dataVersion: 'PRAGMA data_version',
} as const satisfies Record<string, string>;

export function openEventStore(path: string, opts: OpenOptions = {}): EventStore {
  return new SqliteEventStore(path, opts);
}

/**
 * Open an existing ledger for reading only, creating nothing at all: no -wal or -shm beside it, in
 * any directory (an input ledger, evidence on a read-only mount). Nothing may write the file while
 * it is read this way; a ledger whose -wal holds changes without its -shm is refused (io).
 */
export function openLedgerForReading(path: string, opts: Pick<OpenOptions, 'busyTimeoutMs' | 'codeVersion'> = {}): EventStore {
  return new SqliteEventStore(path, { ...opts, readonly: true, createNothing: true });
}

class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly readonly: boolean;

  constructor(
    readonly path: string,
    opts: OpenOptions,
  ) {
    checkPath(path, 'event log');
    this.readonly = opts.readonly ?? false;
    const timeout = opts.busyTimeoutMs ?? 30_000;
    if (this.readonly && path !== ':memory:' && !existsSync(path)) throw new StoreError('not_found', `no ledger at ${path}`, { path });
    if (!this.readonly && path !== ':memory:' && !existsSync(dirname(path))) {
      throw new StoreError('not_found', `cannot create ledger ${path}: directory ${dirname(path)} does not exist`, { path });
    }
    this.db = openDatabase(path, { readonly: this.readonly, createNothing: opts.createNothing, timeout });
    try {
      registerResponseHash(this.db);
      // What the file is, read before anything is written (not even the journal mode).
      let found!: ReturnType<typeof inspectLedger>;
      retryWhileBusy(timeout, () => (found = inspectLedger(this.db, path)));
      if (!this.readonly) {
        // Several processes may create and migrate one file at once: wait out their locks.
        retryWhileBusy(timeout, () => {
          this.db.pragma('journal_mode = WAL');
          this.db.pragma('synchronous = NORMAL');
          this.db.pragma('wal_autocheckpoint = 10000');
          migrate(this.db);
        });
      } else if (found.kind === 'blank') {
        const empty = path !== ':memory:' && statSync(path).size === 0;
        throw new StoreError('not_a_ledger', `${path} is ${empty ? 'an empty file' : 'an SQLite database without tables'}, not a clockledger ledger`, { path });
      } else if (found.version < latestSchemaVersion()) {
        viewOlderSchema(this.db, found.version);
      }
    } catch (e) {
      this.db.close();
      throw sqliteStoreError(e, path);
    }
    if (opts.codeVersion && !this.readonly) {
      this.db.prepare('DELETE FROM snapshots WHERE code_version != ?').run(opts.codeVersion);
    }
  }

  /** Statements are prepared on first use (a read-only store never prepares the writes). */
  private readonly stmts = new Map<keyof typeof SQL, Database.Statement>();
  private st(name: keyof typeof SQL): Database.Statement {
    let st = this.stmts.get(name);
    if (!st) {
      st = this.db.prepare(SQL[name]);
      // a read of one column answers with the value itself
      if (st.reader && st.columns().length === 1) st.pluck();
      this.stmts.set(name, st);
    }
    return st;
  }

  /** A cached statement to iterate: an iterating statement is busy until exhausted, so a nested scan of the same shape gets its own. */
  private iterating(sql: string): Database.Statement {
    const st = this.statement(sql);
    return st.busy ? this.db.prepare(sql) : st;
  }

  private writable(what: string): void {
    if (this.readonly) throw new StoreError('invalid_request', `${what}: the ledger ${this.path} is open read-only`);
  }

  transaction<T>(fn: () => T): T {
    // Nested: a savepoint, so a failing inner unit rolls back alone even if the caller catches.
    if (this.db.inTransaction || this.readonly) return this.db.transaction(fn)();
    return this.db.transaction(fn).immediate();
  }

  /** One transaction function for every commit (better-sqlite3 takes ~10 µs to build one). */
  private commitTx?: Database.Transaction<(batches: AppendBatch[], opts: CommitOptions) => CommitResult>;

  commit(batches: AppendBatch[], opts: CommitOptions = {}): CommitResult {
    this.writable('commit');
    const tx = (this.commitTx ??= this.db.transaction((b: AppendBatch[], o: CommitOptions) => this.commitWithin(b, o)));
    // inside a caller's transaction: a savepoint, as transaction() does
    const nested = this.db.inTransaction;
    const result = nested ? tx(batches, opts) : tx.immediate(batches, opts);
    // Committed: the open streams known so far follow the new heads. (Inside an enclosing
    // transaction it is not known yet whether they will stay: forget what is known.)
    if (nested) this.openKnown = null;
    else if (this.openKnown && result.written.length) {
      const heads = new Map<string, string>();
      for (const w of result.written) heads.set(w.streamId, w.type);
      for (const [streamId, type] of heads) for (const q of this.openKnown.answers.values()) q.apply(streamId, type);
    }
    return result;
  }

  /** A commit inside its transaction: the heads it depends on read, its plan (store/append-plan.ts) written. */
  private commitWithin(batches: AppendBatch[], opts: CommitOptions): CommitResult {
    const plan = planAppend(this.appendHeads(batches, opts.requestId), batches, opts);
    if (plan.duplicate) return { duplicate: true, written: [], response: plan.response };
    const insert = this.st('insert');
    for (const r of plan.rows) insert.run(r.position, r.streamId, r.version, r.type, r.schemaVersion, r.time, r.data, r.metadata, r.hash);
    for (const h of plan.streams) this.st('upsertStream').run(h.streamId, h.version, h.position, h.type);
    for (const [streamId, at] of plan.wakes) this.st('setWake').run(at, streamId);
    for (const [category, n] of plan.categories) this.st('addCategory').run(category, n);
    for (const sn of opts.snapshots ?? []) {
      const position =
        plan.written.find((w) => w.streamId === sn.streamId && w.version === sn.version)?.position ?? this.positionOfVersion(sn.streamId, sn.version);
      this.saveSnapshot({ ...sn, position: position ?? 0 });
    }
    opts.alsoWrite?.(plan.written);
    const response = opts.response ? opts.response(plan.written) : undefined;
    const q = requestRow(plan, response);
    if (q) this.st('insertRequest').run(q.requestId, q.handler, q.firstPosition, q.lastPosition, q.response, q.fingerprint, q.responseHash, q.seq);
    return { duplicate: false, written: plan.written, response };
  }

  /** What a commit depends on, read in its transaction: the log's head, the batches' stream versions, the request id's rows. */
  private appendHeads(batches: AppendBatch[], requestId: string | undefined): AppendHeads {
    // (checked before the id is looked up: ids that would be stored alike must not meet)
    if (requestId !== undefined) checkRequestId(requestId);
    const last = this.st('last').get() as { position: number; hash: string } | undefined;
    const versions = new Map<string, number>();
    for (const b of batches) if (!versions.has(b.streamId)) versions.set(b.streamId, (this.st('streamVersion').get(b.streamId) as number | undefined) ?? 0);
    const heads: AppendHeads = { position: last?.position ?? 0, hash: last?.hash ?? GENESIS_HASH, versions };
    if (requestId !== undefined) {
      const stored = (this.st('findRequest').get(requestId) as StoredRequestRow | undefined) ?? null;
      const carried = stored === null ? (this.st('requestEvents').get(requestId) as RequestEvents) : null;
      heads.request = { seq: this.st('lastSeq').get() as number, stored, carried };
    }
    return heads;
  }

  findRequest(requestId: string, fingerprint?: string): { response: unknown } | undefined {
    checkRequestId(requestId);
    const r = this.st('findRequest').get(requestId) as StoredRequestRow | undefined;
    if (r !== undefined) return storedAnswer(r, fingerprint);
    // no row: a request id events carry was answered before (its row removed, or cut by a fork)
    const ev = this.st('requestEvents').get(requestId) as RequestEvents | { count: 0 };
    if (ev.count > 0) throw missingRowError(requestId, ev as RequestEvents, this.lastPosition());
    return undefined;
  }

  private where(o: ReadOptions): { sql: string; params: unknown[] } {
    const { clauses, params } = this.filters(o);
    let sql = clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '';
    sql += ' ORDER BY position';
    if (o.limit !== undefined) (sql += ' LIMIT ?'), params.push(o.limit);
    return { sql, params };
  }

  private filters(o: ReadOptions): { clauses: string[]; params: unknown[] } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (o.fromPosition !== undefined) clauses.push('position >= ?'), params.push(o.fromPosition);
    if (o.toPosition !== undefined) clauses.push('position <= ?'), params.push(o.toPosition);
    if (o.toTime !== undefined) clauses.push('time <= ?'), params.push(clampInstant(o.toTime));
    if (o.streamId !== undefined) clauses.push('stream_id = ?'), params.push(o.streamId);
    if (o.streamPrefix) {
      const [lo, hi] = prefixRange(o.streamPrefix);
      clauses.push(hi === null ? 'stream_id >= ?' : 'stream_id >= ? AND stream_id < ?');
      params.push(...(hi === null ? [lo] : [lo, hi]));
    }
    return { clauses, params };
  }

  // Reads are built from a few shapes of WHERE clause: prepare each shape once.
  private readonly prepared = new Map<string, Database.Statement>();
  private statement(sql: string): Database.Statement {
    let st = this.prepared.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.prepared.set(sql, st);
    }
    return st;
  }

  scan(opts: ReadOptions = {}): IterableIterator<RawEvent> {
    const { sql, params } = this.where(opts);
    const cols = opts.withoutMetadata ? RAW_COLUMNS_NO_METADATA : RAW_COLUMNS;
    return this.iterating(`SELECT ${cols} FROM events${sql}`).iterate(...params) as IterableIterator<RawEvent>;
  }

  scanRows(opts: ReadOptions = {}): IterableIterator<EventRow> {
    const { sql, params } = this.where(opts);
    return this.iterating(`SELECT ${ROW_COLUMNS} FROM events${sql}`)
      .raw(true)
      .iterate(...params) as IterableIterator<EventRow>;
  }

  *scanChunks(opts: ReadOptions = {}): IterableIterator<EventChunk> {
    // the rows as they stand now: later appends (another process) are not read
    const toPosition = Math.min(opts.toPosition ?? Infinity, this.lastPosition());
    const { clauses, params } = this.filters({ ...opts, toPosition });
    const where = ['position > ?', ...clauses].join(' AND ');
    const sub = `FROM events WHERE ${where} ORDER BY position LIMIT ?`;
    const omit = omittedFields(opts);
    // the fields left out by SQLite's json_remove(), before the text is built and parsed
    const data = omit.length ? `json_remove(data, ${omit.map((f) => `'$.${f}'`).join(', ')})` : 'data';
    const chunk = this.statement(`SELECT ${chunkText(data)} FROM (SELECT position, stream_id, version, type, time, data ${sub})`).raw(true);
    const readOne = (d: string) => withoutFields(JSON.parse(d) as unknown, omit);
    let left = opts.limit ?? Infinity;
    let after = (opts.fromPosition ?? 1) - 1;
    while (left > 0) {
      const want = Math.min(CHUNK_ROWS, left);
      let got: [number, string | null] | null;
      try {
        got = chunk.get(after, ...params, want) as [number, string | null];
      } catch (e) {
        // json_remove() on a data column that is not JSON: read those rows one by one (below)
        if (!omit.length || !/malformed JSON/i.test((e as Error).message)) throw e;
        got = null;
      }
      if (got && got[0] === 0) return;
      let count = got ? got[0] : want;
      let rows = got ? (JSON.parse(got[1]!) as EventChunk) : [];
      if (!got || !wellFormedChunk(rows, count, after)) {
        // a data column that is not one JSON value: read the rows one by one, so its own parse fails as scan()'s would
        rows = [];
        for (const r of this.scanRows({ ...opts, fromPosition: after + 1, toPosition, limit: want })) rows.push(r[0], r[1], r[2], r[3], r[4], readOne(r[5]));
        if (!got) count = rows.length / 6;
        if (count === 0) return;
      }
      yield rows;
      after = rows[rows.length - 6] as number;
      left -= count;
      if (count < want) return;
    }
  }

  read(opts: ReadOptions = {}): StoredEvent[] {
    const { sql, params } = this.where(opts);
    const rows = this.statement(`SELECT ${READ_COLUMNS} FROM events${sql}`)
      .raw(true)
      .all(...params) as ReadRow[];
    return rows.map(storedEventOfRow);
  }

  streamVersion(streamId: string, atPosition?: number): number {
    return (
      ((atPosition === undefined ? this.st('streamVersion').get(streamId) : this.st('streamVersionAt').get(streamId, atPosition)) as number | undefined) ?? 0
    );
  }

  streams(prefix = ''): string[] {
    if (!prefix) return this.db.prepare('SELECT stream_id FROM streams ORDER BY stream_id').pluck().all() as string[];
    const [lo, hi] = prefixRange(prefix);
    const sql =
      hi === null
        ? 'SELECT stream_id FROM streams WHERE stream_id >= ? ORDER BY stream_id'
        : 'SELECT stream_id FROM streams WHERE stream_id >= ? AND stream_id < ? ORDER BY stream_id';
    return this.db
      .prepare(sql)
      .pluck()
      .all(...(hi === null ? [lo] : [lo, hi])) as string[];
  }

  /**
   * openStreams' answers, as of a data_version of the file: while no other connection has
   * committed, an answer is what it was, changed only by this store's own commits (commit() applies
   * their new stream heads). A fleet asks before every migration, and the question reads the head
   * of every stream of the prefix.
   */
  private openKnown: { dataVersion: number; answers: Map<string, OpenAnswer> } | null = null;

  openStreams(prefix: string, endTypes: string[]): string[] {
    // (inside a transaction the answer may include writes that do not stay: asked afresh)
    if (this.db.inTransaction) return this.openStreamsNow(prefix, endTypes);
    const dataVersion = this.st('dataVersion').get() as number;
    if (this.openKnown?.dataVersion !== dataVersion) this.openKnown = { dataVersion, answers: new Map() };
    const key = JSON.stringify([prefix, endTypes]);
    let a = this.openKnown.answers.get(key);
    if (!a) this.openKnown.answers.set(key, (a = new OpenAnswer(prefix, endTypes, this.openStreamsNow(prefix, endTypes))));
    return a.list();
  }

  private openStreamsNow(prefix: string, endTypes: string[]): string[] {
    // the streams table keeps each stream's last type: one range read, no scan of the log
    const [lo, hi] = prefix ? prefixRange(prefix) : ['', null];
    const notEnded = endTypes.length ? ` AND last_type NOT IN (${endTypes.map(() => '?').join(', ')})` : '';
    const sql = `SELECT stream_id FROM streams WHERE stream_id >= ?${hi === null ? '' : ' AND stream_id < ?'}${notEnded} ORDER BY stream_id`;
    return this.db
      .prepare(sql)
      .pluck()
      .all(...(hi === null ? [lo] : [lo, hi]), ...endTypes) as string[];
  }

  countCategory(category: string): number {
    return (this.st('categoryCount').get(category) as number | undefined) ?? 0;
  }

  lastPosition(): number {
    return (this.st('last').get() as { position: number } | undefined)?.position ?? 0;
  }

  positionAtTime(t: bigint): number {
    return (this.st('positionAtTime').get(clampInstant(t)) as number | undefined) ?? 0;
  }

  positionOfVersion(streamId: string, version: number): number | undefined {
    return this.st('positionOfVersion').get(streamId, version) as number | undefined;
  }

  dueStreams(t: bigint, prefix = ''): { streamId: string; wakeAt: bigint }[] {
    const [lo, hi] = prefix ? prefixRange(prefix) : ['', null];
    return (this.st('due').all(clampInstant(t), lo, hi, hi) as { streamId: string; wakeAt: string }[]).map((r) => ({
      streamId: r.streamId,
      wakeAt: BigInt(r.wakeAt),
    }));
  }

  saveSnapshot(s: SnapshotRecord): void {
    // (snapshots are a cache: a read-only store rebuilds without keeping them)
    if (this.readonly) return;
    const at = this.st('eventAt').get(s.position) as { streamId: string; version: number; hash: string } | undefined;
    const chainHash = boundHere(s, at);
    this.st('saveSnapshot').run(s.streamId, s.version, s.position, s.codeVersion, s.state, chainHash, snapshotBinding({ ...s, chainHash }));
  }

  latestSnapshot(streamId: string, codeVersion: string, maxPosition = Number.MAX_SAFE_INTEGER): SnapshotRecord | undefined {
    // the latest snapshot bound where it claims to be: one that is not is reported and passed over
    for (let below = maxPosition; ; ) {
      const r = this.st('latestSnapshot').get(streamId, codeVersion, below) as SnapshotRow | undefined;
      if (r === undefined) return undefined;
      const ok = usableSnapshot(this.path, r);
      if (ok) return ok;
      below = r.position - 1;
    }
  }

  snapshotGaps(every: number, codeVersion: string): string[] {
    return this.st('snapshotGaps').all({ every, code: codeVersion }) as string[];
  }

  verify(anchor?: VerifyAnchor, replayer?: StreamReplayer): VerifyResult {
    try {
      return this.db.transaction(() => verifyLedger(this.db, this.path, anchor, replayer))();
    } catch (e) {
      throw sqliteStoreError(e, this.path);
    }
  }

  fork(position: number, targetPath: string): { events: number } {
    if (!Number.isInteger(position) || position < 0) throw new StoreError('invalid_request', `fork position must be a non-negative integer, got ${position}`);
    createForkTarget(targetPath);
    let target: Database.Database | undefined;
    try {
      target = new Database(targetPath);
      target.pragma('journal_mode = WAL');
      migrate(target);
      const t = target;
      // Copied through this connection's reads (so a read-only source, or an older schema read
      // through its views, forks as well), in one read transaction and one write transaction.
      const n = this.db.transaction(() =>
        t.transaction(() => {
          const read = (sql: string) => this.db.prepare(sql).raw(true).safeIntegers(true).iterate(position) as IterableIterator<unknown[]>;
          const copy = (rows: IterableIterator<unknown[]>, insert: string) => {
            const st = t.prepare(insert);
            let k = 0;
            for (const r of rows) st.run(...r), k++;
            return k;
          };
          const events = copy(
            read('SELECT position, stream_id, version, type, schema_version, time, data, metadata, hash FROM events WHERE position <= ? ORDER BY position'),
            'INSERT INTO events (position, stream_id, version, type, schema_version, time, data, metadata, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
          );
          // the requests kept, numbered again in their order (the fork's requests digest is its own)
          copy(
            read(`SELECT request_id, handler, first_position, last_position, response, fingerprint, response_hash, ROW_NUMBER() OVER (ORDER BY seq)
                  FROM requests WHERE COALESCE(last_position, 0) <= ?`),
            SQL.insertRequest,
          );
          // the snapshots bound where they claim (their positions and chain hashes are the same in the copy)
          const snap = t.prepare('INSERT INTO snapshots (stream_id, version, position, code_version, state, chain_hash, binding) VALUES (?, ?, ?, ?, ?, ?, ?)');
          const bound = this.db.prepare(`${SNAPSHOT_ROW_SQL('snapshots', 'events', (c) => c)} WHERE s.position <= ?`);
          for (const r of bound.iterate(position) as IterableIterator<SnapshotRow>) {
            if (snapshotProblem(r) === undefined) snap.run(r.streamId, r.version, r.position, r.codeVersion, r.state, r.chainHash, r.binding);
          }
          t.prepare(`INSERT INTO streams (stream_id, version, last_position, last_type, wake_at) ${STREAM_HEADS_SQL('events')}`).run();
          t.prepare(
            `INSERT INTO stream_categories (category, streams)
             SELECT ${CATEGORY_SQL('stream_id')}, COUNT(*) FROM streams GROUP BY 1`,
          ).run();
          return events;
        })(),
      )();
      target.close();
      return { events: n };
    } catch (e) {
      target?.close();
      removeForkTarget(targetPath);
      throw sqliteStoreError(e, targetPath);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export { streamCategory };

/** The open streams of a prefix (see openStreams), as its stream heads change. */
class OpenAnswer {
  private readonly open: Set<string>;
  private sorted: string[] | null;

  constructor(
    private readonly prefix: string,
    private readonly endTypes: readonly string[],
    streams: string[],
  ) {
    this.open = new Set(streams);
    this.sorted = streams;
  }

  /** A stream's last event is now of this type. */
  apply(streamId: string, lastType: string): void {
    // (the ids of a prefix are exactly those starting with it: see prefixRange)
    if (!streamId.startsWith(this.prefix)) return;
    const open = !this.endTypes.includes(lastType);
    if (open === this.open.has(streamId)) return;
    if (open) this.open.add(streamId);
    else this.open.delete(streamId);
    this.sorted = null;
  }

  /** In stream id order as SQLite sorts text: by UTF-8 bytes. */
  list(): string[] {
    this.sorted ??= [...this.open].sort(byteOrder);
    return [...this.sorted];
  }
}

/** A fork target must be a plain file path (in-memory databases and URIs would vanish or be misread). */
/** A fork that failed leaves nothing: its database file and SQLite's files beside it. */
export function removeForkTarget(targetPath: string): void {
  for (const f of [targetPath, `${targetPath}-wal`, `${targetPath}-shm`]) if (existsSync(f)) unlinkSync(f);
}

/** A fork's new database file, created empty and exclusively: an existing file (or one appearing meanwhile) is never written. */
export function createForkTarget(targetPath: string): void {
  checkPath(targetPath, 'fork target');
  if (targetPath === ':memory:' || /^file:/i.test(targetPath)) {
    throw new StoreError('invalid_request', `fork target ${JSON.stringify(targetPath)} is not a file path: give the path of a new database file`, {
      targetDb: targetPath,
    });
  }
  try {
    closeSync(openSync(targetPath, 'wx'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new StoreError('invalid_request', `fork target ${targetPath} already exists`, { targetDb: targetPath });
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new StoreError('not_found', `fork target ${targetPath}: directory ${dirname(targetPath)} does not exist`, { targetDb: targetPath });
    throw new StoreError('io', `cannot create fork target ${targetPath}: ${(e as Error).message}`, { targetDb: targetPath });
  }
}

function retryWhileBusy(timeoutMs: number, fn: () => void): void {
  // (counts the time it sleeps rather than reading a clock)
  let waited = 0;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    try {
      fn();
      return;
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (!code.startsWith('SQLITE_BUSY') && !code.startsWith('SQLITE_LOCKED')) throw e;
      if (waited > timeoutMs) throw new StoreError('io', `event log stayed locked for ${timeoutMs} ms: ${(e as Error).message}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
      waited += wait;
    }
  }
}

/** A chunk's JSON array holds `count` rows of six values, positions ascending after `after`. */
function wellFormedChunk(a: EventChunk, count: number, after: number): boolean {
  if (a.length !== count * 6) return false;
  for (let i = 0; i < a.length; i += 6) {
    const p = a[i];
    if (typeof p !== 'number' || p <= after) return false;
    after = p;
  }
  return true;
}
