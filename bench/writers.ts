// bench/writers: requests through the handlers from 1, 4 and 8 writer processes at once on one
// PostgreSQL ledger (each process its own VM, guest reads under request ids: one event and one
// stored answer per request), beside the same number of processes doing raw node-postgres
// batched inserts of the same rows (one transaction per request's rows, no lock, no hash, no
// version check), measured in the same run. SQLite through the handlers is shown for contrast.
// The writers run the compiled package (dist/, built first; --no-build skips that), as users do.
//   npx tsx bench/writers.ts [requests per process] [--cells] [--no-build]
//   (CLOCKLEDGER_PG_URL=postgres://… to use a server of your own; else a throwaway one, fsync off)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { buildDist, fromDist } from './lib/dist.js';
import { table } from './lib/report.js';
import { reportFigures, type Figure } from './lib/summary.js';

const self = new URL(import.meta.url).pathname;
const say = (s: string) => process.stderr.write(`${s}\n`);

if (process.argv[2] === '--child') await child(process.argv.slice(3));
else await main();

/** One writer: `count` requests (or raw inserts of the rows they wrote), started by <goFile>. */
async function child([mode, db, id, countArg, rowsFrom, goFile]: string[]): Promise<void> {
  const count = Number(countArg);
  const vmId = `w${id}`;
  let work: (i: number) => Promise<void>;
  let done: () => Promise<void>;
  let trips = () => 0;
  if (mode === 'raw') {
    // the rows a handler run wrote, copied under new positions into a plain table
    const c = new pg.Client({ connectionString: db });
    await c.connect();
    const src = new URL(rowsFrom!).searchParams.get('schema')!;
    const rows = (
      await c.query(
        `SELECT stream_id, version, type, schema_version, time::text, data, metadata, hash FROM ${src}.events WHERE stream_id = $1 ORDER BY position`,
        [`vm-${vmId}`],
      )
    ).rows;
    const per = Math.max(1, Math.floor(rows.length / count));
    work = async (i) => {
      const chunk = rows.slice(i * per, (i + 1) * per);
      const col = (k: string) => chunk.map((r) => r[k]);
      await c.query('BEGIN');
      await c.query(
        `INSERT INTO ${src}_raw.events (stream_id, version, type, schema_version, time, data, metadata, hash)
         SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::int[], $5::bigint[], $6::text[], $7::text[], $8::text[])`,
        [col('stream_id'), col('version'), col('type'), col('schema_version'), col('time'), col('data'), col('metadata'), col('hash')],
      );
      await c.query('COMMIT');
    };
    done = () => c.end();
  } else {
    const { handlers } = await fromDist<typeof import('../handlers/index.js')>('handlers/index.js');
    const { closeStores, pgStoreFor } = await fromDist<typeof import('../handlers/context.js')>('handlers/context.js');
    const ctx = { db };
    const ok = async (r: Promise<{ ok: boolean; error?: unknown }>) => {
      const x = await r;
      if (!x.ok) throw new Error(JSON.stringify(x.error));
    };
    await ok(handlers.createVm({ vmId, hostId: 'h', vcpus: 1 }, ctx));
    await ok(handlers.runVcpu({ vmId }, ctx));
    work = (i) => ok(handlers.guest({ vmId, vcpu: 0, op: 'rdtsc', requestId: `${vmId}-${i}` }, ctx));
    done = closeStores;
    // round trips: the statements the store sends to the server (PgEventStore.roundTrips)
    if (db!.startsWith('postgres')) {
      const store = await pgStoreFor(db!);
      trips = () => store.roundTrips;
    }
  }
  process.stdout.write('ready\n');
  while (!existsSync(goFile!)) await sleep(1);
  const t0 = performance.now();
  const rt0 = trips();
  for (let i = 0; i < count; i++) await work(i);
  const ms = performance.now() - t0;
  const roundTrips = (trips() - rt0) / count;
  await done();
  process.stdout.write(`${JSON.stringify({ ms, roundTrips })}\n`);
}

