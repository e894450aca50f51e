// The event log on SQLite (better-sqlite3): WAL, a busy timeout and BEGIN IMMEDIATE so several
// processes can append to one file; every append checks the expected stream version and extends
// the hash chain inside the same transaction.
import Database from 'better-sqlite3';
import { existsSync, unlinkSync } from 'node:fs';
import { canonicalJson, chainHash, GENESIS_HASH } from './canonical.js';
import { ConflictError, StoreError } from './errors.js';
import { latestSchemaVersion, migrate } from './migrate.js';
import type {
  AppendBatch,
  CommitOptions,
  CommitResult,
  EventStore,
  RawEvent,
  ReadOptions,
  SnapshotRecord,
  StoredEvent,
  VerifyResult,
  WrittenEvent,
} from './types.js';

export interface OpenOptions {
  /** how long a writer waits for another process's lock (ms) */
  busyTimeoutMs?: number;
  readonly?: boolean;
  /** discard snapshots written by any other code version */
  codeVersion?: string;
}

const RAW_COLUMNS = 'position, stream_id AS streamId, version, type, schema_version AS schemaVersion, CAST(time AS TEXT) AS time, data, metadata';
const RAW_COLUMNS_NO_METADATA = "position, stream_id AS streamId, version, type, schema_version AS schemaVersion, CAST(time AS TEXT) AS time, data, '{}' AS metadata";

export function openEventStore(path: string, opts: OpenOptions = {}): EventStore {
  return new SqliteEventStore(path, opts);
}

