// bench/fleet: record and audit 1,000 live migrations of 8-vCPU VMs with mixed strategies through
// the migrate handler, beside a raw better-sqlite3 batched insert of the same rows, measured in
// step with it (chunk by chunk) in the same run. A small fleet on a database of its own runs
// first so both sides are measured with their code compiled (its figures are shown, not counted).
// With --pg, the same fleet on a PostgreSQL ledger (CLOCKLEDGER_PG_URL, else a throwaway server,
// fsync off) beside a raw node-postgres batched insert (unnest) of the same rows.
//   npx tsx bench/fleet.ts [migrations] [warm-up migrations] [--pg] [--no-build]   (times the compiled package: builds dist/ first)
import { rawEventsDb } from './lib/raw.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { EventStore } from '../store/types.js';
import { fmtRate, median, peakRssMb, table } from './lib/report.js';
import { reportFigures } from './lib/summary.js';
import { buildDist, fromDist } from './lib/dist.js';

// what is timed is the compiled package, as the CLI runs it (npm run build first, unless --no-build)
if (!process.argv.includes('--no-build')) buildDist();
const { handlers } = await fromDist<typeof import('../handlers/index.js')>('handlers/index.js');
const { closeStores, logFor } = await fromDist<typeof import('../handlers/context.js')>('handlers/context.js');
const { openPgEventStore } = await fromDist<typeof import('../store/postgres-event-store.js')>('store/postgres-event-store.js');
const { ReadView } = await fromDist<typeof import('../store/read-view.js')>('store/read-view.js');
const { auditMigration } = await fromDist<typeof import('../machines/audit/audit.js')>('machines/audit/audit.js');
const { clearRebuildCache } = await fromDist<typeof import('../machines/rebuild.js')>('machines/rebuild.js');
const { openEventStore } = await fromDist<typeof import('../store/sqlite-event-store.js')>('store/sqlite-event-store.js');
const { X86_STRATEGY_NAMES: STRATEGY_NAMES } =
  await fromDist<typeof import('../machines/migration/strategies/index.js')>('machines/migration/strategies/index.js');

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const PG = process.argv.includes('--pg');
const MIGRATIONS = Number(args[0] ?? 1000);
const WARMUP = Number(args[1] ?? 50);
const CHAIN = 10; // migrations per guest
const VCPUS = 8;
const dir = mkdtempSync(join(tmpdir(), 'clockledger-fleet-'));
const say = (s: string) => process.stderr.write(`${s}\n`);

const HOSTS = [
  { hostId: 'intel-3000', tscKhz: 3_000_000, vendor: 'vmx' },
  { hostId: 'intel-2600', tscKhz: 2_600_000, vendor: 'vmx' },
  { hostId: 'amd-3000', tscKhz: 3_000_000, vendor: 'svm' },
  { hostId: 'amd-3400', tscKhz: 3_400_000, vendor: 'svm' },
  { hostId: 'old-3000', tscKhz: 3_000_000, vendor: 'vmx', tscScaling: false, kernel: 'linux-6.6' },
  { hostId: 'next-3000', tscKhz: 3_000_000, vendor: 'vmx', kernel: 'clock-cleanup-v6' },
];

interface FleetResult {
  migrations: number;
  events: number;
  ms: number;
  rawMs: number;
  chunkRatios: number[];
  statuses: { completed: number; failed: number };
  verdicts: Record<string, number>;
  guests: number;
  auditMs: number;
}

