// The handlers on a PostgreSQL ledger: the same requests answer byte for byte as on SQLite, a
// fresh process (the CLI) reads the same state back, verify finds a row edited on the server,
// a URL the handlers cannot use is a coded error that writes nothing, and the Lambda adapter
// keeps one pool across warm invocations.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { clearRebuildCache } from '../../machines/rebuild.js';
import { openPools } from '../../store/pg-pool.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';
import { postgres, PG_URL, pgLocation } from '../store/engines.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'handlers', 'cli', 'main.js');
const ledgers: Ledger[] = [];
afterEach(async () => {
  await closeStores();
  for (const l of ledgers.splice(0)) l.cleanup();
});
const ledger = (engine: 'sqlite' | 'postgres') => {
  const l = newLedger(engine);
  ledgers.push(l);
  return l;
};

/** A fleet in miniature: two x86 hosts and an arm64 pair, guests, time, three migrations, a realtime step. */
async function scenario(l: Ledger): Promise<void> {
  await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000, initialTsc: '1800000000000000', requestId: 'h1' });
  await l.ok('createHost', { hostId: 'dst', tscKhz: 2_600_000, vendor: 'svm', kernel: 'linux-5.15' });
  await l.ok('createHost', { hostId: 'a1', arch: 'arm64', cntfrqHz: '25000000' });
  await l.ok('createHost', { hostId: 'a2', arch: 'arm64', cntfrqHz: '25000000', ecv: false });
  await l.ok('createVm', { vmId: 'web', hostId: 'src', vcpus: 2 });
  await l.ok('createVm', { vmId: 'arm', hostId: 'a1', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'web' });
  await l.ok('runVcpu', { vmId: 'arm' });
  for (const vcpu of [0, 1]) await l.ok('guest', { vmId: 'web', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * vcpu });
  await l.ok('advanceTime', { ns: '5000000000', requestId: 't1' });
  // a retried request id: answered again, recorded once
  await l.ok('advanceTime', { ns: '5000000000', requestId: 't1' });
  await l.ok('migrate', { vmId: 'web', toHost: 'dst', strategy: 'firecracker', blackoutNs: '300000000' });
  await l.ok('migrate', { vmId: 'arm', toHost: 'a2', strategy: 'qemu', blackoutNs: '1000000000' });
  await l.ok('adjustRealtime', { hostId: 'dst', stepNs: '-2000000', slewPpm: 12.5 });
  await l.ok('advanceTime', { ns: '301000000000' });
  await l.ok('migrate', { vmId: 'web.m1', toHost: 'src', strategy: 'cloud-hypervisor', blackoutNs: '50000000' });
  await l.ok('guest', { vmId: 'web.m3', vcpu: 0, op: 'rdtsc' });
}

/** What the read handlers answer about the scenario's log. */
async function reads(l: Ledger): Promise<Record<string, unknown>> {
  clearRebuildCache();
  const out: Record<string, unknown> = {};
  const ask = async (key: string, name: Parameters<Ledger['call']>[0], req: Record<string, unknown> = {}) => (out[key] = await l.call(name, req));
  await ask('audit', 'audit');
  await ask('auditM1', 'audit', { migrationId: 'm1', thresholds: { clockErrorNs: '0', skewCycles: '0' } });
  await ask('events', 'events', { limit: 100_000 });
  await ask('eventsOfVm', 'events', { streamId: 'vm-web', from: 5, limit: 7 });
  await ask('hosts', 'listHosts');
  await ask('vms', 'listVms');
  await ask('stateNow', 'stateAt', { vmId: 'web.m3' });
  await ask('stateAtTime', 'stateAt', { vmId: 'web', time: '3000000000' });
  await ask('stateAtPosition', 'stateAt', { hostId: 'dst', position: 20 });
  await ask('verify', 'verify');
  await ask('replay', 'replay', { profile: 'linux-5.15' });
  await ask('bisect', 'bisect', { migrationId: 'm1' });
  // (re-runs on scratch SQLite copies of the log before the migration)
  await ask('bisectReleases', 'bisectReleases', { migrationId: 'm1', releases: ['firecracker@1.7', 'firecracker@1.16'] });
  await ask('chrome', 'exportTrace', { id: 'm1' });
  await ask('ftrace', 'exportTrace', { id: 'web', format: 'ftrace' });
  // the HTML reports: a migration's page, the fleet's, and a replay comparison
  await ask('report', 'report', { id: 'm1' });
  await ask('fleet', 'report', {});
  await ask('reportReplay', 'report', { id: 'm1', profile: 'linux-5.15' });
  await ask('time', 'advanceTime', { ns: '0' });
  return out;
}

describe('the same requests on SQLite and PostgreSQL', () => {
  it('give byte-identical answers: audits, events (hashes included), states, replay, bisects, exports, HTML reports, verify heads', async () => {
    const sqlite = ledger('sqlite');
    const pg = ledger('postgres');
    await scenario(sqlite);
    await scenario(pg);
    // the migrate answers (audits from the session) too
    expect(JSON.stringify(pg.migrateAudits)).toBe(JSON.stringify(sqlite.migrateAudits));
    const a = await reads(sqlite);
    const b = await reads(pg);
    for (const k of Object.keys(a)) {
      expect((a[k] as { ok: boolean }).ok, k).toBe(true);
      expect(JSON.stringify(b[k]), k).toBe(JSON.stringify(a[k]));
    }
    // the audit: three migrations judged, and the head every reader can keep
    expect((a.audit as { audits: unknown[] }).audits).toHaveLength(3);
    expect((b.verify as { head: { position: number } }).head.position).toBe((a.events as { lastPosition: number }).lastPosition);
  });

  it('a fresh process (the CLI) rebuilds the same state and audit from PostgreSQL', async () => {
    const pg = ledger('postgres');
    await scenario(pg);
    const here = await reads(pg);
    await closeStores();
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [CLI, '--db', pg.db, ...args, '--json'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    expect(JSON.stringify(cli('audit'))).toBe(JSON.stringify(here.audit));
    expect(JSON.stringify(cli('state', 'web.m3'))).toBe(JSON.stringify(here.stateNow));
    expect(JSON.stringify(cli('hosts', 'list'))).toBe(JSON.stringify(here.hosts));
    expect(cli('verify')).toEqual(here.verify);
    // and through CLOCKLEDGER_DB
    const env = spawnSync(process.execPath, [CLI, 'vms', 'list', '--json'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, CLOCKLEDGER_DB: pg.db },
    });
    expect(env.status, env.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(env.stdout))).toBe(JSON.stringify(here.vms));
  });
});

