// bench/pg-cold: a cold PostgreSQL reader (a fresh `node` process on the compiled package, as a
// cold Lambda) on a ledger of about 1M events: stateAt of one VM and the audit of one migration,
// each timed from the process's start of the request to its answer, with the process's peak RSS.
// The ledger is bench/time-travel's SQLite ledger (written through the handlers: a 200,000-event
// VM stream, a fleet of migrations), copied row for row into a PostgreSQL schema (events, stream
// heads, categories, requests, snapshots): the same events, hashes and snapshot bindings a
// PostgreSQL writer would have written, without writing 1M events through a loaded server again.
// The baseline in the same run: the same questions on the SQLite ledger, in fresh processes.
//   npx tsx bench/pg-cold.ts <ledger.db from bench/time-travel --ledger> [--no-build]
//   (CLOCKLEDGER_PG_URL=postgres://… for a server of your own; else a throwaway one, fsync off)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { OWN_PEAK_RSS_MB } from './lib/child-rss.js';
import { buildDist, DIST, fromDist } from './lib/dist.js';
import { median, table } from './lib/report.js';
import { reportFigures } from './lib/summary.js';

const argv = process.argv.slice(2);
const source = argv.find((a) => !a.startsWith('--'));
if (!source) throw new Error('usage: bench/pg-cold.ts <ledger.db>');
if (!argv.includes('--no-build')) buildDist();
const say = (s: string) => process.stderr.write(`${s}\n`);
const { startPostgres } = await import('../test/helpers/postgres.js');
const server = process.env.CLOCKLEDGER_PG_URL ? null : await startPostgres();
const base = process.env.CLOCKLEDGER_PG_URL ?? server!.url;
const schema = `cold${process.pid}`;
const url = `${base}${base.includes('?') ? '&' : '?'}schema=${schema}`;
const admin = new pg.Client({ connectionString: base });
await admin.connect();

/** Copy a table's rows in pages, as unnest arrays of the given PostgreSQL types. */
async function copy(db: Database.Database, sql: string, table: string, columns: string[], types: string[]): Promise<number> {
  let n = 0;
  let page: unknown[][] = [];
  const flush = async () => {
    if (!page.length) return;
    const cols = columns.map((_, i) => page.map((r) => r[i]));
    await admin.query(
      `INSERT INTO ${schema}.${table} (${columns.join(', ')}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`,
      cols,
    );
    n += page.length;
    page = [];
  };
  for (const r of db.prepare(sql).raw(true).iterate() as IterableIterator<unknown[]>) {
    page.push(r.map((v) => (Buffer.isBuffer(v) ? `\\x${v.toString('hex')}` : v)));
    if (page.length === 5000) await flush();
  }
  await flush();
  return n;
}

