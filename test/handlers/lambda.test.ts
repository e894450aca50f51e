// handlers/lambda called as the Lambda runtime calls it: handler(event, context) with the
// database from CLOCKLEDGER_DB; the API-Gateway-like body form; a named export per handler;
// every handler of the registry; every error code; idempotent retries by requestId.
import Database from 'better-sqlite3';
import type { Context } from 'aws-lambda';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { HANDLER_NAMES } from '../../handlers/index.js';
import * as lambda from '../../handlers/lambda.js';

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
    expect((await use('listVms', { hostId: 'dst' })).vms).toEqual([{ vmId: 'vm1.m1', hostId: 'dst', arch: 'x86', profile: 'linux-6.18', lifecycle: 'running', vcpus: 2, running: 2 }]);
    expect((await use('strategies')).strategies.map((s: any) => s.name)).toContain('qemu');
    expect((await use('profiles')).profiles.find((p: any) => p.name === 'linux-6.19').source).toContain('43ddbf16edf5');
    expect((await use('replay', { profile: 'linux-5.15', vmId: 'vm1' })).profile).toBe('linux-5.15');
    expect(typeof (await use('diff', { otherDb: forkDb })).eventsCompared).toBe('number');
    expect((await use('bisect', { profiles: ['linux-5.15', 'linux-6.18'], migrationId: 'm1' })).order).toEqual(['linux-5.15', 'linux-6.18']);
    expect((await use('bisectReleases', { migrationId: 'm1', releases: ['qemu@10.1', 'qemu@10.1+downtimeAccounting=true'] })).probes).toHaveLength(2);
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
    requestContext: { domainName, http: { method: 'POST', path: '/', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'curl' }, requestId: 'r2', routeKey: '$default', stage: '$default' },
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
    const url = (await handler(v2(JSON.stringify({ handler: 'destroyVm', request: { vmId: 'nope' } }), 'xyz.lambda-url.eu-west-1.on.aws'), context())) as Response;
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
    expect(await call('ioctl', { vmId: 'vm1', ioctl: 'KVM_NOPE' })).toMatchObject({ ok: false, error: { code: 'invalid_argument', details: { field: 'ioctl' } } });
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