describe('host traces on PostgreSQL', () => {
  it('conformance reads the imported trace from the server and answers as on SQLite', async () => {
    const trace = join(import.meta.dirname, '..', 'fixtures', 'traces', 'ch-restore-offsets-differ.trace');
    const answers = [];
    for (const l of [ledger('sqlite'), ledger('postgres')]) {
      await l.ok('importTrace', { path: trace });
      answers.push(await l.ok('conformance', { traceId: 't1', strategy: 'cloud-hypervisor@53+syncTscOffsets=false', profile: 'linux-6.18' }));
    }
    expect(answers[1]!.conforms).toBe(true);
    expect(JSON.stringify(answers[1])).toBe(JSON.stringify(answers[0]));
  });
});

describe('verify on PostgreSQL', () => {
  it('names the position of a row edited on the server (handler and CLI exit 1)', async () => {
    const pg = ledger('postgres');
    await scenario(pg);
    const head = (await pg.ok('verify', {})).head as { position: number; hash: string };
    // KVM_CREATE_VCPU of vCPU 0, now claiming vCPU 1
    expect(
      await postgres.exec(pg.db, 'UPDATE events SET data = replace(data, \'"arg":0,\', \'"arg":1,\') WHERE position = $1 AND data LIKE \'{"arg":0,%\'', [6]),
    ).toBe(1);
    expect(await pg.ok('verify', {})).toMatchObject({ intact: false, firstBrokenPosition: 6, table: 'events', head });
    await closeStores();
    const r = spawnSync(process.execPath, [CLI, '--db', pg.db, 'verify', '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, intact: false, firstBrokenPosition: 6 });
  });
});

describe('ledger URLs the handlers cannot use', () => {
  it('another scheme is invalid_request, and no file of that name appears', async () => {
    const db = 'mysql://u@127.0.0.1/clock';
    const r = await handlers.createHost({ hostId: 'h', tscKhz: 3_000_000 }, { db });
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { scheme: 'mysql' } } });
    expect(existsSync('mysql:')).toBe(false);
    expect(await handlers.events({}, { db: 'redis://x/0' })).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
  });

  it('an unreachable server is io (unavailable) for writers and readers alike; nothing is kept open', async () => {
    // a port nothing listens on
    const u = new URL(PG_URL);
    u.port = '1';
    const db = `${u.toString()}?schema=nowhere`;
    const w = await handlers.createHost({ hostId: 'h', tscKhz: 3_000_000 }, { db });
    expect(w).toMatchObject({ ok: false, error: { code: 'io', details: { unavailable: true } } });
    expect((w as { error: { message: string } }).error.message).toMatch(
      /^cannot reach the PostgreSQL server of postgres:\/\/postgres@127\.0\.0\.1:1\/postgres\?schema=nowhere: /,
    );
    expect(await handlers.audit({}, { db })).toMatchObject({ ok: false, error: { code: 'io', details: { unavailable: true } } });
    expect(openPools().filter((p) => p.url.includes(':1/'))).toEqual([]);
  });

  it('a missing PostgreSQL ledger is not_found for a reader, which creates nothing', async () => {
    const db = pgLocation();
    expect(await handlers.audit({}, { db })).toMatchObject({ ok: false, error: { code: 'not_found' } });
    const schema = new URL(db).searchParams.get('schema');
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      expect((await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount).toBe(0);
    } finally {
      await c.end();
    }
  });
});

describe('the Lambda adapter on PostgreSQL', () => {
  it('keeps one pool across warm invocations', async () => {
    const db = pgLocation();
    const saved = process.env.CLOCKLEDGER_DB;
    process.env.CLOCKLEDGER_DB = db;
    try {
      const lambda = await import('../../handlers/lambda.js');
      const base = new URL(PG_URL);
      const mine = () => openPools().filter((p) => new URL(p.url).port === base.port);
      const before = mine().length;
      expect(await lambda.handler({ handler: 'createHost', request: { hostId: 'h', tscKhz: 3_000_000 } })).toMatchObject({ ok: true });
      const after1 = mine();
      expect(after1.length).toBe(Math.max(before, 1));
      const pool = after1[0]!.pool;
      const connections = pool.totalCount;
      expect(await lambda.createVm({ request: { vmId: 'v', hostId: 'h', vcpus: 1 } })).toMatchObject({ ok: true });
      expect(await lambda.handler({ handler: 'listVms' })).toMatchObject({ ok: true, vms: [{ vmId: 'v' }] });
      const after3 = mine();
      // the same pool object, no new connections for the warm invocations
      expect(after3.map((p) => p.pool)).toEqual([pool]);
      expect(pool.totalCount).toBe(connections);
    } finally {
      if (saved === undefined) delete process.env.CLOCKLEDGER_DB;
      else process.env.CLOCKLEDGER_DB = saved;
    }
  });
});