/** A fleet on its own database: hosts, guests, then `migrations` migrations in chunks with the raw baseline in step. */
async function fleet(db: string, migrations: number): Promise<FleetResult> {
  const ctx = { db };
  const ok = async (name: keyof typeof handlers, req: Record<string, unknown>) => {
    const r = (await (handlers[name] as (r: unknown, c: unknown) => Promise<Record<string, unknown>>)(req, ctx)) as { ok: boolean; error?: unknown } & Record<
      string,
      unknown
    >;
    if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
    return r;
  };
  for (const [i, h] of HOSTS.entries()) await ok('createHost', { ...h, initialTsc: String(BigInt(i + 1) * 7_000_000_000_000n) });
  const guests = Math.ceil(migrations / CHAIN);
  const current: string[] = [];
  for (let g = 0; g < guests; g++) {
    const vmId = `g${g}`;
    await ok('createVm', { vmId, hostId: HOSTS[g % 4]!.hostId, vcpus: VCPUS });
    await ok('runVcpu', { vmId });
    for (let v = 0; v < VCPUS; v++) await ok('guest', { vmId, vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10000 + 0x1000 * v + 1 });
    current.push(vmId);
  }
  // the log as the handlers read it (on PostgreSQL, caught up to its head at each call)
  const log = () => logFor(ctx);
  let store = await log();
  const statuses = { completed: 0, failed: 0 };
  const verdicts: Record<string, number> = { pass: 0, warn: 0, fail: 0 };
  // The baseline is measured in step with the work, chunk by chunk on the same rows, so both see
  // the same load on a shared machine: after each chunk of migrations, its rows go into the raw
  // table, JSON.stringify + INSERT, one transaction per migration's worth of rows.
  const raw = PG ? await rawPg(db) : rawSqlite(`${db}.raw`);
  const rawChunk = async (fromPosition: number, chunkMigrations: number): Promise<number> => {
    const rows = store.read({ fromPosition });
    const per = Math.max(1, Math.round(rows.length / chunkMigrations));
    const r0 = performance.now();
    for (let i = 0; i < rows.length; i += per) await raw.insert(rows.slice(i, i + per));
    return performance.now() - r0;
  };
  const chunkRatios: number[] = [];
  let ms = 0;
  let rawMs = 0;
  let events = 0;
  let n = 0;
  for (let round = 0; n < migrations; round++) {
    const from = store.lastPosition() + 1;
    const t0 = performance.now();
    let inChunk = 0;
    for (let g = 0; g < guests && n < migrations; g++, n++, inChunk++) {
      const strategy = STRATEGY_NAMES[(g + round) % STRATEGY_NAMES.length]!;
      const toHost = HOSTS[(g + round + 1) % HOSTS.length]!.hostId;
      await ok('advanceTime', { ns: 50_000_000 });
      const r = (await ok('migrate', {
        vmId: current[g],
        toHost,
        strategy,
        blackoutNs: 100_000_000 + ((g * 7919) % 400) * 1_000_000,
        preSaveGapNs: 10_000_000,
        vmmLatencyNs: 15_000,
        readSpacingNs: 5_000,
        writeSpacingNs: 5_000,
      })) as unknown as { status: 'completed' | 'failed'; newVmId: string; audit: { verdict: string } };
      statuses[r.status]++;
      verdicts[r.audit.verdict] = (verdicts[r.audit.verdict] ?? 0) + 1;
      if (r.status === 'completed') current[g] = r.newVmId;
    }
    const chunkMs = performance.now() - t0;
    store = await log();
    const chunkEvents = store.lastPosition() + 1 - from;
    const chunkRawMs = await rawChunk(from, inChunk);
    ms += chunkMs;
    rawMs += chunkRawMs;
    events += chunkEvents;
    chunkRatios.push(chunkRawMs / chunkMs);
  }
  await raw.close();

  // A later audit of the whole fleet (`clockledger audit`): from the log alone, in a store of its
  // own with no state cached in this process, as a fresh process would (on PostgreSQL: the whole
  // log read into a view first, counted in the audit's time).
  clearRebuildCache();
  const a0 = performance.now();
  const pgFresh = PG ? await openPgEventStore(db, { readonly: true }) : null;
  const fresh: EventStore = pgFresh ? await new ReadView(pgFresh).catchUp() : openEventStore(db);
  const ids = fresh.streams('migration-').map((sid) => sid.slice('migration-'.length));
  let audited = 0;
  for (const id of ids) if (auditMigration(fresh, id)?.verdict) audited++;
  const auditMs = performance.now() - a0;
  fresh.close();
  await pgFresh?.close();
  if (audited !== migrations) throw new Error(`audited ${audited} of ${migrations} migrations from the log`);
  return { migrations, events, ms, rawMs, chunkRatios, statuses, verdicts, guests, auditMs };
}

/** The baseline: rows inserted as they are, one transaction per call, nothing of ours on top. */
interface RawTable {
  insert(rows: ReturnType<EventStore['read']>): Promise<void>;
  close(): Promise<void>;
}

function rawSqlite(path: string): RawTable {
  const { db: raw, insert: ins } = rawEventsDb(path);
  return {
    async insert(rows) {
      raw.transaction(() => {
        for (const e of rows) ins.run(e.position, e.streamId, e.version, e.type, e.time, JSON.stringify(e.data), JSON.stringify(e.metadata), e.hash);
      })();
    },
    close: async () => void raw.close(),
  };
}

