// The event log on PostgreSQL (node-postgres): the SQLite store's semantics, asynchronously.
// One writer at a time per ledger: every commit takes a transaction-scoped advisory lock on its
// schema (pg_advisory_xact_lock) before reading the last position and hash, so global positions
// stay contiguous and the hash chain linear; the lock goes with the transaction (commit, rollback
// or a dead connection). Readers take no lock. The hashes are store/canonical.ts's, so both
// engines give identical hashes for identical events.
import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import type { AsyncCommitOptions, AsyncEventStore, LoadedStream, StreamBundle, StreamsLoad, StreamsLoaded } from './async-types.js';
import { GENESIS_HASH } from './canonical.js';
import { StoreError } from './errors.js';
import { APPEND_LOCK, ident, latestPgSchemaVersion, migratePg, pgSchemaVersion } from './pg-migrate.js';
import { acquirePool, releasePool } from './pg-pool.js';
import { parsePgUrl, type PgTarget } from './pg-url.js';
import { checkRequestId, missingRowError, responseHash, storedAnswer, type RequestEvents, type StoredRequestRow } from './request-check.js';
import { boundHere, snapshotBinding, snapshotProblem, usableSnapshot, type SnapshotRow } from './snapshot-binding.js';
import { planAppend, requestRow, type AppendDuplicate, type AppendHeads, type AppendPlan } from './append-plan.js';
import { appendPayload, chainedPayload, type AppendFound, type ChainedFound } from './pg-append-payload.js';
import { fillTemplate, movedTo, responseTemplate } from './response-template.js';
import { clampInstant, I64_MAX, prefixRange, storedEventOf } from './sql-shared.js';
import type {
  AppendBatch,
  CommitResult,
  EventRow,
  RawEvent,
  ReadOptions,
  SnapshotRecord,
  StoredEvent,
  StreamReplayer,
  VerifyAnchor,
  VerifyResult,
} from './types.js';
import { LedgerCheck, REQUEST_ROW_SQL, SNAPSHOT_ROW_SQL, STREAM_ROWS_SQL, type CategoryRow, type ChainRow, type StreamRow } from './verify.js';

export interface PgOpenOptions {
  readonly?: boolean;
  /** discard snapshots written by any other code version */
  codeVersion?: string;
  /** connection-lost retries of a commit that is safe to retry (default 2) */
  retries?: number;
}

// (the float8 alias hides the column: order by events.position, or PostgreSQL sorts by the alias and leaves the primary key unused)
const RAW = 'position::float8 AS "position", stream_id AS "streamId", version, type, schema_version AS "schemaVersion", time::text AS time, data, metadata';

/**
 * The rows after a position, a page at a time ($1 = after, $2 = the page's size). Positions are
 * contiguous, so the page is a closed range of the primary key: a prepared statement's generic
 * plan then still scans the index (`position > $1 … LIMIT $2` was planned as a scan of the whole
 * table and a sort, for every page: a reader's cold load grew with the square of the log).
 */
export function rowsAfterSql(schema: string): string {
  return `SELECT ${RAW}, hash FROM ${schema}.events WHERE position > $1 AND position <= $1 + $2 ORDER BY events.position`;
}
const RAW_NO_METADATA =
  `position::float8 AS "position", stream_id AS "streamId", version, ` + `type, schema_version AS "schemaVersion", time::text AS time, data, '{}' AS metadata`;
const PAGE = 2000;
/** a request's number as pg/004 gives the rows it finds */
const NUMBERED = 'row_number() OVER (ORDER BY COALESCE(q.last_position, 0), q.request_id COLLATE "C") AS seq';
/** the requests of a schema before pg/002, as 002 converts them (their hashes computed on reading), numbered as 004 numbers them */
const LEGACY_REQUESTS = (s: string) => `(SELECT q.*, NULL::text AS fingerprint, NULL::text AS response_hash, ${NUMBERED} FROM ${s}.requests q)`;
/** the requests of a schema before pg/004, numbered as 004 numbers them */
const UNNUMBERED_REQUESTS = (s: string) => `(SELECT q.*, ${NUMBERED} FROM ${s}.requests q)`;
/** the events a request id's metadata names (the events_by_request index's expression and predicate) */
const REQUEST_EVENTS = (s: string) =>
  `SELECT min(position)::float8 AS first, max(position)::float8 AS last, count(*)::float8 AS count FROM ${s}.events
   WHERE (metadata::jsonb ->> 'requestId') = $1 AND (metadata::jsonb ? 'requestId')`;

/** Open (creating and migrating unless read-only) the ledger at a postgres:// URL (?schema=, default clockledger). */
export async function openPgEventStore(url: string, opts: PgOpenOptions = {}): Promise<PgEventStore> {
  const target = parsePgUrl(url);
  const pool = acquirePool(target);
  let version = latestPgSchemaVersion();
  try {
    const client = await connect(pool);
    try {
      if (opts.readonly) {
        // nothing is created, converted or written: an older schema is read as it is
        version = await pgSchemaVersion(client, target.schema);
        if (version > latestPgSchemaVersion()) await migratePg(client, target.schema); // throws schema_too_new
        if (version === 0) {
          const found = await client.query<{ tables: string[] | null }>(
            `SELECT (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class ` +
              `c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'v', 'p')) AS tables
             FROM pg_namespace n WHERE n.nspname = $1`,
            [target.schema],
          );
          if (!found.rowCount) throw new StoreError('not_found', `no ledger at ${target.display}`, { path: target.display });
          const tables = found.rows[0]!.tables ?? [];
          throw new StoreError(
            'not_a_ledger',
            tables.length
              ? `${target.display} holds tables of another application (${tables.slice(0, 5).join(', ')}), not a clockledger ledger`
              : `${target.display} is an empty schema, not a clockledger ledger`,
            {
              tables,
            },
          );
        }
      } else {
        await migratePg(client, target.schema);
        if (opts.codeVersion) await client.query(`DELETE FROM ${ident(target.schema)}.snapshots WHERE code_version <> $1`, [opts.codeVersion]);
      }
    } finally {
      client.release();
    }
  } catch (e) {
    await releasePool(target);
    throw asStoreError(e);
  }
  return new PgEventStore(target, pool, opts, version);
}

export class PgEventStore implements AsyncEventStore {
  readonly path: string;
  private readonly s: string;
  /** the client of the transaction the current async context runs in, if any */
  private readonly tx = new AsyncLocalStorage<pg.PoolClient>();
  private closed = false;
  /** statements sent to the server by this store (each one round trip; a multi-statement string counts once) */
  roundTrips = 0;
  /**
   * The log's last position as this store last read or wrote it: where a commit is first planned
   * after. Only a guess: the server chains the commit after wherever the log ends by then.
   */
  private seenPosition = 0;
  /** stream versions as this store last read or wrote them (guesses for batches that expect 'any') */
  private readonly seenVersions = new Map<string, number>();

