// Hostile values: requests far beyond any real one (megabyte strings, deep nesting, arguments an
// ioctl does not take, oversized option values) are refused quickly, with a short message and a
// stable code, before anything is written; an over-deep event already in a log still reads.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { handler as lambdaHandler } from '../../handlers/lambda.js';
import { MAX_DEPTH, MAX_LIST_ITEMS, MAX_OBJECT_KEYS, MAX_OPTION_LENGTH, MAX_REQUEST_BYTES, MAX_SHOWN_DEPTH, MAX_STRING_LENGTH } from '../../handlers/limits.js';
import { MAX_ISSUES } from '../../handlers/errors.js';
import { handlers, HANDLER_NAMES } from '../../handlers/index.js';
import { jsonTextDeep, toJson, toSortedJson } from '../../machines/codec.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '../../dist/handlers/cli/main.js');
const MB2 = 2 << 20;

let L: Ledger;
beforeEach(() => {
  L = newLedger();
});
afterEach(() => L.cleanup());

/** A value nested `n` arrays deep around 1. */
function nested(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

async function lastPosition(): Promise<number> {
  return (await L.ok('events', { limit: 1 })).lastPosition as number;
}

async function x86Vm(): Promise<void> {
  await L.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
  await L.ok('createVm', { vmId: 'web', hostId: 'src', vcpus: 1 });
}

/** Call, time it, and insist it was refused with this code, quickly and with a short message. */
async function refused(name: Parameters<Ledger['call']>[0], request: Record<string, unknown>, code: string) {
  const t0 = performance.now();
  const r = await L.call(name, request);
  const ms = performance.now() - t0;
  expect(r.ok).toBe(false);
  expect(r.error.code).toBe(code);
  expect(JSON.stringify(r).length, JSON.stringify(r).slice(0, 300)).toBeLessThan(600);
  expect(ms).toBeLessThan(500);
  return r.error as { code: string; message: string; details: Record<string, any> };
}

describe('size bounds (checked before parsing)', () => {
  it('a 2 MB decimal string is refused at once, naming the field, quoting 64 characters of it', async () => {
    await x86Vm();
    const before = await lastPosition();
    const e = await refused('advanceTime', { ns: '9'.repeat(MB2) }, 'invalid_request');
    expect(e.details).toEqual({ field: 'ns', limit: 'MAX_STRING_LENGTH', max: MAX_STRING_LENGTH });
    expect(e.message).toBe(`ns: a string of ${MB2} characters is longer than the 4096 allowed ('${'9'.repeat(64)}…' (${MB2} characters))`);
    // inside an ioctl argument, where the kernel's u64 parser used to convert and echo it whole
    const e2 = await refused('ioctl', { vmId: 'web', ioctl: 'KVM_SET_CLOCK', arg: { clock: '9'.repeat(MB2) } }, 'invalid_request');
    expect(e2.details.field).toBe('arg.clock');
    expect(await lastPosition()).toBe(before);
  });

  it('a u64 string within the string bound but wider than 64 bits is refused without converting it, quoting a prefix', async () => {
    await x86Vm();
    const r = await L.call('ioctl', { vmId: 'web', ioctl: 'KVM_SET_CLOCK', arg: { clock: '7'.repeat(4000) } });
    expect(r.error).toEqual({
      code: 'invalid_argument',
      message: `arg.clock: '${'7'.repeat(64)}…' (4000 characters) does not fit in 64 bits`,
      details: { field: 'arg.clock' },
    });
    expect((await L.call('ioctl', { vmId: 'web', ioctl: 'KVM_SET_CLOCK', arg: { clock: '18446744073709551616' } })).error.message).toBe(
      'arg.clock: 18446744073709551616 does not fit in 64 bits',
    );
    // the widest u64 still parses
    expect((await L.ok('ioctl', { vmId: 'web', ioctl: 'KVM_SET_CLOCK', arg: { clock: '18446744073709551615' } })).ret).toBe(0);
  });

  it('a request over MAX_REQUEST_BYTES is refused as a whole (300 strings of 4,000 characters)', async () => {
    const e = await refused('advanceTime', { requestId: 'x', ns: '1', padding: Array.from({ length: 300 }, () => 'x'.repeat(4000)) }, 'invalid_request');
    expect(e.details).toEqual({ field: '(request)', limit: 'MAX_REQUEST_BYTES', max: MAX_REQUEST_BYTES });
  });

  it('the Lambda adapter refuses a 2 MB body before JSON.parse, plain or base64', async () => {
    const body = JSON.stringify({ handler: 'advanceTime', request: { ns: '9'.repeat(MB2) } });
    for (const event of [{ body }, { body: Buffer.from(body).toString('base64'), isBase64Encoded: true }]) {
      const r = (await lambdaHandler(event)) as Record<string, any>;
      expect(r.ok).toBe(false);
      expect(r.error.code).toBe('invalid_request');
      expect(r.error.details).toMatchObject({ field: '(request)', limit: 'MAX_REQUEST_BYTES', max: MAX_REQUEST_BYTES, source: 'the event body' });
      expect(r.error.details.bytes).toBeGreaterThan(MAX_REQUEST_BYTES);
      expect(JSON.stringify(r).length).toBeLessThan(400);
    }
    // and a 2 MB handler name is not echoed back
    const r = (await lambdaHandler({ handler: 'h'.repeat(MB2) })) as Record<string, any>;
    expect(r.error.code).toBe('unknown_handler');
    expect(r.error.message).toBe(`no handler '${'h'.repeat(64)}…' (${MB2} characters)`);
    expect(JSON.stringify(r).length).toBeLessThan(1000);
  });

  it('`clockledger invoke` stops reading stdin past MAX_REQUEST_BYTES: exit 2, a short message', async () => {
    const input = JSON.stringify({ ns: '9'.repeat(MB2) });
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [MAIN, 'invoke', 'advanceTime', '--db', join(L.dir, 'cli.db')], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.stdin.on('error', () => undefined); // the CLI may stop reading before all is written
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out.error.code).toBe('invalid_request');
    expect(out.error.details).toMatchObject({ field: '(request)', limit: 'MAX_REQUEST_BYTES' });
    expect(r.stdout.length + r.stderr.length).toBeLessThan(800);
  });

  it('an argument to an ioctl that takes none is refused and nothing is recorded', async () => {
    await x86Vm();
    const before = await lastPosition();
    for (const [ioctl, vcpu, arg] of [
      ['KVM_GET_CLOCK', undefined, 'x'.repeat(1000)],
      ['KVM_RUN', 0, { a: 1 }],
      ['KVM_GET_TSC_KHZ', undefined, 5],
      ['KVM_KVMCLOCK_CTRL', 0, 'x'],
    ] as const) {
      const e = await refused('ioctl', { vmId: 'web', vcpu, ioctl, arg }, 'invalid_argument');
      expect(e.details).toEqual({ field: 'arg' });
      expect(e.message.startsWith(`arg: ${ioctl} takes no argument`)).toBe(true);
    }
    expect(await lastPosition()).toBe(before);
    // by request number as well (KVM_GET_CLOCK is _IOR(KVMIO, 0x7c, struct kvm_clock_data): 0x8030ae7c)
    await refused('ioctl', { vmId: 'web', ioctl: 0x8030ae7c, arg: 'x' }, 'invalid_argument');
    // without one (or null), they run as before
    expect((await L.ok('ioctl', { vmId: 'web', ioctl: 'KVM_GET_CLOCK' })).ret).toBe(0);
    expect((await L.ok('ioctl', { vmId: 'web', ioctl: 'KVM_GET_CLOCK', arg: null })).ret).toBe(0);
    expect((await L.ok('ioctl', { vmId: 'web', ioctl: 'KVM_GET_TSC_KHZ' })).ret).toBe(3_000_000);
  });

  it('migrate.options: a value over MAX_OPTION_LENGTH, or too many entries, is refused before the migration runs', async () => {
    await x86Vm();
    await L.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000 });
    const before = await lastPosition();
    const base = { vmId: 'web', toHost: 'dst', strategy: 'qemu', blackoutNs: '1000000' };
    const e = await refused('migrate', { ...base, options: { note: 'n'.repeat(MAX_OPTION_LENGTH + 1) } }, 'invalid_request');
    expect(e.details.field).toBe('options.note');
    const e2 = await refused('migrate', { ...base, options: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`o${i}`, true])) }, 'invalid_request');
    expect(e2.details.field).toBe('options');
    expect(await lastPosition()).toBe(before);
  });
});

