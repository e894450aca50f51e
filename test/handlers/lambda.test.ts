// handlers/lambda called as the Lambda runtime calls it: handler(event, context) with the
// database from CLOCKLEDGER_DB; the API-Gateway-like body form; a named export per handler;
// every handler of the registry; every error code; idempotent retries by requestId.
import Database from 'better-sqlite3';
import type { Context } from 'aws-lambda';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers, HANDLER_NAMES } from '../../handlers/index.js';
import * as lambda from '../../handlers/lambda.js';
import { MAX_RESPONSE_BYTES } from '../../handlers/limits.js';

const { handler, httpHandler, byName } = lambda;

let dir: string;
let db: string;
let savedDb: string | undefined;
let n = 0;

/** A minimal Context, as the Node.js runtime passes it. */
function context(): Context {
  n++;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'clockledger',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:clockledger',
    memoryLimitInMB: '512',
    awsRequestId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    logGroupName: '/aws/lambda/clockledger',
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'clockledger-lambda-test-'));
  db = join(dir, 'ledger.db');
  savedDb = process.env.CLOCKLEDGER_DB;
  process.env.CLOCKLEDGER_DB = db;
});
afterEach(() => {
  closeStores();
  if (savedDb === undefined) delete process.env.CLOCKLEDGER_DB;
  else process.env.CLOCKLEDGER_DB = savedDb;
  rmSync(dir, { recursive: true, force: true });
});

type Response = Record<string, any>;

async function call(name: string, request?: unknown): Promise<Response> {
  return (await handler(request === undefined ? { handler: name } : { handler: name, request }, context())) as Response;
}

async function ok(name: string, request?: unknown): Promise<Response> {
  const r = await call(name, request);
  if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
  return r;
}

async function lastPosition(): Promise<number> {
  return (await ok('events', { limit: 1 })).lastPosition as number;
}

async function hostsAndVm(): Promise<void> {
  await ok('createHost', { hostId: 'src', tscKhz: 2_500_000 });
  await ok('createHost', { hostId: 'dst', tscKhz: 2_500_000 });
  await ok('createVm', { vmId: 'vm1', hostId: 'src', vcpus: 2 });
  await ok('runVcpu', { vmId: 'vm1' });
}