/** A fresh reader process: one request, timed from its start (imports included) to the answer. */
function cold(db: string, name: string, req: Record<string, unknown>): { ms: number; requestMs: number; rssMb: number } {
  const code = `
    const t0 = performance.now();
    const { handlers } = await import('${pathToFileURL(join(DIST, 'handlers/index.js')).href}');
    const t1 = performance.now();
    const r = await handlers.${name}(${JSON.stringify(req)}, { db: ${JSON.stringify(db)} });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const t2 = performance.now();
    process.stdout.write(JSON.stringify({ ms: t2 - t0, requestMs: t2 - t1, rssMb: ${OWN_PEAK_RSS_MB} }));
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { ms: number; requestMs: number; rssMb: number };
}

try {
  const { openPgEventStore } = await fromDist<typeof import('../store/postgres-event-store.js')>('store/postgres-event-store.js');
  (await openPgEventStore(url)).close();
  const db = new Database(source, { readonly: true });
  say(`copying ${source} into ${schema} ...`);
  const events = await copy(
    db,
    'SELECT position, stream_id, version, type, schema_version, CAST(time AS TEXT), data, metadata, hash FROM events ORDER BY position',
    'events',
    ['position', 'stream_id', 'version', 'type', 'schema_version', 'time', 'data', 'metadata', 'hash'],
    ['bigint', 'text', 'int', 'text', 'int', 'bigint', 'text', 'text', 'text'],
  );
  await copy(
    db,
    'SELECT stream_id, version, last_position, last_type, CAST(wake_at AS TEXT) FROM streams',
    'streams',
    ['stream_id', 'version', 'last_position', 'last_type', 'wake_at'],
    ['text', 'int', 'bigint', 'text', 'bigint'],
  );
  await copy(db, 'SELECT category, streams FROM stream_categories', 'stream_categories', ['category', 'streams'], ['text', 'int']);
  await copy(
    db,
    'SELECT request_id, handler, first_position, last_position, response, fingerprint, response_hash, seq FROM requests',
    'requests',
    ['request_id', 'handler', 'first_position', 'last_position', 'response', 'fingerprint', 'response_hash', 'seq'],
    ['text', 'text', 'bigint', 'bigint', 'text', 'text', 'text', 'bigint'],
  );
  const snapshots = await copy(
    db,
    'SELECT stream_id, version, position, code_version, state, chain_hash, binding FROM snapshots',
    'snapshots',
    ['stream_id', 'version', 'position', 'code_version', 'state', 'chain_hash', 'binding'],
    ['text', 'int', 'bigint', 'text', 'bytea', 'text', 'text'],
  );
  await admin.query(`ANALYZE ${schema}.events`);
  const migration = (
    db.prepare("SELECT stream_id FROM streams WHERE stream_id LIKE 'migration-%' ORDER BY version DESC, stream_id LIMIT 1").pluck().get() as string
  ).slice('migration-'.length);
  const bigVersion = db.prepare("SELECT version FROM streams WHERE stream_id = 'vm-big'").pluck().get() as number;
  db.close();
  say(
    `  ${events.toLocaleString()} events, ${snapshots.toLocaleString()} snapshots; ` +
      `asking stateAt of vm-big at version ${Math.floor(bigVersion * 0.61)} and the audit of ${migration}`,
  );
  const asks: [string, string, Record<string, unknown>][] = [
    [`stateAt of one VM (${bigVersion.toLocaleString()}-event stream)`, 'stateAt', { vmId: 'big', version: Math.floor(bigVersion * 0.61) }],
    ['audit of one migration', 'audit', { migrationId: migration }],
  ];
  const rows: (string | number)[][] = [['request', 'PostgreSQL: request', 'process start to answer', 'peak RSS', 'SQLite: request', 'peak RSS']];
  const figures = [];
  for (const [what, name, req] of asks) {
    const p = [0, 1, 2].map(() => cold(url, name, req));
    const s = [0, 1, 2].map(() => cold(source, name, req));
    const pm = median(p.map((x) => x.requestMs));
    const prss = Math.max(...p.map((x) => x.rssMb));
    rows.push([
      what,
      `${pm.toFixed(0)} ms`,
      `${median(p.map((x) => x.ms)).toFixed(0)} ms`,
      `${prss.toFixed(0)} MB`,
      `${median(s.map((x) => x.requestMs)).toFixed(0)} ms`,
      `${Math.max(...s.map((x) => x.rssMb)).toFixed(0)} MB`,
    ]);
    figures.push({
      figure: `cold PostgreSQL reader, ${what}, ${events.toLocaleString()} events`,
      value: `${pm.toFixed(0)} ms, ${prss.toFixed(0)} MB`,
      baseline: `SQLite ${median(s.map((x) => x.requestMs)).toFixed(0)} ms`,
      ratio: null,
      target: '≤ 300 ms, ≤ 120 MB',
      met: pm <= 300 && prss <= 120,
    });
  }
  const load = (await import('node:os')).loadavg()[0]!;
  console.log(
    `bench/pg-cold: fresh reader processes (median of 3), ${events.toLocaleString()} events; ` +
      `PostgreSQL ${(await admin.query('SHOW server_version')).rows[0].server_version}; load average ${load.toFixed(1)}\n`,
  );
  console.log(table(rows));
  reportFigures('pg-cold', figures);
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  await server?.stop();
}