describe('deep nesting', () => {
  it('an ioctl argument nested 1,936 deep is refused before anything is written', async () => {
    await x86Vm();
    const before = await lastPosition();
    const e = await refused('ioctl', { vmId: 'web', ioctl: 'KVM_SET_CLOCK', arg: nested(1936) }, 'invalid_request');
    expect(e.details.limit).toBe('MAX_DEPTH');
    expect(e.details.max).toBe(MAX_DEPTH);
    expect(e.details.field).toBe(`arg${'.0'.repeat(MAX_DEPTH - 1)}`);
    // guest values too
    await refused('guest', { vmId: 'web', vcpu: 0, op: 'rdtsc', value: nested(100) }, 'invalid_request');
    expect(await lastPosition()).toBe(before);
    // the deepest real request (4 levels) is well inside
    expect((await L.ok('ioctl', { vmId: 'web', vcpu: 0, ioctl: 'KVM_SET_MSRS', arg: { entries: [{ index: 'MSR_IA32_TSC', data: '5' }] } })).ret).toBe(1);
  });

  it('an over-deep event already in the log: events reads the whole range, that event marked with its JSON text', async () => {
    await x86Vm();
    // as a warm process once wrote it: an IoctlIssued event whose argument nests 1,936 deep
    const store = storeFor({ db: L.db });
    const data = {
      arg: nested(1936),
      hw: { rawNs: '0', realNs: '0', tsc: '0' },
      ioctl: 'KVM_GET_CLOCK',
      out: { clock: '0', flags: 0, host_tsc: '0', realtime: '0' },
      ret: 0,
      vcpu: null,
    };
    store.commit([
      {
        streamId: 'vm-web',
        expectedVersion: store.streamVersion('vm-web'),
        events: [{ type: 'IoctlIssued', time: 0n, data, metadata: { profile: 'linux-6.18' }, canonical: true }],
      },
    ]);
    const deepPos = store.lastPosition();
    // and one inside the shown depth: returned as it is
    const data2 = { ...data, arg: nested(MAX_SHOWN_DEPTH - 2) };
    store.commit([
      {
        streamId: 'vm-web',
        expectedVersion: store.streamVersion('vm-web'),
        events: [{ type: 'IoctlIssued', time: 0n, data: data2, metadata: { profile: 'linux-6.18' }, canonical: true }],
      },
    ]);
    await L.ok('ioctl', { vmId: 'web', ioctl: 'KVM_GET_CLOCK' });

    const r = await L.ok('events', {});
    expect(r.events.map((e: any) => e.position)).toEqual(Array.from({ length: deepPos + 2 }, (_, i) => i + 1));
    const deep = r.events[deepPos - 1];
    expect(deep.type).toBe('IoctlIssued');
    expect(deep.data).toBeNull();
    expect(deep.dataTooDeep.depth).toBe(1937);
    const db = new Database(L.db, { readonly: true });
    const stored = db.prepare('SELECT data FROM events WHERE position = ?').pluck().get(deepPos) as string;
    db.close();
    expect(deep.dataTooDeep.json).toBe(stored);
    expect(r.events[deepPos].data.arg).toEqual(nested(MAX_SHOWN_DEPTH - 2));
    expect(r.events[deepPos + 1].data.ioctl).toBe('KVM_GET_CLOCK');
    // the stream still rebuilds, and the VM still takes ioctls
    expect((await L.ok('stateAt', { vmId: 'web' })).version).toBe(5);
  });

  it('the codecs copy and write any depth without the call stack', () => {
    const v = { a: nested(100_000), b: 2n };
    const copy = toJson(v) as { a: unknown; b: string };
    expect(copy.b).toBe('2');
    const sorted = toSortedJson({ z: 1, a: nested(100_000) }) as Record<string, unknown>;
    expect(Object.keys(sorted)).toEqual(['a', 'z']);
    const text = jsonTextDeep(copy.a as never);
    expect(text.length).toBe(200_001);
    expect(text.startsWith('[[[') && text.endsWith(']]]') && text[100_000]).toBe('1');
    expect(jsonTextDeep({ k: [1, 'x"y', null, true, { n: -1.5 }] })).toBe(JSON.stringify({ k: [1, 'x"y', null, true, { n: -1.5 }] }));
    // past the recursive part: keys still sorted, bigints written, undefined fields dropped
    let o: Record<string, unknown> = { z: 9n, a: 'leaf' };
    for (let i = 0; i < 500; i++) o = { z: o, u: undefined, a: i };
    let c = toSortedJson(o) as Record<string, unknown>;
    for (let i = 0; i < 500; i++) {
      expect(Object.keys(c)).toEqual(['a', 'z']);
      expect(c.a).toBe(499 - i);
      c = c.z as Record<string, unknown>;
    }
    expect(c).toEqual({ a: 'leaf', z: '9' });
    expect(Object.keys(c)).toEqual(['a', 'z']);
  });
});

