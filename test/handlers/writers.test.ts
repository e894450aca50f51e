// Eight processes writing to one VM at once through the compiled handlers: every request is
// decided again after a conflict (backing off with jitter) until it commits; none gives up with
// `conflict`, and the log holds exactly the requests made, intact.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeStores, storeFor } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { DomainError, withSession } from '../../machines/session.js';
import { ConflictError } from '../../store/errors.js';
import type { EventStore } from '../../store/types.js';
import { ENGINE_NAMES, newLedger, type Ledger } from '../helpers/ledger.js';

const WRITER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/vm-writer.mjs');

let L: Ledger;
beforeEach(() => {
  L = newLedger();
});
afterEach(() => L.cleanup());

function writer(args: string[], onLine: (line: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vm-writer ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, 90_000);
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      pending += c;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The store of the ledger, whose next `losses` commits lose a race (as if another writer got in first). */
function losingStore(losses: { left: number }): EventStore {
  const real = storeFor({ db: L.db });
  return new Proxy(real, {
    get(t, k) {
      if (k === 'commit') {
        return (...a: Parameters<EventStore['commit']>) => {
          if (losses.left > 0) {
            losses.left--;
            throw new ConflictError('ledger', 1, 2);
          }
          return t.commit(...a);
        };
      }
      const v = Reflect.get(t, k, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

describe('retries after a lost race', () => {
  it('a request that loses 25 races in a row still commits once, and the process runs other work while it waits', async () => {
    await L.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    const losses = { left: 25 };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const r = await handlers.advanceTime({ ns: '5', requestId: 'r1' }, { store: losingStore(losses) });
    clearInterval(timer);
    expect(r).toEqual({ ok: true, now: '5' });
    expect(losses.left).toBe(0);
    // the backoff awaits: timers of this process fired during it (a blocking wait lets none)
    expect(ticks).toBeGreaterThan(0);
    expect((await L.ok('events', {})).events.map((e: { type: string }) => e.type)).toEqual(['HostCreated', 'TimeAdvanced']);
  });

  it('gives up with conflict only when its retry budget is spent, saying after how many attempts', async () => {
    await L.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    const losses = { left: 10 };
    const err = await withSession(
      losingStore(losses),
      { handler: 't' },
      (s) => s.advanceTime(5n),
      () => ({}),
      { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe('conflict');
    expect((err as DomainError).details).toEqual({ streamId: 'ledger', expected: 1, actual: 2, attempts: 3 });
    expect(losses.left).toBe(7);
    expect((await L.ok('events', {})).events).toHaveLength(1);
  });
});

describe('eight writers on one VM', () => {
  it('8 processes × 160 requests: every one commits (none gives up with conflict), each recorded once, in time order, intact', async () => {
    const CHILDREN = 8;
    const PER_CHILD = 160;
    await L.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    await L.ok('createVm', { vmId: 'web', hostId: 'h', vcpus: 1 });
    await L.ok('runVcpu', { vmId: 'web' });
    const base = (await L.ok('events', { limit: 1 })).lastPosition as number;
    closeStores();

    const goFile = join(L.dir, 'go');
    let ready = 0;
    const results = await Promise.all(
      Array.from({ length: CHILDREN }, (_, i) =>
        writer([L.db, String(i), String(PER_CHILD), goFile], (line) => {
          if (line === 'ready' && ++ready === CHILDREN) writeFileSync(goFile, 'go');
        }),
      ),
    );
    expect(results.map((r) => ({ code: r.code, stderr: r.stderr }))).toEqual(results.map(() => ({ code: 0, stderr: '' })));
    const summaries = results.map((r) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { childId: string; ok: number; errors: { code: string }[] });
    // the failure this guards against: a request giving up with `conflict` after its retries
    expect(summaries.flatMap((s) => s.errors)).toEqual([]);
    expect(summaries.map((s) => s.ok)).toEqual(summaries.map(() => PER_CHILD));

    // 3 of every 4 requests record one guest read on the VM; the ledger records each advance
    const events = (await L.ok('events', { limit: 100_000 })).events as {
      position: number;
      streamId: string;
      type: string;
      time: string;
      metadata: { requestId?: string };
    }[];
    const reads = events.filter((e) => e.type === 'GuestExecuted');
    expect(reads).toHaveLength(CHILDREN * PER_CHILD * (3 / 4));
    expect(new Set(reads.map((e) => e.metadata.requestId)).size).toBe(reads.length);
    expect(events.filter((e) => e.position > base).every((e) => e.metadata.requestId !== undefined)).toBe(true);
    const times = events.map((e) => BigInt(e.time));
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
    // every advance of 1000 ns happened exactly once
    expect((await L.ok('advanceTime', {})).now).toBe(String(CHILDREN * (PER_CHILD / 4) * 1000));
    expect(await L.ok('verify', {})).toMatchObject({ intact: true });
  }, 120_000);
});

describe.each(ENGINE_NAMES)('six writers retrying their request ids (%s)', (engine) => {
  it('6 processes × 40 requests, each sent twice: nothing lost, nothing recorded twice, positions and versions contiguous, the chain intact', async () => {
    const CHILDREN = 6;
    const PER_CHILD = 40;
    const l = newLedger(engine);
    try {
      await l.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
      await l.ok('createVm', { vmId: 'web', hostId: 'h', vcpus: 1 });
      await l.ok('runVcpu', { vmId: 'web' });
      const base = (await l.ok('events', { limit: 1 })).lastPosition as number;
      await closeStores();

      const goFile = join(l.dir, 'go');
      let ready = 0;
      const results = await Promise.all(
        Array.from({ length: CHILDREN }, (_, i) =>
          writer([l.db, String(i), String(PER_CHILD), goFile, 'retry'], (line) => {
            if (line === 'ready' && ++ready === CHILDREN) writeFileSync(goFile, 'go');
          }),
        ),
      );
      expect(results.map((r) => ({ code: r.code, stderr: r.stderr }))).toEqual(results.map(() => ({ code: 0, stderr: '' })));
      const summaries = results.map((r) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ok: number; errors: unknown[] });
      expect(summaries.flatMap((x) => x.errors)).toEqual([]);
      expect(summaries.map((x) => x.ok)).toEqual(summaries.map(() => PER_CHILD));

      const events = (await l.ok('events', { limit: 100_000 })).events as {
        position: number;
        streamId: string;
        version: number;
        type: string;
        metadata: { requestId?: string };
      }[];
      // contiguous positions from 1; every stream's versions contiguous from 1
      expect(events.map((e) => e.position)).toEqual(events.map((_, i) => i + 1));
      const versions = new Map<string, number[]>();
      for (const e of events) versions.set(e.streamId, [...(versions.get(e.streamId) ?? []), e.version]);
      for (const [id, v] of versions) expect(v, id).toEqual(v.map((_, i) => i + 1));
      // each request recorded once: 30 guest reads and 10 advances a child, each advance one TimeAdvanced
      const after = events.filter((e) => e.position > base);
      const reads = after.filter((e) => e.type === 'GuestExecuted');
      expect(reads).toHaveLength(CHILDREN * PER_CHILD * (3 / 4));
      expect(new Set(reads.map((e) => e.metadata.requestId)).size).toBe(reads.length);
      const advances = new Set(after.filter((e) => e.type === 'TimeAdvanced').map((e) => e.metadata.requestId));
      expect(advances.size).toBe(CHILDREN * (PER_CHILD / 4));
      expect((await l.ok('advanceTime', {})).now).toBe(String(CHILDREN * (PER_CHILD / 4) * 1000));
      const v = await l.ok('verify', {});
      expect(v).toMatchObject({ intact: true, checked: events.length, head: { position: events.length } });
    } finally {
      await closeStores();
      l.cleanup();
    }
  }, 120_000);
});