describe('lambda handler: every handler of the registry', () => {
  it('runs a whole session with the database from CLOCKLEDGER_DB', async () => {
    const covered = new Set<string>();
    const use = async (name: string, request?: unknown) => {
      covered.add(name);
      return ok(name, request);
    };
    expect((await use('createHost', { hostId: 'src', tscKhz: 2_500_000 })).host.id).toBe('src');
    await use('createHost', { hostId: 'dst', tscKhz: 2_500_000, vendor: 'svm' });
    expect(existsSync(db)).toBe(true);
    expect((await use('createVm', { vmId: 'vm1', hostId: 'src', vcpus: 2 })).vm.vmId).toBe('vm1');
    expect((await use('runVcpu', { vmId: 'vm1' })).ret).toBe(0);
    await use('guest', { vmId: 'vm1', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
    expect((await use('advanceTime', { ns: '1000000000' })).now).toBe('1000000000');
    const kvmclock = await use('guest', { vmId: 'vm1', vcpu: 0, op: 'kvmclock' });
    expect(BigInt(kvmclock.value)).toBeGreaterThan(999_000_000n);
    const clock = await use('ioctl', { vmId: 'vm1', ioctl: 'KVM_GET_CLOCK' });
    expect(clock.ret).toBe(0);
    expect(clock.out.clock).toMatch(/^\d+$/);
    expect((await use('adjustRealtime', { hostId: 'src', stepNs: '-5000000' })).realtimeNs).toMatch(/^\d+$/);
    expect((await use('pauseVcpu', { vmId: 'vm1', vcpu: 1 })).paused).toEqual([1]);
    expect(await use('stateAt', { vmId: 'vm1', position: 5 })).toMatchObject({ streamId: 'vm-vm1', position: 5 });
    expect(await use('stateAt', { hostId: 'src', time: '500000000' })).toMatchObject({ streamId: 'host-src', at: '500000000' });
    const evs = await use('events', { streamId: 'vm-vm1' });
    expect(evs.events.map((e: any) => e.version)).toEqual(evs.events.map((_: unknown, i: number) => i + 1));
    expect((await use('verify')).intact).toBe(true);
    const forkDb = join(dir, 'fork.db');
    expect((await use('fork', { position: 10, targetDb: forkDb })).events).toBe(10);
    const m = await use('migrate', { vmId: 'vm1', toHost: 'dst', strategy: 'qemu', blackoutNs: '300000000' });
    // the guest recorded with the VM (now on vm1.m1), and its life across the migration
    expect((await use('configureGuest', { vmId: 'vm1.m1', guest: { ntp: { client: 'none' } } })).vmId).toBe('vm1.m1');
    expect((await use('timeline', { vmId: 'vm1' })).timeline.vmIds).toEqual(['vm1', 'vm1.m1']);
    expect(m).toMatchObject({ migrationId: 'm1', status: 'completed', newVmId: 'vm1.m1' });
    expect((await use('audit', { migrationId: 'm1' })).audit.strategy).toBe('qemu');
    expect((await use('audit')).audits).toHaveLength(1);
    const exported = await use('exportTrace', { id: 'm1', format: 'chrome-trace' });
    expect(exported.format).toBe('chrome-trace');
    expect(exported.trace.traceEvents.find((e: any) => e.name === 'blackout')).toMatchObject({ ph: 'X', ts: expect.any(Number), dur: 300_000, pid: 1, tid: 1 });
    expect((await call('exportTrace', { id: 'nope' })).error).toMatchObject({ code: 'not_found', details: { id: 'nope' } });
    expect((await call('exportTrace', { id: 'm1', format: 'pprof' })).error.code).toBe('invalid_request');
    expect(await use('report', { id: 'm1' })).toMatchObject({ format: 'html', kind: 'migration', html: expect.stringContaining('<h1>Migration m1 ') });
    expect((await use('listHosts')).hosts.map((h: any) => [h.hostId, h.tscKhz, h.vendor])).toEqual([
      ['dst', 2_500_000, 'svm'],
      ['src', 2_500_000, 'vmx'],
    ]);
    expect((await use('listVms', { hostId: 'dst' })).vms).toEqual([
      { vmId: 'vm1.m1', hostId: 'dst', arch: 'x86', profile: 'linux-6.18', lifecycle: 'running', vcpus: 2, running: 2 },
    ]);
    expect((await use('strategies')).strategies.map((s: any) => s.name)).toContain('qemu');
    expect((await use('profiles')).profiles.find((p: any) => p.name === 'linux-6.19').source).toContain('43ddbf16edf5');
    expect((await use('replay', { profile: 'linux-5.15', vmId: 'vm1' })).profile).toBe('linux-5.15');
    expect(typeof (await use('diff', { otherDb: forkDb })).eventsCompared).toBe('number');
    expect((await use('bisect', { profiles: ['linux-5.15', 'linux-6.18'], migrationId: 'm1' })).order).toEqual(['linux-5.15', 'linux-6.18']);
    expect((await use('bisectReleases', { migrationId: 'm1', releases: ['qemu@10.1', 'qemu@10.1+downtimeAccounting=true'] })).probes).toHaveLength(2);
    // a template of the guest, and a clone of it whose guest's line runs through the template's VM
    expect((await use('snapshot', { vmId: 'vm1.m1', strategy: 'firecracker', templateId: 'base' })).status).toBe('saved');
    expect((await use('clone', { templateId: 'base', toHost: 'src' })).clones.map((c: any) => [c.vmId, c.migrationId])).toEqual([['base.c1', 'm2']]);
    expect((await use('timeline', { vmId: 'base.c1' })).timeline.vmIds).toEqual(['vm1', 'vm1.m1', 'base.c1']);
    expect((await use('destroyVm', { vmId: 'vm1.m1' })).vm.lifecycle).toBe('destroyed');
    // a host trace, sent as text (a path is refused behind the adapter)
    const capture = ['# tracer: nop', '      CPU 0/KVM-4243    [001] .....   100.000001: kvm_write_tsc_offset: vcpu=0 prev=0 next=18446735073709551616'];
    const imported = await use('importTrace', { text: capture });
    expect(imported).toMatchObject({ traceId: 't1', events: 1, ignored: 0 });
    expect((await use('auditTrace', { traceId: 't1' })).report.vms[0].vcpus[0].tscOffsetSigned).toBe('-9000000000000');
    const conf = await use('conformance', { traceId: 't1', strategy: 'qemu', profile: 'linux-6.18', guestTscHz: '2000000000' });
    expect([conf.conforms, conf.compared.agreedWrites, conf.firstDifference.afterLine]).toEqual([false, 1, 2]);
    expect((await call('importTrace', { path: '/etc/hostname' })).error.code).toBe('invalid_request');
    const demo = await use('demo', { strategies: ['qemu'] });
    expect(demo.table.rows).toHaveLength(1);
    expect(demo.audits).toHaveLength(1);
    // the fleet safety matrix of the ledger's hosts (src, dst and the demo's two: 16 pairs), recorded;
    // a cell run again from the record; no reports directory behind the adapter
    const mx = await use('matrix', { fleet: true, strategies: ['qemu'], blackoutsNs: ['300000000'], workers: 1 });
    expect([mx.matrixId, mx.cells.length]).toEqual(['x1', 16]);
    expect((await use('matrixCell', { matrixId: 'x1', cell: 1 })).same).toBe(true);
    const reports = await call('matrix', { fleet: true, strategies: ['qemu'], blackoutsNs: ['300000000'], reportsDir: join(dir, 'r') });
    expect(reports.error).toMatchObject({ code: 'invalid_request', details: { field: 'reportsDir' } });
    expect([...covered].sort()).toEqual([...HANDLER_NAMES].sort());
  });

  it('has a named export per handler, taking { request } or the request itself', async () => {
    expect(Object.keys(byName).sort()).toEqual([...HANDLER_NAMES].sort());
    for (const name of HANDLER_NAMES) expect(typeof (lambda as Record<string, unknown>)[name], name).toBe('function');
    expect((await lambda.createHost({ request: { hostId: 'h1', tscKhz: 1_000_000 } }, context())).ok).toBe(true);
    expect((await lambda.createHost({ hostId: 'h2', tscKhz: 1_000_000 }, context())).ok).toBe(true);
    const r = (await byName.events!({ request: { streamId: 'host-h2' } }, context())) as Response;
    expect(r.events).toHaveLength(1);
    const e = (await lambda.strategies({}, context())) as Response;
    expect(e.ok).toBe(true);
  });

  it('accepts an API-Gateway-like event whose JSON body is { handler, request } (plain or base64)', async () => {
    const body = JSON.stringify({ handler: 'createHost', request: { hostId: 'h1', tscKhz: 2_000_000 } });
    const r = (await handler({ body }, context())) as Response;
    expect(r.ok).toBe(true);
    expect(r.host.id).toBe('h1');
    const b64 = Buffer.from(JSON.stringify({ handler: 'events', request: { limit: 5 } })).toString('base64');
    const e = (await handler({ body: b64, isBase64Encoded: true }, context())) as Response;
    expect(e.events).toHaveLength(1);
    const http = await httpHandler({ body: JSON.stringify({ handler: 'verify' }) }, context());
    expect(http.statusCode).toBe(200);
    expect(JSON.parse(http.body)).toMatchObject({ ok: true, intact: true });
    const missing = await httpHandler({ body: JSON.stringify({ handler: 'destroyVm', request: { vmId: 'nope' } }) }, context());
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(missing.body).error.code).toBe('not_found');
  });
});

describe('lambda handler: API Gateway and function URL proxy events', () => {
  const v1 = (body: string, extra: Record<string, unknown> = {}) => ({
    resource: '/',
    path: '/',
    httpMethod: 'POST',
    headers: { 'content-type': 'application/json' },
    multiValueHeaders: {},
    queryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: { resourcePath: '/', httpMethod: 'POST', stage: 'prod', requestId: 'r1' },
    body,
    isBase64Encoded: false,
    ...extra,
  });
  const v2 = (body: string, domainName = 'abc.execute-api.eu-west-1.amazonaws.com') => ({
    version: '2.0',
    routeKey: '$default',
    rawPath: '/',
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: {
      domainName,
      http: { method: 'POST', path: '/', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'curl' },
      requestId: 'r2',
      routeKey: '$default',
      stage: '$default',
    },
    body,
    isBase64Encoded: false,
  });

  it('answers REST (v1), HTTP API (v2) and function URL events as { statusCode, headers, body }, the status from the error code', async () => {
    const create = JSON.stringify({ handler: 'createHost', request: { hostId: 'h1', tscKhz: 2_000_000 } });
    const a = (await handler(v1(create), context())) as Response;
    expect(a.statusCode).toBe(200);
    expect(a.headers).toEqual({ 'content-type': 'application/json' });
    expect(JSON.parse(a.body)).toMatchObject({ ok: true, host: { id: 'h1' } });
    const again = (await handler(v2(create), context())) as Response;
    expect(again.statusCode).toBe(409);
    expect(JSON.parse(again.body).error.code).toBe('conflict');
    const url = (await handler(
      v2(JSON.stringify({ handler: 'destroyVm', request: { vmId: 'nope' } }), 'xyz.lambda-url.eu-west-1.on.aws'),
      context(),
    )) as Response;
    expect(url.statusCode).toBe(404);
    expect(JSON.parse(url.body).error.code).toBe('not_found');
    const bad = (await handler(v1('{nope'), context())) as Response;
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body).error.message).toMatch(/^malformed JSON/);
    const b64 = (await handler(v1(Buffer.from(JSON.stringify({ handler: 'verify' })).toString('base64'), { isBase64Encoded: true }), context())) as Response;
    expect(b64.statusCode).toBe(200);
    expect(JSON.parse(b64.body)).toMatchObject({ ok: true, intact: true });
    // a direct invocation is answered as before
    expect(await handler({ handler: 'verify' }, context())).toMatchObject({ ok: true, intact: true });
  });
});

