// bench/pg: the PostgreSQL engine's append and read beside raw node-postgres on the same rows in
// the same run (a batched unnest INSERT into a plain table: no lock, no version check, no hash),
// the cost of the append lock per commit, and 1/4/8 concurrent writers.
//   npx tsx bench/pg.ts [N]          (CLOCKLEDGER_PG_URL=postgres://… to use a server of your own;
//                                     else a throwaway server as the tests start one, fsync off)
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { APPEND_LOCK } from '../store/pg-migrate.js';
import { openPgEventStore } from '../store/postgres-event-store.js';
import type { AppendBatch, NewEvent } from '../store/types.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { median, percentile, table } from './lib/report.js';

const N = Number(process.argv[2] ?? process.env.N ?? 20_000);
const BATCH = 100;
const STREAMS = 50;
const COMMITS = 1_000;
const say = (s: string) => process.stderr.write(`${s}\n`);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString()}/s`;

const server = process.env.CLOCKLEDGER_PG_URL ? null : await startPostgres();
const base = process.env.CLOCKLEDGER_PG_URL ?? server!.url;
const run = `b${process.pid}`;
const raw = new pg.Client({ connectionString: base });
await raw.connect();

function event(i: number): NewEvent {
  return { type: 'tick', time: BigInt(i * 1000), data: { i, tsc: String(1_000_000_007n * BigInt(i)) }, metadata: { handler: 'bench' } };
}

try {
  await raw.query(`CREATE SCHEMA ${run}_raw`);
  await raw.query(
    `CREATE TABLE ${run}_raw.events (position BIGINT PRIMARY KEY, ` +
      `stream_id TEXT COLLATE "C" NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
    schema_version INTEGER NOT NULL, time BIGINT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (stream_id, version))`,
  );
  const store = await openPgEventStore(`${base}?schema=${run}_store`);

  // ---- append: N events in commits of BATCH, spread over STREAMS streams
  say(`appending ${N.toLocaleString()} events in commits of ${BATCH} ...`);
  const versions = new Map<string, number>();
  let storeMs = 0;
  let rawMs = 0;
  for (let start = 0; start < N; start += BATCH) {
    const byStream = new Map<string, NewEvent[]>();
    for (let i = start; i < Math.min(N, start + BATCH); i++) {
      const id = `vm-${i % STREAMS}`;
      byStream.set(id, [...(byStream.get(id) ?? []), event(i)]);
    }
    const batches: AppendBatch[] = [...byStream].map(([streamId, events]) => ({ streamId, expectedVersion: versions.get(streamId) ?? 0, events }));
    let t0 = performance.now();
    const r = await store.commit(batches);
    storeMs += performance.now() - t0;
    for (const b of batches) versions.set(b.streamId, (versions.get(b.streamId) ?? 0) + b.events.length);
    // the raw baseline writes the very rows the store wrote (same text, same hash column width)
    const rows = await store.read({ fromPosition: r.written[0]!.position, toPosition: r.written.at(-1)!.position });
    const cols = (f: (e: (typeof rows)[number]) => unknown) => rows.map(f);
    t0 = performance.now();
    await raw.query('BEGIN');
    await raw.query(
      `INSERT INTO ${run}_raw.events SELECT * FROM unnest($1::bigint[], $2::text[], ` +
        `$3::int[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::text[])`,
      [
        cols((e) => e.position),
        cols((e) => e.streamId),
        cols((e) => e.version),
        cols((e) => e.type),
        cols((e) => e.schemaVersion),
        cols((e) => e.time.toString()),
        cols((e) => JSON.stringify(e.data)),
        cols((e) => JSON.stringify(e.metadata)),
        cols((e) => e.hash),
      ],
    );
    await raw.query('COMMIT');
    rawMs += performance.now() - t0;
  }

  // ---- single-event commits: latency, and what the lock costs in a transaction
  say(`${COMMITS} single-event commits ...`);
  const one: number[] = [];
  const oneRaw: number[] = [];
  const lockTx: number[] = [];
  const bareTx: number[] = [];
  let pos = N;
  for (let i = 0; i < COMMITS; i++) {
    const id = 'solo-1';
    let t0 = performance.now();
    await store.commit([{ streamId: id, expectedVersion: i, events: [event(i)] }]);
    one.push(performance.now() - t0);
    t0 = performance.now();
    await raw.query('BEGIN');
    await raw.query(`INSERT INTO ${run}_raw.events VALUES ($1, $2, $3, 'tick', 1, $4, '{}', '{}', $5)`, [++pos, id, i + 1, String(i), 'x'.repeat(64)]);
    await raw.query('COMMIT');
    oneRaw.push(performance.now() - t0);
    t0 = performance.now();
    await raw.query(`BEGIN; SELECT pg_advisory_xact_lock(${APPEND_LOCK}, hashtext('${run}_store')); COMMIT`);
    lockTx.push(performance.now() - t0);
    t0 = performance.now();
    await raw.query('BEGIN; SELECT 1; COMMIT');
    bareTx.push(performance.now() - t0);
  }

  // ---- reads: everything, then a stream, beside the same SELECTs raw
  say('reading ...');
  const total = await store.lastPosition();
  let t0 = performance.now();
  const all = await store.read();
  const readMs = performance.now() - t0;
  t0 = performance.now();
  const rawAll = (await raw.query(`SELECT * FROM ${run}_raw.events ORDER BY position`)).rows;
  const rawReadMs = performance.now() - t0;
  t0 = performance.now();
  let scanned = 0;
  for await (const _ of store.scan()) scanned++;
  const scanMs = performance.now() - t0;
  t0 = performance.now();
  const stream = await store.read({ streamId: 'vm-7' });
  const streamMs = performance.now() - t0;
  t0 = performance.now();
  await raw.query(`SELECT * FROM ${run}_raw.events WHERE stream_id = 'vm-7' ORDER BY position`);
  const rawStreamMs = performance.now() - t0;
  t0 = performance.now();
  const v = await store.verify();
  const verifyMs = performance.now() - t0;
  if (all.length !== total || rawAll.length !== total || scanned !== total || !v.intact) throw new Error('bench: counts disagree or the chain is broken');
  await store.close();

  // ---- writers at once: each its own pool and stream, single-event commits
  const writersRows: (string | number)[][] = [['writers', 'commits', 'ms', 'commits/s', 'p50 ms', 'p99 ms']];
  for (const writers of [1, 4, 8]) {
    const url = `${base}?schema=${run}_w${writers}&application_name=w${writers}`;
    const stores = await Promise.all(Array.from({ length: writers }, (_, w) => openPgEventStore(`${url}_${w}`)));
    const per = Math.floor(2000 / writers);
    const lat: number[] = [];
    const t = performance.now();
    await Promise.all(
      stores.map(async (s, w) => {
        for (let i = 0; i < per; i++) {
          const t1 = performance.now();
          await s.commit([{ streamId: `w-${w}`, expectedVersion: i, events: [event(i)] }]);
          lat.push(performance.now() - t1);
        }
      }),
    );
    const ms = performance.now() - t;
    const check = stores[0]!;
    const last = await check.lastPosition();
    const ok = (await check.verify()).intact;
    if (last !== per * writers || !ok) throw new Error(`writers ${writers}: ${last} events, intact ${ok}`);
    writersRows.push([writers, per * writers, Math.round(ms), rate(per * writers, ms), median(lat).toFixed(2), percentile(lat, 99).toFixed(2)]);
    for (const s of stores) await s.close();
  }

  const lockCost = median(lockTx) - median(bareTx);
  console.log(
    `PostgreSQL ${(await raw.query('SHOW server_version')).rows[0].server_version}${server ? ` (throwaway, ${server.source}, fsync off)` : ''}; ` +
      `N = ${N.toLocaleString()}`,
  );
  console.log(
    table([
      ['', 'store ms', 'raw pg ms', 'store/raw', 'store rate'],
      [`append ${N} (commits of ${BATCH})`, Math.round(storeMs), Math.round(rawMs), ratio(storeMs, rawMs), rate(N, storeMs)],
      [
        `${COMMITS} one-event commits (sum)`,
        Math.round(one.reduce((a, b) => a + b, 0)),
        Math.round(oneRaw.reduce((a, b) => a + b, 0)),
        ratio(median(one), median(oneRaw)),
        rate(
          COMMITS,
          one.reduce((a, b) => a + b, 0),
        ),
      ],
      [`read all ${total}`, Math.round(readMs), Math.round(rawReadMs), ratio(readMs, rawReadMs), rate(total, readMs)],
      [`scan all ${total}`, Math.round(scanMs), Math.round(rawReadMs), ratio(scanMs, rawReadMs), rate(total, scanMs)],
      [`read one stream (${stream.length})`, streamMs.toFixed(1), rawStreamMs.toFixed(1), ratio(streamMs, rawStreamMs), ''],
      [`verify ${total}`, Math.round(verifyMs), '', '', rate(total, verifyMs)],
    ]),
  );
  console.log(
    `one-event commit: median ${median(one).toFixed(3)} ms (raw BEGIN/INSERT/COMMIT ${median(oneRaw).toFixed(3)} ms); ` +
      `append lock: BEGIN+pg_advisory_xact_lock+COMMIT ${median(lockTx).toFixed(3)} ms vs BEGIN+SELECT ` +
      `1+COMMIT ${median(bareTx).toFixed(3)} ms → ${(lockCost * 1000).toFixed(0)} µs per commit uncontended`,
  );
  console.log(table(writersRows));
} finally {
  for (const s of await raw.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE '${run}%'`).then((r) => r.rows)) {
    await raw.query(`DROP SCHEMA ${s.nspname} CASCADE`);
  }
  await raw.end();
  await server?.stop();
}