/** Run `n` children at once; the wall time from go to the last one done. */
async function race(n: number, args: (i: number) => string[], dir: string): Promise<number> {
  return (await raceTrips(n, args, dir)).ms;
}

/** race(), with the round trips per request the writers counted (their mean). */
async function raceTrips(n: number, args: (i: number) => string[], dir: string): Promise<{ ms: number; roundTrips: number }> {
  const trips: number[] = [];
  const goFile = join(dir, `go-${Math.random().toString(36).slice(2)}`);
  let ready = 0;
  let t0 = 0;
  const runs = Array.from(
    { length: n },
    (_, i) =>
      new Promise<void>((resolve, reject) => {
        const c = spawn(process.execPath, ['--import', 'tsx', self, '--child', ...args(i), goFile], { stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
        c.stdout.setEncoding('utf8').on('data', (d: string) => {
          const m = /"roundTrips":([0-9.]+)/.exec(d);
          if (m) trips.push(Number(m[1]));
          if (d.includes('ready') && ++ready === n) {
            t0 = performance.now();
            writeFileSync(goFile, 'go');
          }
        });
        c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${i} exited ${code}: ${err}`))));
      }),
  );
  await Promise.all(runs);
  return { ms: performance.now() - t0, roundTrips: trips.reduce((a, b) => a + b, 0) / Math.max(1, trips.length) };
}

async function main(): Promise<void> {
  const PER = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 200);
  if (!process.argv.includes('--no-build')) buildDist();
  const { startPostgres } = await import('../test/helpers/postgres.js');
  const server = process.env.CLOCKLEDGER_PG_URL ? null : await startPostgres();
  const base = process.env.CLOCKLEDGER_PG_URL ?? server!.url;
  const dir = mkdtempSync(join(tmpdir(), 'clockledger-writers-'));
  const run = `wr${process.pid}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  const { handlers } = await fromDist<typeof import('../handlers/index.js')>('handlers/index.js');
  const { closeStores } = await fromDist<typeof import('../handlers/context.js')>('handlers/context.js');
  const rows: (string | number)[][] = [
    ['writers', 'engine', 'requests', 'ms', 'requests/s', 'round trips / request', 'raw pg rows/s', 'ratio', 'verify', 'load average'],
  ];
  const figures: Figure[] = [];
  try {
    // (--cells: only the cells below)
    for (const writers of process.argv.includes('--cells') ? [] : [1, 4, 8]) {
      const n = writers * PER;
      for (const engine of ['postgres', 'sqlite'] as const) {
        const db = engine === 'postgres' ? `${base}?schema=${run}_${writers}` : join(dir, `w${writers}.db`);
        const h = await handlers.createHost({ hostId: 'h', tscKhz: 3_000_000 }, { db });
        if (!h.ok) throw new Error(JSON.stringify(h));
        await closeStores();
        say(`${writers} writer(s) × ${PER} requests on ${engine} ...`);
        const { ms, roundTrips } = await raceTrips(writers, (i) => ['handlers', db, String(i), String(PER), '-'], dir);
        const v = (await handlers.verify({}, { db })) as { ok: boolean; intact?: boolean; head?: { position: number } };
        const ev = (await handlers.events({ limit: 1 }, { db })) as unknown as { lastPosition: number };
        await closeStores();
        // each request: its guest read (1 event); each process also created and started its VM
        const expected = 1 + writers * (PER + 1 + 2);
        if (!v.intact || ev.lastPosition < writers * PER)
          throw new Error(`${engine} ${writers}: intact ${v.intact}, ${ev.lastPosition} events (expected about ${expected})`);
        let rawRate = '';
        let ratio = '';
        if (engine === 'postgres') {
          // (in a schema of this run's own, dropped with the others at the end)
          const rawTable = `${run}_${writers}_raw.events`;
          await admin.query(`CREATE SCHEMA ${run}_${writers}_raw`);
          await admin.query(
            `CREATE TABLE ${rawTable} (position BIGSERIAL PRIMARY KEY, ` +
              `stream_id TEXT COLLATE "C" NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
            schema_version INTEGER NOT NULL, time BIGINT NOT NULL, data TEXT NOT NULL, ` +
              `metadata TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (stream_id, version))`,
          );
          const rawMs = await race(writers, (i) => ['raw', base, String(i), String(PER), db], dir);
          const rawRows = Number((await admin.query(`SELECT count(*) AS n FROM ${rawTable}`)).rows[0].n);
          rawRate = Math.round((rawRows / rawMs) * 1000).toLocaleString();
          // handler requests/s against raw transactions/s of the same rows (one per request)
          ratio = (n / ms / ((PER * writers) / rawMs)).toFixed(2);
          figures.push(...pgFigures(writers, (n / ms) * 1000, (rawRows / rawMs) * 1000, roundTrips));
        }
        rows.push([
          writers,
          engine,
          n,
          Math.round(ms),
          Math.round((n / ms) * 1000).toLocaleString(),
          engine === 'postgres' ? roundTrips.toFixed(2) : '',
          rawRate,
          ratio,
          v.intact ? `intact, ${v.head!.position}` : 'BROKEN',
          loadavg()[0]!.toFixed(1),
        ]);
      }
    }
    // cells: the same writers, each on a ledger (schema) of its own on the same server: one chain each
    const cellRows: (string | number)[][] = [['cells (one writer each)', 'requests', 'ms', 'requests/s in all', 'per cell', 'load average']];
    for (const cells of [1, 2, 4, 8]) {
      const dbs = Array.from({ length: cells }, (_, i) => `${base}?schema=${run}_c${cells}_${i}`);
      for (const db of dbs) {
        const h = await handlers.createHost({ hostId: 'h', tscKhz: 3_000_000 }, { db });
        if (!h.ok) throw new Error(JSON.stringify(h));
      }
      await closeStores();
      say(`${cells} cell(s) × ${PER} requests ...`);
      const { ms } = await raceTrips(cells, (i) => ['handlers', dbs[i]!, String(i), String(PER), '-'], dir);
      const rate = (cells * PER) / (ms / 1000);
      cellRows.push([cells, cells * PER, Math.round(ms), Math.round(rate), Math.round(rate / cells), loadavg()[0]!.toFixed(1)]);
    }
    console.log(
      `bench/writers: guest reads under request ids, each process on its own VM of one ledger; ` +
        `PostgreSQL ${(await admin.query('SHOW server_version')).rows[0].server_version}${server ? ` (throwaway, ${server.source}, fsync off)` : ''}`,
    );
    console.log('ratio: handler requests/s ÷ raw node-postgres transactions/s inserting the same rows from as many processes');
    console.log(table(rows));
    console.log('\ncells: each writer on a ledger of its own (a schema, its own chain and append lock) on the same server');
    console.log(table(cellRows));
    reportFigures('writers', figures);
  } finally {
    for (const s of (await admin.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE '${run}%'`)).rows)
      await admin.query(`DROP SCHEMA ${s.nspname} CASCADE`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
    await server?.stop();
  }
}

/** The PostgreSQL write targets: one writer's round trips and rate, eight writers' rate in all. */
function pgFigures(writers: number, rate: number, rawRate: number, roundTrips: number): Figure[] {
  const baseline = `raw node-postgres ${Math.round(rawRate).toLocaleString()} transactions/s`;
  const out: Figure[] = [];
  if (writers === 1) {
    out.push({
      figure: 'PostgreSQL write: round trips per request',
      value: roundTrips.toFixed(2),
      baseline: '',
      ratio: null,
      target: '≤ 3',
      met: roundTrips <= 3,
    });
  }
  const target = writers === 1 ? 400 : writers === 8 ? 600 : null;
  if (target !== null) {
    out.push({
      figure: `PostgreSQL: ${writers} writer${writers > 1 ? 's' : ''} through the handlers`,
      value: `${Math.round(rate).toLocaleString()} requests/s`,
      baseline,
      ratio: rate / rawRate,
      target: `≥ ${target} requests/s`,
      met: rate >= target,
    });
  }
  return out;
}