describe('codes that say what was wrong', () => {
  it('an arm64 host with cntfrqHz 0 is invalid_request on cntfrqHz, not internal, and records nothing', async () => {
    for (const cntfrqHz of ['0', 0]) {
      const r = await L.call('createHost', { hostId: 'a', arch: 'arm64', cntfrqHz });
      expect(r.error).toMatchObject({ code: 'invalid_request', message: 'cntfrqHz: a frequency in Hz above 0', details: { field: 'cntfrqHz' } });
    }
    // refused before the log is opened: no ledger was even created
    expect((await L.call('events', { limit: 1 })).error).toMatchObject({ code: 'not_found' });
    expect((await L.ok('createHost', { hostId: 'a', arch: 'arm64', cntfrqHz: '1' })).host.counterHz).toBe('1');
  });
});

describe('error replies stay small, and oversize lists are refused before per-element work', () => {
  /** A refusal measured: its code, its JSON size and how long it took. */
  async function measured(name: Parameters<Ledger['call']>[0], request: Record<string, unknown>) {
    const t0 = performance.now();
    const r = await L.call(name, request);
    return { r, bytes: JSON.stringify(r).length, ms: performance.now() - t0 };
  }

  it('demo with 200,000 strategies (800 KB) and bisect with as many profiles answer a few hundred bytes (42 MB and 33 MB before)', async () => {
    for (const [name, field] of [
      ['demo', 'strategies'],
      ['bisect', 'profiles'],
    ] as const) {
      const { r, bytes, ms } = await measured(name, { [field]: Array(200_000).fill('x') });
      expect(r.error, name).toMatchObject({ code: 'invalid_request', details: { field, issueCount: 1 } });
      expect(r.error.message).toBe(`${field}: Too big: expected array to have <=${MAX_LIST_ITEMS} items`);
      expect(bytes).toBeLessThan(1000);
      expect(ms).toBeLessThan(1500);
    }
  });

  it('importTrace.vms with 95,000 keys is refused by MAX_OBJECT_KEYS before any is checked (5.2 MB of issues before)', async () => {
    const vms = Object.fromEntries(Array.from({ length: 95_000 }, (_, i) => [String(i), '']));
    const { r, bytes } = await measured('importTrace', { text: 'x', vms });
    expect(r.error).toMatchObject({ code: 'invalid_request', details: { field: 'vms', limit: 'MAX_OBJECT_KEYS', max: MAX_OBJECT_KEYS } });
    expect(bytes).toBeLessThan(600);
  });

  it(`a schema error lists its first ${MAX_ISSUES} issues and counts them all; a long issue message is cut`, async () => {
    // 4,000 VM names the schema refuses: 4,000 issues
    const vms = Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [String(i), '']));
    const { r, bytes } = await measured('importTrace', { text: 'x', vms });
    expect(r.error.code).toBe('invalid_request');
    expect(r.error.details.issueCount).toBe(4000);
    expect(r.error.details.issues).toHaveLength(MAX_ISSUES);
    expect(r.error.details.issues[0].path).toBe('vms.0');
    expect(bytes).toBeLessThan(3000);
    // 4,000 unknown fields: one issue naming them all, cut
    const unknown = Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`field${i}`, 1]));
    const u = await measured('createHost', { hostId: 'h', tscKhz: 3_000_000, ...unknown });
    expect(u.r.error.code).toBe('invalid_request');
    expect(u.r.error.message).toMatch(/^\(request\): Unrecognized keys: "field0", "field1", .*… \(\d+ characters\)$/);
    expect(u.bytes).toBeLessThan(1000);
  });
});