class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(
    readonly path: string,
    opts: OpenOptions,
  ) {
    try {
      this.db = new Database(path, { timeout: opts.busyTimeoutMs ?? 30_000, readonly: opts.readonly ?? false });
    } catch (e) {
      throw new StoreError('io', `cannot open event log ${path}: ${(e as Error).message}`);
    }
    try {
      // Refuse a newer schema before touching anything (even the journal mode).
      refuseNewerSchema(this.db);
      if (!opts.readonly) {
        // Several processes may create and migrate one file at once: wait out their locks.
        retryWhileBusy(opts.busyTimeoutMs ?? 30_000, () => {
          this.db.pragma('journal_mode = WAL');
          this.db.pragma('synchronous = NORMAL');
        this.db.pragma('wal_autocheckpoint = 10000');
          migrate(this.db);
        });
      } else if ((this.db.pragma('user_version', { simple: true }) as number) < latestSchemaVersion()) {
        throw new StoreError('schema_too_new', `event log ${path} has an older schema and cannot be migrated read-only; open it writable once`);
      }
    } catch (e) {
      this.db.close();
      if (e instanceof StoreError) throw e;
      throw new StoreError('corrupt', `${path} is not a clockledger event log: ${(e as Error).message}`);
    }
    const db = this.db;
    this.stmts = {
      insert: db.prepare(
        'INSERT INTO events (position, stream_id, version, type, schema_version, time, data, metadata, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      last: db.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1'),
      streamVersion: db.prepare('SELECT version FROM streams WHERE stream_id = ?').pluck(),
      upsertStream: db.prepare(
        'INSERT INTO streams (stream_id, version, last_position, last_type) VALUES (?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position, last_type = excluded.last_type',
      ),
      streamVersionAt: db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM events WHERE stream_id = ? AND position <= ?').pluck(),
      positionOfVersion: db.prepare('SELECT position FROM events WHERE stream_id = ? AND version = ?').pluck(),
      findRequest: db.prepare('SELECT response FROM requests WHERE request_id = ?').pluck(),
      insertRequest: db.prepare('INSERT INTO requests (request_id, handler, first_position, last_position, response) VALUES (?, ?, ?, ?, ?)'),
      // Positions grow with time (writers assert the time they read), so the last entry of the
      // (time, position) index at or before t is the answer: a seek, not a scan.
      positionAtTime: db.prepare('SELECT position FROM events WHERE time <= ? ORDER BY time DESC, position DESC LIMIT 1').pluck(),
      bumpCategory: db.prepare('INSERT INTO stream_categories (category, streams) VALUES (?, 1) ON CONFLICT (category) DO UPDATE SET streams = streams + 1'),
      categoryCount: db.prepare('SELECT streams FROM stream_categories WHERE category = ?').pluck(),
      setWake: db.prepare('UPDATE streams SET wake_at = ? WHERE stream_id = ?'),
      due: db.prepare(
        'SELECT stream_id AS streamId, CAST(wake_at AS TEXT) AS wakeAt FROM streams WHERE wake_at IS NOT NULL AND wake_at <= ? AND stream_id >= ? AND (? IS NULL OR stream_id < ?) ORDER BY wake_at, stream_id',
      ),
      saveSnapshot: db.prepare(
        'INSERT OR REPLACE INTO snapshots (stream_id, version, position, code_version, state) VALUES (?, ?, ?, ?, ?)',
      ),
      latestSnapshot: db.prepare(
        'SELECT stream_id AS streamId, version, position, code_version AS codeVersion, state FROM snapshots WHERE stream_id = ? AND code_version = ? AND position <= ? ORDER BY position DESC LIMIT 1',
      ),
    };
    if (opts.codeVersion && !opts.readonly) {
      db.prepare('DELETE FROM snapshots WHERE code_version != ?').run(opts.codeVersion);
    }
  }

  transaction<T>(fn: () => T): T {
    // Nested: a savepoint, so a failing inner unit rolls back alone even if the caller catches.
    if (this.db.inTransaction) return this.db.transaction(fn)();
    return this.db.transaction(fn).immediate();
  }

  commit(batches: AppendBatch[], opts: CommitOptions = {}): CommitResult {
    return this.transaction(() => {
      if (opts.requestId !== undefined) {
        const prior = this.stmts.findRequest.get(opts.requestId) as string | undefined;
        if (prior !== undefined) return { duplicate: true, written: [], response: JSON.parse(prior) } as CommitResult;
      }
      const last = this.stmts.last.get() as { position: number; hash: string } | undefined;
      let position = last?.position ?? 0;
      let prevHash = last?.hash ?? GENESIS_HASH;
      const versions = new Map<string, number>();
      const written: WrittenEvent[] = [];
      // a session gives all its events one metadata object per kind: encode each once
      const metadataText = new Map<unknown, string>();
      const heads = new Map<string, WrittenEvent>();
      const wakes = new Map<string, bigint | null>();
      for (const b of batches) {
        let version = versions.get(b.streamId) ?? ((this.stmts.streamVersion.get(b.streamId) as number | undefined) ?? 0);
        if (version === 0 && b.events.length) this.stmts.bumpCategory.run(streamCategory(b.streamId));
        if (b.expectedVersion !== 'any' && b.expectedVersion !== version) {
          throw new ConflictError(b.streamId, b.expectedVersion, version);
        }
        for (const e of b.events) {
          position++;
          version++;
          const data = e.canonical ? (JSON.stringify(e.data) ?? 'null') : canonicalJson(e.data ?? null);
          let metadata = metadataText.get(e.metadata);
          if (metadata === undefined) metadataText.set(e.metadata, (metadata = canonicalJson(e.metadata ?? {})));
          const schemaVersion = e.schemaVersion ?? 1;
          if (e.time < -(1n << 63n) || e.time >= 1n << 63n) throw new StoreError('invalid_request', `event time ${e.time} does not fit a signed 64-bit instant`);
          const time = e.time.toString();
          const hash = chainHash(prevHash, { position, streamId: b.streamId, version, type: e.type, schemaVersion, time, data, metadata });
          this.stmts.insert.run(position, b.streamId, version, e.type, schemaVersion, e.time, data, metadata, hash);
          prevHash = hash;
          written.push({ position, streamId: b.streamId, version, type: e.type });
        }
        versions.set(b.streamId, version);
        const last = written.at(-1);
        if (last && last.streamId === b.streamId) heads.set(b.streamId, last);
        if (b.wakeAt !== undefined) wakes.set(b.streamId, b.wakeAt);
      }
      // each stream's head once per commit, however many runs of events it had
      for (const [streamId, w] of heads) this.stmts.upsertStream.run(streamId, w.version, w.position, w.type);
      for (const [streamId, at] of wakes) this.stmts.setWake.run(at, streamId);
      opts.alsoWrite?.(written);
      const response = opts.response ? opts.response(written) : undefined;
      if (opts.requestId !== undefined) {
        this.stmts.insertRequest.run(
          opts.requestId,
          opts.handler ?? '',
          written[0]?.position ?? null,
          written.at(-1)?.position ?? null,
          JSON.stringify(response ?? null),
        );
      }
      return { duplicate: false, written, response } as CommitResult;
    });
  }

  findRequest(requestId: string): { response: unknown } | undefined {
    const r = this.stmts.findRequest.get(requestId) as string | undefined;
    return r === undefined ? undefined : { response: JSON.parse(r) };
  }

  private where(o: ReadOptions): { sql: string; params: unknown[] } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (o.fromPosition !== undefined) (clauses.push('position >= ?'), params.push(o.fromPosition));
    if (o.toPosition !== undefined) (clauses.push('position <= ?'), params.push(o.toPosition));
    if (o.toTime !== undefined) (clauses.push('time <= ?'), params.push(o.toTime));
    if (o.streamId !== undefined) (clauses.push('stream_id = ?'), params.push(o.streamId));
    if (o.streamPrefix) {
      const [lo, hi] = prefixRange(o.streamPrefix);
      clauses.push(hi === null ? 'stream_id >= ?' : 'stream_id >= ? AND stream_id < ?');
      params.push(...(hi === null ? [lo] : [lo, hi]));
    }
    let sql = clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '';
    sql += ' ORDER BY position';
    if (o.limit !== undefined) (sql += ' LIMIT ?'), params.push(o.limit);
    return { sql, params };
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
    // An iterating statement is busy until exhausted: a nested scan of the same shape gets its own.
    let st = this.statement(`SELECT ${cols} FROM events${sql}`);
    if (st.busy) st = this.db.prepare(`SELECT ${cols} FROM events${sql}`);
    return st.iterate(...params) as IterableIterator<RawEvent>;
  }

  read(opts: ReadOptions = {}): StoredEvent[] {
    const { sql, params } = this.where(opts);
    const rows = this.statement(`SELECT ${RAW_COLUMNS}, hash FROM events${sql}`).all(...params) as (RawEvent & { hash: string })[];
    return rows.map((r) => ({
      position: r.position,
      streamId: r.streamId,
      version: r.version,
      type: r.type,
      schemaVersion: r.schemaVersion,
      time: BigInt(r.time),
      data: JSON.parse(r.data),
      metadata: JSON.parse(r.metadata),
      hash: r.hash,
    }));
  }

  streamVersion(streamId: string, atPosition?: number): number {
    return ((atPosition === undefined
      ? this.stmts.streamVersion.get(streamId)
      : this.stmts.streamVersionAt.get(streamId, atPosition)) as number | undefined) ?? 0;
  }

  streams(prefix = ''): string[] {
    if (!prefix) return this.db.prepare('SELECT stream_id FROM streams ORDER BY stream_id').pluck().all() as string[];
    const [lo, hi] = prefixRange(prefix);
    const sql = hi === null ? 'SELECT stream_id FROM streams WHERE stream_id >= ? ORDER BY stream_id' : 'SELECT stream_id FROM streams WHERE stream_id >= ? AND stream_id < ? ORDER BY stream_id';
    return this.db.prepare(sql).pluck().all(...(hi === null ? [lo] : [lo, hi])) as string[];
  }

  openStreams(prefix: string, endTypes: string[]): string[] {
    // the streams table keeps each stream's last type: one range read, no scan of the log
    const [lo, hi] = prefix ? prefixRange(prefix) : ['', null];
    const notEnded = endTypes.length ? ` AND last_type NOT IN (${endTypes.map(() => '?').join(', ')})` : '';
    const sql = `SELECT stream_id FROM streams WHERE stream_id >= ?${hi === null ? '' : ' AND stream_id < ?'}${notEnded} ORDER BY stream_id`;
    return this.db.prepare(sql).pluck().all(...(hi === null ? [lo] : [lo, hi]), ...endTypes) as string[];
  }

  countCategory(category: string): number {
    return (this.stmts.categoryCount.get(category) as number | undefined) ?? 0;
  }

  lastPosition(): number {
    return (this.stmts.last.get() as { position: number } | undefined)?.position ?? 0;
  }

  positionAtTime(t: bigint): number {
    return (this.stmts.positionAtTime.get(t) as number | undefined) ?? 0;
  }

  positionOfVersion(streamId: string, version: number): number | undefined {
    return this.stmts.positionOfVersion.get(streamId, version) as number | undefined;
  }

  dueStreams(t: bigint, prefix = ''): { streamId: string; wakeAt: bigint }[] {
    const [lo, hi] = prefix ? prefixRange(prefix) : ['', null];
    return (this.stmts.due.all(t, lo, hi, hi) as { streamId: string; wakeAt: string }[]).map((r) => ({ streamId: r.streamId, wakeAt: BigInt(r.wakeAt) }));
  }

  saveSnapshot(s: SnapshotRecord): void {
    this.stmts.saveSnapshot.run(s.streamId, s.version, s.position, s.codeVersion, s.state);
  }

  latestSnapshot(streamId: string, codeVersion: string, maxPosition = Number.MAX_SAFE_INTEGER): SnapshotRecord | undefined {
    return this.stmts.latestSnapshot.get(streamId, codeVersion, maxPosition) as SnapshotRecord | undefined;
  }

  verify(): VerifyResult {
    let prev = GENESIS_HASH;
    let expected = 1;
    let checked = 0;
    const versions = new Map<string, number>();
    const rows = this.db.prepare(`SELECT ${RAW_COLUMNS}, hash FROM events ORDER BY position`).iterate() as IterableIterator<
      RawEvent & { hash: string }
    >;
    for (const r of rows) {
      const broken = (reason: string): VerifyResult => ({ intact: false, checked, firstBrokenPosition: r.position, reason });
      if (r.position !== expected) return { intact: false, checked, firstBrokenPosition: expected, reason: `position ${expected} is missing` };
      const v = (versions.get(r.streamId) ?? 0) + 1;
      if (r.version !== v) return broken(`stream ${r.streamId} jumps to version ${r.version}, expected ${v}`);
      if (chainHash(prev, r) !== r.hash) return broken('hash chain broken: the event or its predecessor was altered');
      versions.set(r.streamId, v);
      prev = r.hash;
      expected++;
      checked++;
    }
    return { intact: true, checked };
  }

  fork(position: number, targetPath: string): { events: number } {
    if (!Number.isInteger(position) || position < 0) throw new StoreError('invalid_request', `fork position must be a non-negative integer, got ${position}`);
    if (existsSync(targetPath)) throw new StoreError('invalid_request', `fork target ${targetPath} already exists`);
    const target = new Database(targetPath);
    try {
      target.pragma('journal_mode = WAL');
      migrate(target);
    } finally {
      target.close();
    }
    try {
      this.db.prepare('ATTACH DATABASE ? AS fork').run(targetPath);
      try {
        const n = this.db.transaction(() => {
          const r = this.db.prepare('INSERT INTO fork.events SELECT * FROM main.events WHERE position <= ?').run(position);
          this.db.prepare('INSERT INTO fork.requests SELECT * FROM main.requests WHERE COALESCE(last_position, 0) <= ?').run(position);
          this.db.prepare('INSERT INTO fork.snapshots SELECT * FROM main.snapshots WHERE position <= ?').run(position);
          this.db
            .prepare(
              `INSERT INTO fork.streams (stream_id, version, last_position, last_type)
               SELECT e.stream_id, e.version, e.position, e.type FROM fork.events e
               JOIN (SELECT stream_id, MAX(version) AS v FROM fork.events GROUP BY stream_id) m ON m.stream_id = e.stream_id AND m.v = e.version`,
            )
            .run();
          this.db
            .prepare(
              `INSERT INTO fork.stream_categories (category, streams)
               SELECT CASE WHEN instr(CAST(stream_id AS BLOB), X'2D') > 0 THEN CAST(substr(CAST(stream_id AS BLOB), 1, instr(CAST(stream_id AS BLOB), X'2D') - 1) AS TEXT) ELSE stream_id END, COUNT(*)
               FROM fork.streams GROUP BY 1`,
            )
            .run();
          return r.changes;
        })();
        return { events: n };
      } finally {
        this.db.prepare('DETACH DATABASE fork').run();
      }
    } catch (e) {
      for (const f of [targetPath, `${targetPath}-wal`, `${targetPath}-shm`]) if (existsSync(f)) unlinkSync(f);
      throw e;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** A stream's category: its id up to the first '-' (the whole id without one). */
export function streamCategory(streamId: string): string {
  const i = streamId.indexOf('-');
  return i < 0 ? streamId : streamId.slice(0, i);
}

function retryWhileBusy(timeoutMs: number, fn: () => void): void {
  // (counts the time it sleeps rather than reading a clock)
  let waited = 0;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (!code.startsWith('SQLITE_BUSY') && !code.startsWith('SQLITE_LOCKED')) throw e;
      if (waited > timeoutMs) throw new StoreError('io', `event log stayed locked for ${timeoutMs} ms: ${(e as Error).message}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
      waited += wait;
    }
  }
}

function refuseNewerSchema(db: Database.Database): void {
  const v = db.pragma('user_version', { simple: true }) as number;
  if (v > latestSchemaVersion()) {
    throw new StoreError('schema_too_new', `database schema version ${v} is newer than this clockledger understands (${latestSchemaVersion()}); upgrade clockledger`, {
      databaseVersion: v,
      supportedVersion: latestSchemaVersion(),
    });
  }
}

/**
 * The stream ids starting with a prefix are exactly [prefix, prefix with its last code point + 1):
 * SQLite compares TEXT by its UTF-8 bytes, which order as code points do.
 */
function prefixRange(prefix: string): [string, string | null] {
  const cps = [...prefix];
  const last = cps.pop()!.codePointAt(0)!;
  if (last >= 0x10ffff) return [prefix, null];
  let next = last + 1;
  if (next >= 0xd800 && next <= 0xdfff) next = 0xe000; // skip the surrogate range
  return [prefix, cps.join('') + String.fromCodePoint(next)];
}