describe('lambda handler: errors', () => {
  it('malformed body JSON → invalid_request; unknown or missing handler; never throws', async () => {
    const bad = (await handler({ body: '{"handler": "events",' }, context())) as Response;
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(bad.error.message).toMatch(/^malformed JSON: /);
    expect((await httpHandler({ body: '{nope' }, context())).statusCode).toBe(400);

    for (const name of ['nope', 'toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const r = (await handler({ handler: name, request: {} }, context())) as Response;
      expect(r, name).toMatchObject({ ok: false, error: { code: 'unknown_handler' } });
    }
    for (const event of [undefined, null, 'createHost', 42, [], {}, { handler: 5 }, { request: {} }]) {
      const r = (await handler(event, context())) as Response;
      expect(r.ok, JSON.stringify(event)).toBe(false);
      expect(r.error.code).toBe('invalid_request');
    }
    // none of these created the database
    expect(existsSync(db)).toBe(false);
  });

  it('maps every handler error to its code: not_found, invalid_request (naming the field), invalid_argument, invalid_state, conflict', async () => {
    await hostsAndVm();
    await ok('pauseVcpu', { vmId: 'vm1', vcpu: 1 });
    const before = await lastPosition();
    expect(await call('destroyVm', { vmId: 'nope' })).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(await call('stateAt', { migrationId: 'm9' })).toMatchObject({ ok: false, error: { code: 'not_found' } });
    const wrong = await call('createVm', { vmId: 5, hostId: 'src' });
    expect(wrong).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { field: 'vmId' } } });
    expect(wrong.error.message).toContain('vmId');
    const u64 = await call('advanceTime', { ns: 'soon' });
    expect(u64).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { field: 'ns' } } });
    expect(await call('ioctl', { vmId: 'vm1', ioctl: 'KVM_NOPE' })).toMatchObject({
      ok: false,
      error: { code: 'invalid_argument', details: { field: 'ioctl' } },
    });
    expect(await call('guest', { vmId: 'vm1', vcpu: 1, op: 'rdtsc' })).toMatchObject({ ok: false, error: { code: 'invalid_state' } });
    expect(await call('createHost', { hostId: 'src', tscKhz: 2_500_000 })).toMatchObject({ ok: false, error: { code: 'conflict' } });
    // a kernel refusal is not a handler error
    const refused = await call('ioctl', { vmId: 'vm1', ioctl: 'KVM_SET_TSC_KHZ', arg: 2_000_000 });
    expect(refused).toMatchObject({ ok: true, ret: -1, errno: expect.any(String) });
    // refused requests wrote nothing (the kernel refusal is recorded: one event)
    expect(await lastPosition()).toBe(before + 1);
  });

  it('a database with a newer schema (user_version 999) → schema_too_new', async () => {
    const newer = new Database(db);
    newer.pragma('user_version = 999');
    newer.close();
    expect(await call('events')).toMatchObject({ ok: false, error: { code: 'schema_too_new' } });
    expect(await call('createHost', { hostId: 'h', tscKhz: 2_500_000 })).toMatchObject({ ok: false, error: { code: 'schema_too_new' } });
  });
});