describe('hostile objects from library callers: throwing getters and Proxies are invalid_request, never internal', () => {
  const boom = () => {
    throw new Error('boom');
  };
  /** Requests a script might pass that cannot be read as JSON, each with the field its error names (undefined: any). */
  const unreadable: [string, () => unknown, string][] = [
    ['a Proxy whose get trap throws', () => new Proxy({ requestId: 'r' }, { get: boom }), 'requestId'],
    ['a Proxy whose ownKeys trap throws', () => new Proxy({}, { ownKeys: boom }), '(request)'],
    ['a Proxy whose getOwnPropertyDescriptor trap throws', () => new Proxy({ a: 1 }, { getOwnPropertyDescriptor: boom }), '(request)'],
    [
      'a revoked Proxy',
      () => {
        const p = Proxy.revocable({}, {});
        p.revoke();
        return p.proxy;
      },
      '(request)',
    ],
    [
      'a getter that throws',
      () => ({
        get requestId() {
          throw new Error('getter');
        },
      }),
      'requestId',
    ],
    [
      'a nested getter that throws a number',
      () => ({
        requestId: 'r',
        nested: {
          get deep() {
            throw 5;
          },
        },
      }),
      'nested.deep',
    ],
    [
      'a getter that throws null',
      () => ({
        get vmId() {
          throw null;
        },
      }),
      'vmId',
    ],
    [
      'a getter that throws a Proxy that throws on every access',
      () => ({
        get vmId() {
          throw new Proxy({}, { get: boom, getPrototypeOf: boom, has: boom });
        },
      }),
      'vmId',
    ],
    ['an array Proxy whose length throws', () => ({ list: new Proxy([], { get: (t, k) => (k === 'length' ? boom() : Reflect.get(t, k)) }) }), 'list'],
    ['an array element getter that throws', () => ({ list: Object.defineProperty([1, 2], 1, { get: boom, enumerable: true }) }), 'list.1'],
  ];

  it(`every handler (${HANDLER_NAMES.length} × ${unreadable.length} cases): invalid_request naming the field, nothing written`, async () => {
    await x86Vm();
    const before = await lastPosition();
    const internal: string[] = [];
    for (const name of HANDLER_NAMES) {
      for (const [what, make, field] of unreadable) {
        const r = (await (handlers[name] as (q: unknown, c: unknown) => Promise<any>)(make(), { db: L.db })) as Record<string, any>;
        if (r.ok || r.error.code !== 'invalid_request') internal.push(`${name}: ${what}: ${JSON.stringify(r).slice(0, 200)}`);
        else expect(r.error.details, `${name}: ${what}`).toMatchObject({ field, unreadable: true });
      }
    }
    expect(internal).toEqual([]);
    expect(await lastPosition()).toBe(before);
  });

  it('a request is read once: a getter that answers differently each time is taken at its first answer', async () => {
    await x86Vm();
    let reads = 0;
    const req = {
      get ns() {
        return ++reads === 1 ? '1000' : '9'.repeat(MB2);
      },
    };
    expect((await L.ok('advanceTime', req as never)).now).toBe('1000');
    expect(reads).toBe(1);
  });

  it('a context that cannot be read, or of the wrong kind, is invalid_request', async () => {
    const ctxs: [unknown, string][] = [
      [new Proxy({}, { get: boom }), '(context).db'],
      [
        {
          db: L.db,
          get store() {
            throw new Error('no');
          },
        },
        '(context).store',
      ],
      [{ db: 5 }, '(context).db'],
      [{ db: L.db, onProgress: 'yes' }, '(context).onProgress'],
      ['ledger.db', '(context)'],
    ];
    for (const [ctx, field] of ctxs) {
      const r = (await (handlers.events as (q: unknown, c: unknown) => Promise<any>)({}, ctx)) as Record<string, any>;
      expect(r.error, field).toMatchObject({ code: 'invalid_request', details: { field } });
    }
  });

  it('the Lambda adapter answers an unreadable event or request with invalid_request, and never throws', async () => {
    const events: unknown[] = [
      new Proxy({}, { get: boom, has: boom, getPrototypeOf: boom, ownKeys: boom }),
      {
        get handler() {
          throw new Error('x');
        },
      },
      {
        get body() {
          throw new Error('x');
        },
      },
      { handler: 'createHost', request: new Proxy({}, { ownKeys: boom }) },
      {
        handler: 'events',
        get request() {
          throw 1;
        },
      },
      {
        get requestContext() {
          throw new Error('x');
        },
        handler: 'events',
        request: {
          get limit() {
            throw new Error('x');
          },
        },
      },
    ];
    for (const event of events) {
      const r = (await lambdaHandler(event)) as Record<string, any>;
      expect(r.ok).toBe(false);
      expect(r.error.code).toBe('invalid_request');
    }
  });
});