/** A plain table beside the ledger's schema, the same columns and keys; one batched unnest INSERT per call. */
async function rawPg(url: string): Promise<RawTable> {
  const u = new URL(url);
  const schema = `${u.searchParams.get('schema')}_raw`;
  u.searchParams.delete('schema');
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.query(`CREATE TABLE ${schema}.events (position BIGINT PRIMARY KEY, stream_id TEXT COLLATE "C" NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
    schema_version INTEGER NOT NULL, time BIGINT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (stream_id, version))`);
  return {
    async insert(rows) {
      const col = <T>(f: (e: (typeof rows)[number]) => T) => rows.map(f);
      await c.query('BEGIN');
      await c.query(
        `INSERT INTO ${schema}.events SELECT * FROM unnest($1::bigint[], $2::text[], ` +
          `$3::int[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::text[])`,
        [
          col((e) => e.position),
          col((e) => e.streamId),
          col((e) => e.version),
          col((e) => e.type),
          col((e) => e.schemaVersion),
          col((e) => e.time.toString()),
          col((e) => JSON.stringify(e.data)),
          col((e) => JSON.stringify(e.metadata)),
          col((e) => e.hash),
        ],
      );
      await c.query('COMMIT');
    },
    close: () => c.end(),
  };
}

const ratioOf = (r: FleetResult) => r.rawMs / r.ms;

const { startPostgres } = PG && !process.env.CLOCKLEDGER_PG_URL ? await import('../test/helpers/postgres.js') : { startPostgres: null };
const server = startPostgres ? await startPostgres() : null;
const pgBase = process.env.CLOCKLEDGER_PG_URL ?? server?.url;
const where = (name: string) => (PG ? `${pgBase}?schema=fleet_${process.pid}_${name.replace(/\W/g, '_')}` : join(dir, name));

try {
  say(`warm-up: ${WARMUP} migrations on a database of their own ...`);
  const warm = WARMUP > 0 ? await fleet(where('warm-up.db'), WARMUP) : null;
  say(`recording and auditing ${MIGRATIONS} migrations of ${VCPUS}-vCPU guests${PG ? ' on PostgreSQL' : ''} ...`);
  const r = await fleet(where('fleet.db'), MIGRATIONS);
  const eventsPerSec = (r.events / r.ms) * 1000;
  const rawPerSec = (r.events / r.rawMs) * 1000;
  const ratio = ratioOf(r);
  console.log(
    `bench/fleet: ${MIGRATIONS} migrations of ${VCPUS}-vCPU guests, ${STRATEGY_NAMES.length} strategies, ${HOSTS.length} hosts, ` +
      `on ${
        PG
          ? `PostgreSQL${server ? ` (throwaway, ${server.source}, fsync off)` : ''} against a raw node-postgres batched insert`
          : 'SQLite against a raw better-sqlite3 batched insert'
      }`,
  );
  console.log(
    `  outcomes: ${r.statuses.completed} completed, ${r.statuses.failed} failed; ` +
      `verdicts: ${r.verdicts.pass} pass, ${r.verdicts.warn} warn, ${r.verdicts.fail} fail`,
  );
  console.log(`  ${r.events.toLocaleString()} events (${(r.events / MIGRATIONS).toFixed(0)} per migration)`);
  console.log(
    `  ratio per chunk of ${r.guests} migrations: min ${Math.min(...r.chunkRatios).toFixed(2)}, ` +
      `median ${median(r.chunkRatios).toFixed(2)}, max ${Math.max(...r.chunkRatios).toFixed(2)}`,
  );
  if (warm) console.log(`  warm-up (not counted): ${WARMUP} migrations, ratio ${ratioOf(warm).toFixed(2)} while both sides compile`);
  console.log('');
  console.log(
    table([
      ['figure', 'value', 'raw batched insert', 'ratio', 'target', 'met'],
      ['migrations/s (recorded + audited)', ((MIGRATIONS / r.ms) * 1000).toFixed(1), '', '', '', ''],
      // (the target is SQLite's; on PostgreSQL every commit is a round trip the raw insert shares only in part)
      ['events/s', fmtRate(eventsPerSec), fmtRate(rawPerSec), ratio.toFixed(2), PG ? '' : '≥ 0.40', PG ? '' : ratio >= 0.4 ? 'yes' : 'NO'],
      ['later audit from the log, migrations/s', ((MIGRATIONS / r.auditMs) * 1000).toFixed(1), '', '', '', ''],
      ['peak RSS (MB)', peakRssMb().toFixed(0), '', '', '', ''],
    ]),
  );
  reportFigures('fleet', [
    {
      figure: `fleet: ${MIGRATIONS} migrations recorded + audited${PG ? ' (PostgreSQL)' : ''}`,
      value: `${fmtRate(eventsPerSec)} events`,
      baseline: `raw batched insert ${fmtRate(rawPerSec)}`,
      ratio,
      target: PG ? '' : '≥ 0.40',
      met: PG || ratio >= 0.4,
    },
  ]);
} finally {
  await closeStores();
  rmSync(dir, { recursive: true, force: true });
  if (PG) {
    const c = new pg.Client({ connectionString: pgBase });
    await c.connect();
    for (const s of (await c.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'fleet_${process.pid}_%'`)).rows)
      await c.query(`DROP SCHEMA ${s.nspname} CASCADE`);
    await c.end();
  }
  await server?.stop();
}