describe('lambda handler: idempotency', () => {
  it('the same request with the same requestId twice returns the identical response and records one event', async () => {
    await hostsAndVm();
    const start = await lastPosition();
    const req = { vmId: 'vm1', vcpu: 0, ioctl: 'KVM_GET_CLOCK', requestId: 'retry-1' };
    const first = await ok('ioctl', req);
    expect(await lastPosition()).toBe(start + 1);
    const again = await ok('ioctl', req);
    expect(again).toEqual(first);
    expect(await lastPosition()).toBe(start + 1);

    const t1 = await ok('advanceTime', { ns: '1000', requestId: 'retry-2' });
    const t2 = await ok('advanceTime', { ns: '1000', requestId: 'retry-2' });
    expect(t2).toEqual(t1);
    expect(await lastPosition()).toBe(start + 2);
    // a new requestId is a new request
    const t3 = await ok('advanceTime', { ns: '1000', requestId: 'retry-3' });
    expect(BigInt(t3.now)).toBe(BigInt(t1.now) + 1000n);
  });
});

describe('lambda handler: every path or URL in a request is confined (CLOCKLEDGER_FORK_DIR)', () => {
  let forks: string;
  let savedForkDir: string | undefined;
  beforeEach(() => {
    forks = join(dir, 'forks');
    mkdirSync(forks);
    savedForkDir = process.env.CLOCKLEDGER_FORK_DIR;
    process.env.CLOCKLEDGER_FORK_DIR = forks;
  });
  afterEach(() => {
    if (savedForkDir === undefined) delete process.env.CLOCKLEDGER_FORK_DIR;
    else process.env.CLOCKLEDGER_FORK_DIR = savedForkDir;
  });

  /** A ledger of someone else's, outside the fork directory, in WAL mode and closed (nothing beside it). */
  async function secretLedger(): Promise<string> {
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    const secret = join(elsewhere, 'secret.db');
    expect((await handlers.createHost({ hostId: 'private', tscKhz: 2_000_000 }, { db: secret })).ok).toBe(true);
    closeStores();
    expect(readdirSync(elsewhere)).toEqual(['secret.db']);
    return secret;
  }

  it('diff.otherDb outside the fork directory is invalid_request whatever is there: nothing read, created or revealed', async () => {
    await ok('createHost', { hostId: 'src', tscKhz: 2_500_000 });
    const secret = await secretLedger();
    const answers: Response[] = [];
    for (const otherDb of [secret, '../elsewhere/secret.db', '/etc/passwd', join(dir, 'elsewhere', 'missing.db'), '/nonexistent/x.db']) {
      const r = await call('diff', { otherDb });
      expect(r, otherDb).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { field: 'otherDb', forkDir: forks } } });
      expect(r.error.message, otherDb).toMatch(/^otherDb: '.*' is outside the fork directory /);
      answers.push(r);
    }
    // an existing ledger, a file that is no ledger and a missing file get the same answer
    expect(new Set(answers.map((a) => a.error.message.replace(/'[^']*'/, "'…'"))).size).toBe(1);
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual(['secret.db']);
    // a symbolic link inside the fork directory to the ledger outside it
    symlinkSync(secret, join(forks, 'link.db'));
    expect(await call('diff', { otherDb: 'link.db' })).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { field: 'otherDb' } } });
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual(['secret.db']);
  });

  it('diff.otherDb: a postgres:// URL when the ledger is a file, and any other URL, is invalid_request without connecting', async () => {
    await ok('createHost', { hostId: 'src', tscKhz: 2_500_000 });
    const urls = [
      'postgres://attacker@127.0.0.1:1/db',
      'postgresql://u:p@10.255.255.1:5432/x?schema=s',
      'mysql://u@h/db',
      'file:secret.db?mode=ro',
      ':memory:',
    ];
    for (const otherDb of urls) {
      const t0 = performance.now();
      const r = await call('diff', { otherDb });
      expect(r, otherDb).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { field: 'otherDb' } } });
      expect(performance.now() - t0).toBeLessThan(500);
    }
    expect(readdirSync(forks)).toEqual([]);
  });

  it('diff.otherDb inside the fork directory (relative to it) is read', async () => {
    await hostsAndVm();
    expect((await ok('fork', { position: 3, targetDb: 'w.db' })).targetDb).toBe(join(forks, 'w.db'));
    expect(await ok('diff', { otherDb: 'w.db' })).toMatchObject({ ok: true, eventsCompared: expect.any(Number) });
    expect((await call('diff', { otherDb: 'none.db' })).error).toMatchObject({ code: 'not_found' });
  });

  it('fork refuses :memory:, a file: URI and URLs (as docs/guide.md says) and makes no file of that name', async () => {
    await ok('createHost', { hostId: 'src', tscKhz: 2_500_000 });
    for (const targetDb of [':memory:', 'file:x.db?mode=rwc', 'FILE:y.db', 'postgres://u@h/db?schema=s', 'sqlite://z.db']) {
      const r = await call('fork', { position: 1, targetDb });
      expect(r, targetDb).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { field: 'targetDb', targetDb } } });
    }
    expect(readdirSync(forks)).toEqual([]);
    expect(readdirSync(dir).filter((f) => f !== 'forks' && !f.startsWith('ledger.db'))).toEqual([]);
  });

  it("demo's reports and the scratch logs of bisectReleases and conformance are made inside the fork directory, not the system's temp directory", async () => {
    const savedTmp = process.env.TMPDIR;
    // nothing may be made in the temp directory: it does not exist
    process.env.TMPDIR = join(dir, 'no-tmp');
    try {
      const demo = await ok('demo', { strategies: ['qemu'] });
      expect(demo.reports.dir).toBe(join(forks, 'ledger-reports'));
      expect(demo.reports.files.every((f: string) => f.startsWith(`${forks}/`))).toBe(true);
      const m = demo.migrations[0];
      expect((await ok('bisectReleases', { migrationId: m, releases: ['qemu@10.1', 'qemu@10.1+downtimeAccounting=true'] })).probes).toHaveLength(2);
      const capture = ['# tracer: nop', '      CPU 0/KVM-4243    [001] .....   100.000001: kvm_write_tsc_offset: vcpu=0 prev=0 next=18446735073709551616'];
      await ok('importTrace', { text: capture });
      expect((await ok('conformance', { traceId: 't1', strategy: 'qemu', profile: 'linux-6.18', guestTscHz: '2000000000' })).conforms).toBe(false);
      // the scratch directories are gone again
      expect(readdirSync(forks)).toEqual(['ledger-reports']);
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    }
  });
});