  constructor(
    private readonly target: PgTarget,
    private readonly pool: pg.Pool,
    private readonly opts: PgOpenOptions,
    /** the schema's version (older than the latest only when open read-only) */
    private readonly version = latestPgSchemaVersion(),
  ) {
    this.path = target.display;
    this.s = ident(target.schema);
  }

  private writable(what: string): void {
    if (this.opts.readonly) throw new StoreError('invalid_request', `${what}: the ledger ${this.path} is open read-only`);
  }

  /** request rows with their last event's hash, positions as numbers */
  private requestRows(where = '', params: unknown[] = []): Promise<StoredRequestRow[]> {
    const legacy = this.version < 2;
    const table = legacy ? LEGACY_REQUESTS(this.s) : this.version < 4 ? UNNUMBERED_REQUESTS(this.s) : `${this.s}.requests`;
    const sql = `${REQUEST_ROW_SQL(table, `${this.s}.events`, (c) => `${c}::float8`)}${where}`;
    return this.q<StoredRequestRow>(sql, params).then((r) => (legacy ? r.rows.map((x) => ({ ...x, responseHash: responseHash(x) })) : r.rows));
  }

  /** a query; `name` makes it a prepared statement (parsed and planned once per connection) */
  private async q<R extends pg.QueryResultRow>(text: string, values?: unknown[], name?: string): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new StoreError('io', `event log ${this.path} is closed`);
    const c = this.tx.getStore();
    const config: pg.QueryConfig = name ? { text, values: values ?? [], name: `${name}_${this.target.schema}` } : { text, values: values ?? [] };
    this.roundTrips++;
    try {
      return await (c ? c.query<R>(config) : this.pool.query<R>(config));
    } catch (e) {
      throw asStoreError(e);
    }
  }

  /**
   * fn's reads in one snapshot of the database (a read-only REPEATABLE READ transaction on one
   * connection): an answer read in several statements cannot straddle two commits. One round trip
   * more (BEGIN); the ROLLBACK that ends it is not waited for.
   */
  async inOneSnapshot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('io', `event log ${this.path} is closed`);
    if (this.tx.getStore()) return fn();
    const client = await connect(this.pool);
    let broken: unknown;
    try {
      this.roundTrips++;
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY').catch((e) => {
        throw asStoreError(e);
      });
      return await this.tx.run(client, fn);
    } catch (e) {
      if (isConnectionError(e)) broken = e;
      // the store's own statements answer StoreErrors already; anything else is fn's (a handler's
      // refusal, say), rethrown as it came
      throw e;
    } finally {
      if (broken) client.release(broken instanceof Error ? broken : undefined);
      else {
        this.roundTrips++;
        void client.query('ROLLBACK').then(
          () => client.release(),
          (e: Error) => client.release(e),
        );
      }
    }
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.inTransaction(fn, { sent: false });
  }

  /** fn in a transaction (a savepoint when nested); commit.sent tells whether COMMIT went out */
  private async inTransaction<T>(fn: () => Promise<T>, commit: { sent: boolean }, lock = false): Promise<T> {
    if (this.closed) throw new StoreError('io', `event log ${this.path} is closed`);
    const outer = this.tx.getStore();
    if (outer) {
      const sp = `clockledger_sp_${savepoints++}`;
      await this.q(`SAVEPOINT ${sp}`);
      try {
        if (lock) await this.q(`SELECT pg_advisory_xact_lock(${APPEND_LOCK}, hashtext($1))`, [this.target.schema]);
        const r = await fn();
        await this.q(`RELEASE SAVEPOINT ${sp}`);
        return r;
      } catch (e) {
        await this.q(`ROLLBACK TO SAVEPOINT ${sp}`).catch(() => undefined);
        throw e;
      }
    }
    const client = await connect(this.pool);
    let broken: unknown;
    try {
      // BEGIN and the lock in one round trip (the schema name is a checked identifier)
      this.roundTrips++;
      await client.query(lock ? `BEGIN; SELECT pg_advisory_xact_lock(${APPEND_LOCK}, hashtext('${this.target.schema}'))` : 'BEGIN');
      const r = await this.tx.run(client, fn);
      commit.sent = true;
      this.roundTrips++;
      await client.query('COMMIT');
      return r;
    } catch (e) {
      if (isConnectionError(e)) broken = e;
      else await client.query('ROLLBACK').catch((r) => (broken = r));
      throw asStoreError(e);
    } finally {
      // a client whose connection failed is destroyed, not returned to the pool
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async commit(batches: AppendBatch[], opts: AsyncCommitOptions = {}): Promise<CommitResult> {
    this.writable('commit');
    validate(batches);
    if (opts.requestId !== undefined) checkRequestId(opts.requestId);
    const nested = this.tx.getStore() !== undefined;
    const retries = nested ? 0 : (this.opts.retries ?? 2);
    // one statement under the lock (clockledger_append_chained), unless the caller writes more
    // itself or already holds a transaction
    const inOne = !nested && opts.alsoWrite === undefined && this.version >= APPEND_FUNCTION_VERSION;
    for (let attempt = 0; ; attempt++) {
      const commit = { sent: false };
      try {
        if (inOne) {
          const fast = await this.commitChained(batches, opts, commit);
          if (fast !== undefined) return fast;
          commit.sent = false;
          const r = await this.commitInOne(batches, opts, commit);
          if (r !== undefined) return r;
          // the request id was answered, or its row is missing: the commit that says which
          commit.sent = false;
        }
        return await this.inTransaction(() => this.commitLocked(batches, opts), commit, true);
      } catch (e) {
        // A lost connection rolled the transaction back unless COMMIT was already out; then a
        // request id makes the retry safe (a commit that did land comes back as a duplicate).
        const safe = !commit.sent || opts.requestId !== undefined;
        if (!isConnectionError(e)) throw e;
        if (safe && attempt < retries) continue;
        throw new StoreError(
          'io',
          `connection to ${this.path} lost during a commit${commit.sent && !safe ? '; the commit may or may not have landed' : ''}: ${(e as Error).message}`,
          {
            connectionLost: true,
            outcome: commit.sent && !safe ? 'unknown' : 'not_committed',
            attempts: attempt + 1,
          },
        );
      }
    }
  }

  /**
   * A commit in one round trip, chained by the server: planned after the last position this store
   * saw (a guess that only the response can depend on), sent as one statement outside any
   * transaction. clockledger_append_chained (migrations/pg/008) takes the append lock, checks the
   * stream versions and the request id, and chains the rows after the log's last event wherever
   * that is by then, so commits of other writers on other streams cost this one nothing; the
   * statement's own transaction commits it and ends the lock, which is held only while the server
   * writes. The stored response is finished there from its template (store/response-template.ts).
   * A stream not at the version the caller expects is a ConflictError, nothing written. Undefined,
   * nothing written, when a guess for 'any' was wrong, the request id is answered or carried by
   * events, or the response names positions in a way a template cannot hold: the commit under the
   * lock says what holds.
   */
  private async commitChained(batches: AppendBatch[], opts: AsyncCommitOptions, commit: { sent: boolean }): Promise<CommitResult | undefined> {
    const base = this.seenPosition;
    const ids = [...new Set(batches.map((b) => b.streamId))];
    // each stream as the commit expects it (its first batch), else as last seen; one not known: no guess
    const versions: Record<string, number> = {};
    for (const id of ids) {
      const first = batches.find((b) => b.streamId === id)!.expectedVersion;
      const v = first !== 'any' ? first : this.seenVersions.get(id);
      if (v === undefined) return undefined;
      if (v > 0) versions[id] = v;
    }
    const heads: AppendHeads = { position: base, hash: GENESIS_HASH, versions: new Map(Object.entries(versions)) };
    if (opts.requestId !== undefined) heads.request = { seq: 0, stored: null, carried: null };
    let plan: AppendPlan | AppendDuplicate;
    try {
      plan = planAppend(heads, batches, opts, false);
    } catch {
      // (refused as planned: the commit under the lock refuses it with the log in hand)
      return undefined;
    }
    if (plan.duplicate) return undefined;
    // a stored response: worked out now, as a template the server finishes
    const stored = opts.requestId === undefined ? null : opts.response ? responseTemplate(opts.response, plan.written, base) : NO_RESPONSE;
    if (stored !== null && stored.template === null) return undefined;
    const payload = chainedPayload(plan, stored?.template ?? null, opts.snapshots ?? [], {
      lockClass: APPEND_LOCK,
      schema: this.target.schema,
      ids,
      versions,
      requestId: opts.requestId ?? null,
    });
    commit.sent = true;
    const found = (
      await this.q<{ r: ChainedFound }>(`SELECT ${this.s}.clockledger_append_chained($1::jsonb) AS r`, [JSON.stringify(payload)], 'clockledger_chain')
    ).rows[0]!.r;
    if (!found.written) {
      commit.sent = false;
      // a stream another writer moved is the caller's conflict, said now from the versions found
      // (a wrong guess for 'any' plans without one: the commit under the lock makes it)
      if (!found.answered) planAppend({ ...heads, versions: new Map(Object.entries(found.versions)) }, batches, opts, false);
      return undefined;
    }
    const written = found.position === base ? plan.written : movedTo(plan.written, base, found.position);
    let response = stored?.response;
    if (opts.response && (stored === null || found.position !== base)) {
      response = opts.response(written);
      // (what the server stored is what the caller is answered, or the template was wrong)
      if (stored !== null && JSON.stringify(response ?? null) !== fillTemplate(stored.template!, found.position))
        throw new Error(`the response stored for request ${opts.requestId} differs from the one its commit answers`);
    }
    this.saw(found.position + plan.rows.length, plan.streams);
    return { duplicate: false, written, response };
  }

  /** What the log holds as this store last read or wrote it: its last position, the streams' versions. */
  private saw(position: number, streams: readonly { streamId: string; version: number }[]): void {
    this.seenPosition = position;
    for (const h of streams) this.seenVersions.set(h.streamId, h.version);
    while (this.seenVersions.size > SEEN_MAX) this.seenVersions.delete(this.seenVersions.keys().next().value!);
  }

  /**
   * A commit in two round trips: `BEGIN` and a call of clockledger_append (migrations/pg/006) that
   * takes the append lock and, the log having moved since the heads the plan was made from (the
   * first call has none: it only reads them), writes nothing and returns the heads as they are;
   * then, still holding the lock, the plan made from those heads, and `COMMIT`. Undefined (nothing
   * written) when the request id was answered or its events are in the log: the full commit says
   * which.
   */
  private async commitInOne(batches: AppendBatch[], opts: AsyncCommitOptions, commit: { sent: boolean }): Promise<CommitResult | undefined> {
    const client = await connect(this.pool);
    let broken: unknown;
    let open = false;
    try {
      const ids = [...new Set(batches.map((b) => b.streamId))];
      const call = (payload: unknown) => `SELECT ${this.s}.clockledger_append(${client.escapeLiteral(JSON.stringify(payload))}::jsonb) AS r`;
      // (every head is unknown before the lock: position -1 matches no log)
      const probe = {
        lockClass: APPEND_LOCK,
        schema: this.target.schema,
        ids,
        position: -1,
        hash: '',
        versions: {},
        requestId: opts.requestId ?? null,
        seq: -1,
      };
      this.roundTrips++;
      const first = (await client.query(`BEGIN; ${call(probe)}`)) as unknown as pg.QueryResult[];
      open = true;
      const found = first[1]!.rows[0]!.r as AppendFound;
      if (found.answered) {
        await client.query('ROLLBACK');
        open = false;
        return undefined;
      }
      const heads: AppendHeads = { position: found.position, hash: found.hash ?? GENESIS_HASH, versions: new Map(Object.entries(found.versions)) };
      if (opts.requestId !== undefined) heads.request = { seq: found.seq!, stored: null, carried: null };
      const plan = planAppend(heads, batches, opts);
      if (plan.duplicate) throw new StoreError('corrupt', `${this.path}: a request answered under the append lock was not found there`);
      const response = opts.response ? opts.response(plan.written) : undefined;
      const payload = appendPayload(plan, requestRow(plan, response), opts.snapshots ?? [], {
        ...probe,
        position: found.position,
        hash: heads.hash,
        versions: found.versions,
        seq: found.seq,
      });
      commit.sent = true;
      this.roundTrips++;
      const second = (await client.query(`${call(payload)}; COMMIT`)) as unknown as pg.QueryResult[];
      open = false;
      if ((second[0]!.rows[0]!.r as AppendFound).written !== true)
        throw new StoreError('corrupt', `${this.path}: the log moved while its append lock was held`);
      this.saw(plan.end.position, plan.streams);
      return { duplicate: false, written: plan.written, response };
    } catch (e) {
      if (isConnectionError(e)) broken = e;
      else if (open) await client.query('ROLLBACK').catch((r) => (broken = r));
      throw asStoreError(e);
    } finally {
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /** the commit's work, inside its transaction and holding the append lock */
  private async commitLocked(batches: AppendBatch[], opts: AsyncCommitOptions): Promise<CommitResult> {
    const ids = [...new Set(batches.map((b) => b.streamId))];
    type Head = {
      position: number | null;
      hash: string | null;
      prior: StoredRequestRow | null;
      gone: RequestEvents | null;
      seq: number | null;
      versions: Record<string, number>;
    };
    const head = await this.q<Head>(
      `SELECT e.position::float8 AS position, e.hash,
              (SELECT row_to_json(p) FROM (${REQUEST_ROW_SQL(`${this.s}.requests`, `${this.s}.events`, (c) => `${c}::float8`)} ` +
        `WHERE r.request_id = $1) p) AS prior,
              CASE WHEN $1::text IS NOT NULL THEN (SELECT row_to_json(g) FROM (${REQUEST_EVENTS(this.s)}) g) END AS gone,
              CASE WHEN $1::text IS NOT NULL THEN (SELECT COALESCE(max(seq), 0)::float8 FROM ${this.s}.requests) END AS seq,
              (SELECT COALESCE(json_object_agg(stream_id, version), '{}') FROM ${this.s}.streams WHERE stream_id = ANY($2::text[])) AS versions
       FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT position, hash FROM ${this.s}.events ORDER BY position DESC LIMIT 1) e ON true`,
      [opts.requestId ?? null, ids],
      'clockledger_head',
    );
    const h = head.rows[0]!;
    const heads: AppendHeads = { position: h.position ?? 0, hash: h.hash ?? GENESIS_HASH, versions: new Map(Object.entries(h.versions)) };
    if (opts.requestId !== undefined) heads.request = { seq: h.seq!, stored: h.prior, carried: h.gone };
    const plan = planAppend(heads, batches, opts);
    if (plan.duplicate) return { duplicate: true, written: [], response: plan.response };
    const { rows, streams: hs, wakes } = plan;
    // events, stream heads (with their wake instants) and category counts in one statement
    await this.q(
      `WITH ev AS (
         INSERT INTO ${this.s}.events (position, stream_id, version, type, schema_version, time, data, metadata, hash)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::text[])
       ), st AS (
         INSERT INTO ${this.s}.streams AS s (stream_id, version, last_position, last_type, wake_at)
         SELECT * FROM unnest($10::text[], $11::int[], $12::bigint[], $13::text[], $15::bigint[])
         ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position, last_type = excluded.last_type,
           wake_at = CASE WHEN (SELECT w FROM unnest($10::text[], $14::bool[]) u(id, w) WHERE u.id = s.stream_id) THEN excluded.wake_at ELSE s.wake_at END
       )
       INSERT INTO ${this.s}.stream_categories AS c (category, streams)
       SELECT * FROM unnest($16::text[], $17::int[])
       ON CONFLICT (category) DO UPDATE SET streams = c.streams + excluded.streams`,
      [
        rows.map((r) => r.position),
        rows.map((r) => r.streamId),
        rows.map((r) => r.version),
        rows.map((r) => r.type),
        rows.map((r) => r.schemaVersion),
        rows.map((r) => r.time.toString()),
        rows.map((r) => r.data),
        rows.map((r) => r.metadata),
        rows.map((r) => r.hash),
        hs.map((w) => w.streamId),
        hs.map((w) => w.version),
        hs.map((w) => w.position),
        hs.map((w) => w.type),
        // each head's wake instant: whether this commit sets it, and to what (null clears it)
        hs.map((w) => wakes.has(w.streamId)),
        hs.map((w) => wakes.get(w.streamId)?.toString() ?? null),
        [...plan.categories.keys()],
        [...plan.categories.values()],
      ],
      'clockledger_append',
    );
    // wake instants of streams this commit wrote no event to
    const headed = new Set(hs.map((w) => w.streamId));
    const wakeOnly = [...wakes].filter(([id]) => !headed.has(id));
    if (wakeOnly.length) {
      await this.q(`UPDATE ${this.s}.streams s SET wake_at = w.at FROM unnest($1::text[], $2::bigint[]) w(id, at) WHERE s.stream_id = w.id`, [
        wakeOnly.map(([id]) => id),
        wakeOnly.map(([, at]) => at?.toString() ?? null),
      ]);
    }
    for (const sn of opts.snapshots ?? []) {
      const position =
        plan.written.find((w) => w.streamId === sn.streamId && w.version === sn.version)?.position ?? (await this.positionOfVersion(sn.streamId, sn.version));
      await this.saveSnapshot({ ...sn, position: position ?? 0 });
    }
    await opts.alsoWrite?.(plan.written);
    const response = opts.response ? opts.response(plan.written) : undefined;
    const q = requestRow(plan, response);
    if (q) {
      await this.q(
        `INSERT INTO ${this.s}.requests (request_id, handler, first_position, last_position, response, fingerprint, response_hash, seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [q.requestId, q.handler, q.firstPosition, q.lastPosition, q.response, q.fingerprint, q.responseHash, q.seq],
      );
    }
    return { duplicate: false, written: plan.written, response };
  }

  /**
   * What a request reads before it decides, in one statement (store/async-types.ts StreamsLoad):
   * each stream's latest snapshot after the position the caller holds it at and the events after
   * that, the last event, the request's stored answer, the wake index. A snapshot that is not
   * bound where it claims is passed over as latestSnapshot passes it, at the cost of a read more.
   */
  async loadStreams(spec: StreamsLoad): Promise<StreamsLoaded> {
    // (checked before it is sent, as findRequest checks it)
    if (spec.request) checkRequestId(spec.request.requestId);
    const due = spec.due;
    const [lo, hi] = due ? (due.prefix ? prefixRange(due.prefix) : ['', null]) : [null, null];
    type Raw = {
      head: { position: number; time: string; hash: string } | null;
      due: { streamId: string; wakeAt: string }[] | null;
      due_up_to: string | null;
      streams: RawLoaded[] | null;
      prior: StoredRequestRow | null;
      gone: RequestEvents | null;
      seq: number | null;
    };
    const r = (
      await this.q<Raw>(
        loadSql(this.s),
        [
          spec.streams.map((x) => x.streamId),
          spec.streams.map((x) => x.after),
          spec.codeVersion,
          spec.request?.requestId ?? null,
          lo,
          hi,
          due?.upTo?.toString() ?? null,
          due?.ahead?.toString() ?? null,
        ],
        'clockledger_load7',
      )
    ).rows[0]!;
    const out: StreamsLoaded = { streams: [], head: r.head && { position: r.head.position, time: BigInt(r.head.time), hash: r.head.hash } };
    this.saw(
      r.head?.position ?? 0,
      (r.streams ?? []).map((x) => ({ streamId: x.streamId, version: x.version ?? 0 })),
    );
    if (spec.request) {
      if (r.prior) out.answer = storedAnswer(r.prior, spec.request.fingerprint);
      else if (r.gone && r.gone.count > 0) throw missingRowError(spec.request.requestId, r.gone, r.head?.position ?? 0);
    }
    if (due) out.due = { prefix: due.prefix, upTo: BigInt(r.due_up_to!), list: (r.due ?? []).map((d) => ({ streamId: d.streamId, wakeAt: BigInt(d.wakeAt) })) };
    for (const x of r.streams ?? []) {
      const l: LoadedStream = { streamId: x.streamId, version: x.version ?? 0, after: x.after, afterVersion: x.afterVersion, rows: x.rows };
      if (x.snapshot) {
        const row: SnapshotRow = { ...x.snapshot, streamId: x.streamId, state: Buffer.from(x.snapshot.state, 'base64') };
        const ok = usableSnapshot(this.path, row);
        if (ok) l.snapshot = ok;
        else {
          // (a snapshot not bound where it claims: the one below it, or the events from `after`)
          const below = await this.latestSnapshot(x.streamId, spec.codeVersion, row.position - 1);
          const from = below && below.position > x.after ? below : undefined;
          l.snapshot = from;
          l.rows = [];
          for await (const e of this.scan({ streamId: x.streamId, fromPosition: (from?.position ?? x.after) + 1, withoutMetadata: true })) {
            l.rows.push([e.position, e.streamId, e.version, e.type, e.time, e.data]);
          }
        }
      }
      out.streams.push(l);
    }
    return out;
  }

  /**
   * A stream as a scoped read needs it, in one statement (store/async-types.ts StreamBundle): its
   * version, the last event, the position of a version, its latest snapshot at or before the bound
   * and its events after that, and its last event there in full.
   */
  async streamBundle(streamId: string, opts: { codeVersion: string; maxPosition?: number; version?: number; limit: number }): Promise<StreamBundle> {
    type Raw = {
      version: number | null;
      head_position: number | null;
      head_time: string | null;
      version_position: number | null;
      up_to: number;
      s_version: number | null;
      s_position: number | null;
      s_code: string | null;
      s_state: Buffer | null;
      s_chain: string | null;
      s_binding: string | null;
      s_at_stream: string | null;
      s_at_version: number | null;
      s_at_hash: string | null;
      rows: [number, number, string, number, string, string][];
      last: (RawEvent & { hash: string }) | null;
    };
    // (no snapshots before pg/005: they were unbound, and 005 drops them)
    const bound = this.version >= 5;
    const params = [streamId, opts.maxPosition ?? null, opts.version ?? null, bound ? opts.codeVersion : null, opts.limit];
    const r = (await this.q<Raw>(bundleSql(this.s, bound), params, bound ? 'clockledger_bundle' : 'clockledger_bundle_unbound')).rows[0]!;
    const upTo = r.up_to;
    const out: StreamBundle = {
      version: r.version ?? 0,
      head: r.head_position === null ? null : { position: r.head_position, time: BigInt(r.head_time!) },
      upTo,
      snapshot: null,
      rows: [],
      rowsTo: upTo,
    };
    if (r.version_position !== null) out.versionPosition = r.version_position;
    if (r.last) out.last = storedEventOf(r.last);
    if (r.s_position !== null) {
      const row: SnapshotRow = {
        streamId,
        version: r.s_version!,
        position: r.s_position,
        codeVersion: r.s_code!,
        state: r.s_state!,
        chainHash: r.s_chain,
        binding: r.s_binding,
        atStreamId: r.s_at_stream,
        atVersion: r.s_at_version,
        atHash: r.s_at_hash,
      };
      out.snapshot = usableSnapshot(this.path, row);
      if (out.snapshot === undefined) return out;
    }
    out.rows = r.rows.map(([position, version, type, schemaVersion, time, data]) => ({
      position,
      streamId,
      version,
      type,
      schemaVersion,
      time,
      data,
      metadata: '{}',
    }));
    if (out.rows.length >= opts.limit) out.rowsTo = out.rows.at(-1)!.position;
    return out;
  }

  async findRequest(requestId: string, fingerprint?: string): Promise<{ response: unknown } | undefined> {
    checkRequestId(requestId);
    const r = (await this.requestRows(' WHERE r.request_id = $1', [requestId]))[0];
    if (r !== undefined) return storedAnswer(r, fingerprint);
    // no row: a request id events carry was answered before (its row removed, or cut by a fork)
    const ev = (await this.q<RequestEvents>(REQUEST_EVENTS(this.s), [requestId])).rows[0]!;
    if (ev.count > 0) throw missingRowError(requestId, ev, await this.lastPosition());
    return undefined;
  }

  private where(o: ReadOptions, after?: number, limit?: number): { sql: string; params: unknown[] } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => (params.push(v), `$${params.length}`);
    if (o.fromPosition !== undefined) clauses.push(`position >= ${p(o.fromPosition)}`);
    if (after !== undefined) clauses.push(`position > ${p(after)}`);
    if (o.toPosition !== undefined) clauses.push(`position <= ${p(o.toPosition)}`);
    if (o.toTime !== undefined) clauses.push(`time <= ${p(clampInstant(o.toTime).toString())}`);
    if (o.streamId !== undefined) clauses.push(`stream_id = ${p(o.streamId)}`);
    if (o.streamPrefix) {
      const [lo, hi] = prefixRange(o.streamPrefix);
      clauses.push(hi === null ? `stream_id >= ${p(lo)}` : `stream_id >= ${p(lo)} AND stream_id < ${p(hi)}`);
    }
    let sql = clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '';
    sql += ' ORDER BY events.position';
    if (limit !== undefined) sql += ` LIMIT ${p(limit)}`;
    return { sql, params };
  }

  async *scan(opts: ReadOptions = {}): AsyncGenerator<RawEvent> {
    // pages by position (keyset), so a long scan holds no connection between pages
    const cols = opts.withoutMetadata ? RAW_NO_METADATA : RAW;
    let remaining = opts.limit ?? Infinity;
    let after: number | undefined;
    while (remaining > 0) {
      const { sql, params } = this.where(opts, after, Math.min(remaining, PAGE));
      const rows = (await this.q<RawEvent>(`SELECT ${cols} FROM ${this.s}.events${sql}`, params)).rows;
      for (const r of rows) yield r;
      if (rows.length < Math.min(remaining, PAGE)) return;
      remaining -= rows.length;
      after = rows.at(-1)!.position;
    }
  }

  async read(opts: ReadOptions = {}): Promise<StoredEvent[]> {
    const { sql, params } = this.where(opts, undefined, opts.limit);
    const rows = (await this.q<RawEvent & { hash: string }>(`SELECT ${RAW}, hash FROM ${this.s}.events${sql}`, params)).rows;
    return rows.map(storedEventOf);
  }

  /** up to `limit` rows after a position, in order, with their chain hashes (what a ReadView loads) */
  async rowsAfter(after: number, limit: number): Promise<(RawEvent & { hash: string })[]> {
    return (await this.q<RawEvent & { hash: string }>(rowsAfterSql(this.s), [after, limit], 'clockledger_rows_after')).rows;
  }

  async streamVersion(streamId: string, atPosition?: number): Promise<number> {
    const r =
      atPosition === undefined
        ? await this.q<{ v: number }>(`SELECT version AS v FROM ${this.s}.streams WHERE stream_id = $1`, [streamId])
        : await this.q<{ v: number }>(`SELECT COALESCE(MAX(version), 0) AS v FROM ${this.s}.events WHERE stream_id = $1 AND position <= $2`, [
            streamId,
            atPosition,
          ]);
    return r.rows[0]?.v ?? 0;
  }

  async streams(prefix = ''): Promise<string[]> {
    const [lo, hi] = prefix ? prefixRange(prefix) : ['', null];
    const r = await this.q<{ id: string }>(
      `SELECT stream_id AS id FROM ${this.s}.streams WHERE stream_id >= $1 AND ($2::text IS NULL OR stream_id < $2) ORDER BY stream_id`,
      [lo, hi],
    );
    return r.rows.map((x) => x.id);
  }

  async openStreams(prefix: string, endTypes: string[]): Promise<string[]> {
    // the streams table keeps each stream's last type: one range read, no scan of the log
    const [lo, hi] = prefix ? prefixRange(prefix) : ['', null];
    const r = await this.q<{ id: string }>(
      `SELECT stream_id AS id FROM ${this.s}.streams WHERE stream_id >= $1 AND ($2::text ` +
        `IS NULL OR stream_id < $2) AND last_type <> ALL($3::text[]) ORDER BY stream_id`,
      [lo, hi, endTypes],
    );
    return r.rows.map((x) => x.id);
  }

  async countCategory(category: string): Promise<number> {
    return (await this.q<{ n: number }>(`SELECT streams AS n FROM ${this.s}.stream_categories WHERE category = $1`, [category])).rows[0]?.n ?? 0;
  }

  async lastPosition(): Promise<number> {
    return (await this.q<{ p: number }>(`SELECT position::float8 AS p FROM ${this.s}.events ORDER BY position DESC LIMIT 1`)).rows[0]?.p ?? 0;
  }

  async positionAtTime(t: bigint): Promise<number> {
    const r = await this.q<{ p: number }>(`SELECT position::float8 AS p FROM ${this.s}.events WHERE time <= $1 ORDER BY time DESC, position DESC LIMIT 1`, [
      clampInstant(t).toString(),
    ]);
    return r.rows[0]?.p ?? 0;
  }

  async positionOfVersion(streamId: string, version: number): Promise<number | undefined> {
    return (await this.q<{ p: number }>(`SELECT position::float8 AS p FROM ${this.s}.events WHERE stream_id = $1 AND version = $2`, [streamId, version]))
      .rows[0]?.p;
  }

  async dueStreams(t: bigint, prefix = ''): Promise<{ streamId: string; wakeAt: bigint }[]> {
    const [lo, hi] = prefix ? prefixRange(prefix) : ['', null];
    const r = await this.q<{ streamId: string; wakeAt: string }>(
      `SELECT stream_id AS "streamId", wake_at::text AS "wakeAt" FROM ${this.s}.streams
       WHERE wake_at IS NOT NULL AND wake_at <= $1 AND stream_id >= $2 AND ($3::text IS NULL OR stream_id < $3) ORDER BY wake_at, stream_id`,
      [clampInstant(t).toString(), lo, hi],
    );
    return r.rows.map((x) => ({ streamId: x.streamId, wakeAt: BigInt(x.wakeAt) }));
  }

  async saveSnapshot(s: SnapshotRecord): Promise<void> {
    // (snapshots are a cache: a read-only store rebuilds without keeping them)
    if (this.opts.readonly) return;
    const sql = `SELECT stream_id AS "streamId", version, hash FROM ${this.s}.events WHERE position = $1`;
    const at = (await this.q<{ streamId: string; version: number; hash: string }>(sql, [s.position])).rows[0];
    const chainHash = boundHere(s, at);
    await this.q(
      `INSERT INTO ${this.s}.snapshots (stream_id, version, position, code_version, state, chain_hash, binding) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (stream_id, version, code_version)
       DO UPDATE SET position = excluded.position, state = excluded.state, chain_hash = excluded.chain_hash, binding = excluded.binding`,
      [s.streamId, s.version, s.position, s.codeVersion, s.state, chainHash, snapshotBinding({ ...s, chainHash })],
    );
  }

  /** snapshot rows with the event at each one's position (none before pg/005: snapshots were unbound, and 005 drops them) */
  private async snapshotRows(where: string, params: unknown[]): Promise<SnapshotRow[]> {
    if (this.version < 5) return [];
    return (await this.q<SnapshotRow>(`${SNAPSHOT_ROW_SQL(`${this.s}.snapshots`, `${this.s}.events`, (c) => `${c}::float8`)} ${where}`, params)).rows;
  }

  async latestSnapshot(streamId: string, codeVersion: string, maxPosition = Number.MAX_SAFE_INTEGER): Promise<SnapshotRecord | undefined> {
    // the latest snapshot bound where it claims to be: one that is not is reported and passed over
    for (let below = maxPosition; ; ) {
      const where = 'WHERE s.stream_id = $1 AND s.code_version = $2 AND s.position <= $3 ORDER BY s.position DESC LIMIT 1';
      const [r] = await this.snapshotRows(where, [streamId, codeVersion, below]);
      if (r === undefined) return undefined;
      const ok = usableSnapshot(this.path, r);
      if (ok) return ok;
      below = r.position - 1;
    }
  }

  async snapshotGaps(every: number, codeVersion: string): Promise<string[]> {
    const r = await this.q<{ id: string }>(
      `SELECT s.stream_id AS id FROM ${this.s}.streams s WHERE s.version >= $1 AND s.version / $1 >
         (SELECT count(*) FROM ${this.s}.snapshots p WHERE p.stream_id = s.stream_id AND p.code_version = $2 AND p.version % $1 = 0) ORDER BY s.stream_id`,
      [every, codeVersion],
    );
    return r.rows.map((x) => x.id);
  }

  async verify(anchor?: VerifyAnchor, replayer?: StreamReplayer): Promise<VerifyResult> {
    // one snapshot of the whole ledger: the events and the tables beside them as of one instant
    return this.inOneSnapshot(() => this.verifyIn(anchor, replayer));
  }

  /** store/verify.ts's checks over this schema's rows */
  private async verifyIn(anchor?: VerifyAnchor, replayer?: StreamReplayer): Promise<VerifyResult> {
    const v = new LedgerCheck(anchor, replayer);
    for (let after = 0; ; ) {
      const rows = (await this.q<ChainRow>(`SELECT ${RAW}, hash FROM ${this.s}.events WHERE position > $1 ORDER BY events.position LIMIT ${PAGE}`, [after]))
        .rows;
      for (const r of rows) {
        const broken = v.add(r);
        if (!broken) continue;
        const sql = `SELECT position::float8 AS position, hash FROM ${this.s}.events ORDER BY events.position DESC LIMIT 1`;
        const last = (await this.q<{ position: number; hash: string }>(sql)).rows[0];
        return v.broken(broken, last, await this.requestRows());
      }
      if (rows.length < PAGE) break;
      after = rows.at(-1)!.position;
    }
    const streams = `SELECT stream_id AS "streamId", version, last_position::float8 AS "lastPosition", last_type AS "lastType", wake_at::text AS "wakeAt"
                     FROM ${this.s}.streams`;
    v.streams((await this.q<StreamRow>(streams)).rows);
    v.categories((await this.q<CategoryRow>(`SELECT category, streams FROM ${this.s}.stream_categories`)).rows);
    v.requests(await this.requestRows());
    v.snapshots(await this.snapshotRows('', []));
    const rowsOf = `${STREAM_ROWS_SQL(`${this.s}.events`, 'time::text', (c) => `${c}::float8`)}
                    WHERE stream_id = $1 AND position > $2 AND position <= $3 ORDER BY events.position LIMIT ${PAGE}`;
    type Row = { position: number; stream_id: string; version: number; type: string; time: string; data: string };
    for (const t of v.replayTasks()) {
      const run = v.startReplay(t);
      for (let after = 0; ; ) {
        const rows = (await this.q<Row>(rowsOf, [t.streamId, after, t.toPosition])).rows;
        for (const r of rows) run.apply([r.position, r.stream_id, r.version, r.type, r.time, r.data] satisfies EventRow);
        if (rows.length < PAGE) break;
        after = rows.at(-1)!.position;
      }
      run.end();
    }
    const at = v.anchorPosition();
    if (at === undefined) return v.verdict();
    return v.verdict((await this.q<{ hash: string }>(`SELECT hash FROM ${this.s}.events WHERE position = $1`, [at])).rows[0]?.hash);
  }

  /**
   * Copy the log up to `position` into a new ledger at `targetUrl` (another schema of this
   * database, or another database): events, requests and snapshots up to it, stream heads and
   * category counts rebuilt. The target schema must not exist yet; on failure it is dropped.
   */
  async fork(position: number, targetUrl: string): Promise<{ events: number }> {
    if (!Number.isInteger(position) || position < 0) throw new StoreError('invalid_request', `fork position must be a non-negative integer, got ${position}`);
    const target = parsePgUrl(targetUrl);
    const pool = acquirePool(target);
    try {
      const client = await connect(pool);
      let created = false;
      try {
        // created exclusively: an existing schema (or one appearing meanwhile) is never written
        try {
          await client.query(`CREATE SCHEMA ${ident(target.schema)}`);
        } catch (e) {
          if ((e as { code?: string }).code === '42P06')
            throw new StoreError('invalid_request', `fork target ${target.display} already exists`, { targetDb: target.display });
          throw e;
        }
        created = true;
        await migratePg(client, target.schema);
        const t = ident(target.schema);
        await client.query('BEGIN');
        let events = 0;
        for (let after = 0; ; ) {
          const rows = (
            await this.q<RawEvent & { hash: string }>(
              `SELECT ${RAW}, hash FROM ${this.s}.events WHERE position > $1 AND position <= $2 ORDER BY events.position LIMIT ${PAGE}`,
              [after, position],
            )
          ).rows;
          if (rows.length) {
            await client.query(
              `INSERT INTO ${t}.events (position, stream_id, version, type, schema_version, time, data, metadata, hash)
               SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::text[])`,
              [
                rows.map((r) => r.position),
                rows.map((r) => r.streamId),
                rows.map((r) => r.version),
                rows.map((r) => r.type),
                rows.map((r) => r.schemaVersion),
                rows.map((r) => r.time),
                rows.map((r) => r.data),
                rows.map((r) => r.metadata),
                rows.map((r) => r.hash),
              ],
            );
          }
          events += rows.length;
          if (rows.length < PAGE) break;
          after = rows.at(-1)!.position;
        }
        // the requests kept, numbered again in their order (the fork's requests digest is its own)
        const reqs = await this.requestRows(' WHERE COALESCE(r.last_position, 0) <= $1', [position]);
        reqs.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
        await client.query(
          `INSERT INTO ${t}.requests (request_id, handler, first_position, last_position, response, fingerprint, response_hash, seq)
           SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[])`,
          [
            reqs.map((r) => r.requestId),
            reqs.map((r) => r.handler),
            reqs.map((r) => r.firstPosition),
            reqs.map((r) => r.lastPosition),
            reqs.map((r) => r.response),
            reqs.map((r) => r.fingerprint),
            reqs.map((r) => r.responseHash),
            reqs.map((_, i) => i + 1),
          ],
        );
        // the snapshots bound where they claim (their positions and chain hashes are the same in the copy)
        const snaps = (await this.snapshotRows('WHERE s.position <= $1', [position])).filter((r) => snapshotProblem(r) === undefined);
        await client.query(
          `INSERT INTO ${t}.snapshots (stream_id, version, position, code_version, state, chain_hash, binding)
           SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::bytea[], $6::text[], $7::text[])`,
          [
            snaps.map((r) => r.streamId),
            snaps.map((r) => r.version),
            snaps.map((r) => r.position),
            snaps.map((r) => r.codeVersion),
            snaps.map((r) => r.state),
            snaps.map((r) => r.chainHash),
            snaps.map((r) => r.binding),
          ],
        );
        // each stream's head, woken when its head event records a wake instant (store/append-plan.ts WAKE_KEY)
        await client.query(
          `INSERT INTO ${t}.streams (stream_id, version, last_position, last_type, wake_at)
           SELECT DISTINCT ON (stream_id) stream_id, version, position, type,
                  CASE WHEN metadata::jsonb ? 'wakeAt' THEN (metadata::jsonb ->> 'wakeAt')::bigint END
           FROM ${t}.events ORDER BY stream_id, version DESC`,
        );
        await client.query(
          `INSERT INTO ${t}.stream_categories (category, streams)
           SELECT CASE WHEN strpos(stream_id, '-') > 0 THEN left(stream_id, strpos(stream_id, ` +
            `'-') - 1) ELSE stream_id END, count(*) FROM ${t}.streams GROUP BY 1`,
        );
        await client.query('COMMIT');
        return { events };
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (created) await client.query(`DROP SCHEMA IF EXISTS ${ident(target.schema)} CASCADE`).catch(() => undefined);
        throw asStoreError(e);
      } finally {
        client.release();
      }
    } finally {
      await releasePool(target);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await releasePool(this.target);
  }
}

let savepoints = 0;

/** A stream as clockledger_load's statement returns it (its snapshot's state in base64). */
interface RawLoaded {
  streamId: string;
  version: number | null;
  after: number;
  afterVersion: number | null;
  snapshot: (Omit<SnapshotRow, 'state' | 'streamId'> & { state: string }) | null;
  rows: EventRow[];
}

/** loadStreams' statement: migrations/pg/007's function (its plan made once per connection) */
const loadSql = (s: string) => `SELECT * FROM ${s}.clockledger_load($1, $2, $3, $4, $5, $6, $7, $8)`;

/** streamBundle's snapshot: the latest at or before the bound */
const BOUND_SNAPSHOT = (s: string) => `
    SELECT p.version, p.position, p.code_version, p.state, p.chain_hash, p.binding, e.stream_id AS at_stream, e.version AS at_version, e.hash AS at_hash
    FROM ${s}.snapshots p LEFT JOIN ${s}.events e ON e.position = p.position
    WHERE p.stream_id = $1 AND p.code_version = $4 AND p.position <= (SELECT up_to FROM lim)
    ORDER BY p.position DESC LIMIT 1`;
/** none before pg/005 (snapshots had no binding then; 005 drops them) */
const NO_SNAPSHOT = `
    SELECT NULL::int AS version, NULL::bigint AS position, $4::text AS code_version, NULL::bytea AS state, NULL::text AS chain_hash,
           NULL::text AS binding, NULL::text AS at_stream, NULL::int AS at_version, NULL::text AS at_hash WHERE false`;

/**
 * streamBundle's statement. $1 the stream, $2 a last position (null: none), $3 a version whose
 * position bounds it too (null: none), $4 the snapshots' code version (null: no snapshot), $5 at
 * most this many events. The events after the snapshot come as JSON arrays (position, version,
 * type, schema version, time, data as stored).
 */
const bundleSql = (s: string, bound: boolean) => `
  WITH hd AS (SELECT position, time FROM ${s}.events ORDER BY events.position DESC LIMIT 1),
  vp AS (SELECT e.position FROM ${s}.events e WHERE $3::int IS NOT NULL AND e.stream_id = $1 AND e.version = $3),
  lim AS (SELECT LEAST(COALESCE((SELECT position FROM hd), 0), COALESCE($2::bigint, ${I64_MAX}), COALESCE((SELECT position FROM vp), ${I64_MAX})) AS up_to),
  sn AS (${bound ? BOUND_SNAPSHOT(s) : NO_SNAPSHOT}),
  -- (row comparisons: the index on (stream_id, position) is entered at the bound, not at the stream's first or last event)
  rs AS (
    SELECT e.position, e.version, e.type, e.schema_version, e.time, e.data FROM ${s}.events e
    WHERE (e.stream_id, e.position) > ($1, COALESCE((SELECT position FROM sn), 0)) AND (e.stream_id, e.position) <= ($1, (SELECT up_to FROM lim))
    ORDER BY e.stream_id, e.position LIMIT $5
  ),
  lt AS (
    SELECT x.position FROM (
      SELECT e.stream_id, e.position FROM ${s}.events e WHERE (e.stream_id, e.position) <= ($1, (SELECT up_to FROM lim))
      ORDER BY e.stream_id DESC, e.position DESC LIMIT 1
    ) x WHERE x.stream_id = $1
  )
  SELECT
    (SELECT st.version FROM ${s}.streams st WHERE st.stream_id = $1) AS version,
    (SELECT position::float8 FROM hd) AS head_position, (SELECT time::text FROM hd) AS head_time,
    (SELECT position::float8 FROM vp) AS version_position,
    (SELECT up_to::float8 FROM lim) AS up_to,
    sn.version AS s_version, sn.position::float8 AS s_position, sn.code_version AS s_code, sn.state AS s_state, sn.chain_hash AS s_chain,
    sn.binding AS s_binding, sn.at_stream AS s_at_stream, sn.at_version AS s_at_version, sn.at_hash AS s_at_hash,
    (SELECT COALESCE(json_agg(json_build_array(rs.position::float8, rs.version, rs.type, rs.schema_version, rs.time::text, rs.data) ORDER BY rs.position), '[]')
     FROM rs) AS rows,
    (SELECT row_to_json(x) FROM (SELECT ${RAW}, hash FROM ${s}.events WHERE events.position = (SELECT position FROM lt)) x) AS last
  FROM (SELECT 1) one LEFT JOIN sn ON true`;

/** the schema version that has clockledger_append (6) and clockledger_append_chained (8) */
const APPEND_FUNCTION_VERSION = 8;
/** a request stored with no response function: the text `null`, which names no position */
const NO_RESPONSE = { response: undefined, template: { pieces: ['null'], offsets: [] } };
/** stream versions a store keeps as guesses */
const SEEN_MAX = 10_000;

/** What PostgreSQL cannot store, refused before anything is sent (the rest is the plan's to check). */
function validate(batches: AppendBatch[]): void {
  for (const b of batches) {
    // PostgreSQL text holds no NUL character
    if (b.streamId.includes('\0')) throw new StoreError('invalid_request', 'a stream id may not contain a NUL character on PostgreSQL');
    for (const e of b.events) {
      if (e.type.includes('\0')) throw new StoreError('invalid_request', 'an event type may not contain a NUL character on PostgreSQL');
    }
  }
}

const quiet = new WeakSet<pg.PoolClient>();
async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    const c = await pool.connect();
    // a checked-out connection the server ends emits 'error': the query in flight, or the next
    // one, fails with it and is reported there
    if (!quiet.has(c)) quiet.add(c), c.on('error', () => undefined);
    return c;
  } catch (e) {
    throw asStoreError(e);
  }
}

const CONNECTION_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', '57P01', '57P02', '57P03']);

/** The connection (not the statement) failed: the transaction on it is gone. */
function isConnectionError(e: unknown): boolean {
  if (e instanceof StoreError) return e.details?.connectionLost === true;
  const code = (e as { code?: string }).code ?? '';
  const msg = (e as Error)?.message ?? '';
  return CONNECTION_CODES.has(code) || code.startsWith('08') || /Connection terminated|connection.*(closed|ended)|not queryable/i.test(msg);
}

/** pg and socket errors as StoreErrors with stable codes; StoreErrors pass through. */
function asStoreError(e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  const err = e as Error & { code?: string };
  if (isConnectionError(err)) return new StoreError('io', `PostgreSQL connection lost: ${err.message}`, { connectionLost: true, pgCode: err.code });
  if (err.code === '3D000') return new StoreError('not_found', `PostgreSQL: ${err.message}`, { pgCode: err.code });
  if (err.code === '22P02' || err.code === '22003' || err.code === '22021' || err.code === '22023')
    return new StoreError('invalid_request', err.message, { pgCode: err.code });
  return new StoreError('io', `PostgreSQL: ${err.message}`, { pgCode: err.code });
}
