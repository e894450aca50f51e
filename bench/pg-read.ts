// bench/pg-read: the cold load of a ReadView (what every new process reading a PostgreSQL ledger
// pays before its first answer) beside a raw node-postgres scan of the same rows in the same page
// size (keyset pages of 5000, JSON.parse of data), with the heap and RSS each leaves behind.
//   npx tsx bench/pg-read.ts [N]     (CLOCKLEDGER_PG_URL=postgres://… for a server of your own)
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openPgEventStore } from '../store/postgres-event-store.js';
import { ReadView } from '../store/read-view.js';
import type { AppendBatch, NewEvent } from '../store/types.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { table } from './lib/report.js';

const N = Number(process.argv[2] ?? process.env.N ?? 100_000);
const PAGE = 5000;
const STREAMS = 500;
const say = (s: string) => process.stderr.write(`${s}\n`);
const mb = (b: number) => (b / 2 ** 20).toFixed(0);
const gc = () => (globalThis as { gc?: () => void }).gc?.();

const server = process.env.CLOCKLEDGER_PG_URL ? null : await startPostgres();
const base = process.env.CLOCKLEDGER_PG_URL ?? server!.url;
const schema = `r${process.pid}`;
const raw = new pg.Client({ connectionString: base });
await raw.connect();

function event(i: number): NewEvent {
  return {
    type: 'tick',
    time: BigInt(i * 1000),
    data: { i, tsc: String(1_000_000_007n * BigInt(i)), tscOffset: String(-7n * BigInt(i)) },
    metadata: { handler: 'bench' },
  };
}

try {
  const store = await openPgEventStore(`${base}?schema=${schema}`);
  say(`filling ${N.toLocaleString()} events over ${STREAMS} streams ...`);
  const versions = new Map<string, number>();
  for (let start = 0; start < N; start += 1000) {
    const by = new Map<string, NewEvent[]>();
    for (let i = start; i < Math.min(N, start + 1000); i++) {
      const id = `vm-${i % STREAMS}`;
      by.set(id, [...(by.get(id) ?? []), event(i)]);
    }
    const batches: AppendBatch[] = [...by].map(([streamId, events]) => ({ streamId, expectedVersion: versions.get(streamId) ?? 0, events }));
    await store.commit(batches);
    for (const b of batches) versions.set(b.streamId, (versions.get(b.streamId) ?? 0) + b.events.length);
  }

  // raw baseline: the same rows, the same pages, data parsed
  gc();
  let m0 = process.memoryUsage();
  let t0 = performance.now();
  const held: unknown[] = [];
  for (let after = 0; ; ) {
    const r = await raw.query(
      `SELECT position, stream_id, version, type, schema_version, time::text, data, ` +
        `metadata, hash FROM ${schema}.events WHERE position > $1 ORDER BY position LIMIT $2`,
      [after, PAGE],
    );
    for (const row of r.rows) held.push({ ...row, data: JSON.parse(row.data) });
    if (r.rows.length < PAGE) break;
    after = Number(r.rows.at(-1).position);
  }
  const rawMs = performance.now() - t0;
  gc();
  let m1 = process.memoryUsage();
  const rawHeap = m1.heapUsed - m0.heapUsed;
  const rawRss = m1.rss;
  held.length = 0;
  gc();

  m0 = process.memoryUsage();
  t0 = performance.now();
  const view = await new ReadView(store).catchUp();
  const viewMs = performance.now() - t0;
  gc();
  m1 = process.memoryUsage();
  if (view.lastPosition() !== N) throw new Error(`view holds ${view.lastPosition()} of ${N}`);
  console.log(
    `cold load of ${N.toLocaleString()} events (${STREAMS} streams, pages ` +
      `of ${PAGE})${(globalThis as { gc?: unknown }).gc ? '' : ' [run with --expose-gc for exact heap]'}`,
  );
  console.log(
    table([
      ['', 'ms', 'heap held MB', 'RSS after MB'],
      ['raw pg scan + JSON.parse', Math.round(rawMs), mb(rawHeap), mb(rawRss)],
      ['ReadView.catchUp', Math.round(viewMs), mb(m1.heapUsed - m0.heapUsed), mb(m1.rss)],
    ]),
  );
  await store.close();
} finally {
  await raw.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await raw.end();
  await server?.stop();
}