describe("lambda handler: Lambda's 6 MB response limit", () => {
  let savedMax: string | undefined;
  beforeEach(() => {
    savedMax = process.env.CLOCKLEDGER_MAX_RESPONSE_BYTES;
    delete process.env.CLOCKLEDGER_MAX_RESPONSE_BYTES;
  });
  afterEach(() => {
    if (savedMax === undefined) delete process.env.CLOCKLEDGER_MAX_RESPONSE_BYTES;
    else process.env.CLOCKLEDGER_MAX_RESPONSE_BYTES = savedMax;
  });
  const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

  it('an answer beyond 6 MiB of JSON is response_too_large with its size and how to page, not a payload Lambda refuses', async () => {
    expect(MAX_RESPONSE_BYTES).toBe(6 * 1024 * 1024);
    // five VMs of 1024 vCPUs, each created, run, paused and run again: over 20 000 events
    await ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    for (const vmId of ['a', 'b', 'c', 'd', 'e']) {
      await ok('createVm', { vmId, hostId: 'h', vcpus: 1024 });
      await ok('runVcpu', { vmId });
      await ok('pauseVcpu', { vmId });
      await ok('runVcpu', { vmId });
    }
    // the library answers in full; the same answer through Lambda would exceed the limit
    const full = await (handlers.events as (r: unknown, c: unknown) => Promise<Response>)({ limit: 100_000 }, { db });
    expect(full.ok).toBe(true);
    const size = bytes(full);
    expect(size).toBeGreaterThan(MAX_RESPONSE_BYTES);

    const r = await call('events', { limit: 100_000 });
    expect(r.ok).toBe(false);
    expect(r.error).toMatchObject({
      code: 'response_too_large',
      details: { bytes: size, max: MAX_RESPONSE_BYTES, limit: 'MAX_RESPONSE_BYTES', handler: 'events', recorded: false },
    });
    expect(r.error.message).toBe(
      `events: the answer is ${size} bytes of JSON, more than the ${MAX_RESPONSE_BYTES} a Lambda response may carry; ` +
        'page it: ask for fewer events (limit, or last) and go on after the last position answered (from).',
    );
    expect(bytes(r)).toBeLessThan(2048);
    // paged as the hint says, every page fits and together they are the whole answer
    const pages: Response[] = [];
    for (let from = 1; ; ) {
      const p = await ok('events', { from, limit: 10_000 });
      expect(bytes(p)).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
      pages.push(...p.events);
      if (p.events.length < 10_000) break;
      from = p.events.at(-1).position + 1;
    }
    expect(pages).toEqual(full.events);

    // behind API Gateway the proxy response is measured (its body escaped inside it) and answered 422
    const http = await httpHandler({ body: JSON.stringify({ handler: 'events', request: { limit: 100_000 } }) }, context());
    expect(http.statusCode).toBe(422);
    const body = JSON.parse(http.body);
    expect(body.error.code).toBe('response_too_large');
    expect(body.error.details.bytes).toBe(bytes({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(full) }));
  }, 120_000);

  it('CLOCKLEDGER_MAX_RESPONSE_BYTES sets another bound; a write beyond it is carried out and says so; a bound that is not one runs nothing', async () => {
    process.env.CLOCKLEDGER_MAX_RESPONSE_BYTES = '2048';
    await ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    // the VM with its 16 vCPUs is more than 2048 bytes of JSON
    const w = await call('createVm', { vmId: 'big', hostId: 'h', vcpus: 16 });
    expect(w.error).toMatchObject({ code: 'response_too_large', details: { max: 2048, handler: 'createVm', recorded: true } });
    expect(w.error.message).toMatch(/The request was carried out: what it recorded is in the log \(read it with events\)\.$/);
    expect((await ok('listVms')).vms.map((v: any) => [v.vmId, v.vcpus])).toEqual([['big', 16]]);
    // a named export is held to it too
    const named = (await byName.listVms({ request: {} })) as Response;
    expect(named.ok).toBe(true);
    const ev = (await byName.events({ request: { limit: 1000 } })) as Response;
    expect(ev.error).toMatchObject({ code: 'response_too_large', details: { handler: 'events', max: 2048 } });

    for (const bad of ['abc', '1023', '-5', '6e6']) {
      process.env.CLOCKLEDGER_MAX_RESPONSE_BYTES = bad;
      const before = (await (handlers.events as (r: unknown, c: unknown) => Promise<Response>)({ limit: 1 }, { db })).lastPosition;
      const r = await call('createHost', { hostId: `x${bad}`, tscKhz: 3_000_000 });
      expect(r.error, bad).toMatchObject({ code: 'internal', details: { variable: 'CLOCKLEDGER_MAX_RESPONSE_BYTES' } });
      expect(r.error.message).toContain('is not a number of bytes of at least 1024');
      expect((await (handlers.events as (r: unknown, c: unknown) => Promise<Response>)({ limit: 1 }, { db })).lastPosition).toBe(before);
    }
  });
});
