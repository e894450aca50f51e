// Handlers declare whether they read or write: readers open an existing ledger read-only and never
// create, convert or write a file; writers create and migrate. Request ids are bound to their
// request; fork targets are plain new files (confined to CLOCKLEDGER_FORK_DIR under Lambda).
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import * as lambda from '../../handlers/lambda.js';
import { cleanup, FIXTURES, tempDir } from '../store/helpers.js';
import { NOBODY, unprivilegedPath } from '../helpers/unprivileged.js';

afterEach(() => {
  closeStores();
  cleanup();
});

type R = Record<string, any>;
const call = async (name: keyof typeof handlers, request: unknown, db: string): Promise<R> => (await handlers[name](request, { db })) as R;

/** A ledger with two hosts (4 events), closed. */
async function ledger(dir = tempDir()): Promise<string> {
  const db = join(dir, 'ledger.db');
  expect((await call('createHost', { hostId: 'a', tscKhz: 1_000_000 }, db)).ok).toBe(true);
  expect((await call('createHost', { hostId: 'b', tscKhz: 2_000_000 }, db)).ok).toBe(true);
  expect((await call('advanceTime', { ns: 1000 }, db)).ok).toBe(true);
  closeStores();
  return db;
}

function foreignDb(path: string): Buffer {
  const db = new Database(path);
  db.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada')");
  db.close();
  return readFileSync(path);
}

describe('read handlers never write', () => {
  it.each(['verify', 'audit', 'events', 'stateAt'] as const)('%s on a missing path is not_found and leaves no file', async (name) => {
    const dir = tempDir();
    const db = join(dir, 'missing.db');
    const r = await call(name, name === 'stateAt' ? { hostId: 'a' } : {}, db);
    expect(r).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(r.error.message).toContain(db);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('strategies needs no ledger at all', async () => {
    const dir = tempDir();
    expect((await call('strategies', {}, join(dir, 'none.db'))).ok).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('on another application’s SQLite file, verify (and a writer) answer not_a_ledger and leave it byte-identical', async () => {
    const db = join(tempDir(), 'app.db');
    const before = foreignDb(db);
    for (const name of ['verify', 'events', 'createHost'] as const) {
      const r = await call(name, name === 'createHost' ? { hostId: 'a', tscKhz: 1_000_000 } : {}, db);
      expect(r, name).toMatchObject({ ok: false, error: { code: 'not_a_ledger' } });
      expect(readFileSync(db).equals(before), name).toBe(true);
      expect(existsSync(`${db}-wal`)).toBe(false);
    }
  });

  it('a 0-byte file is not a ledger for readers (and stays empty)', async () => {
    const db = join(tempDir(), 'empty.db');
    writeFileSync(db, '');
    expect(await call('verify', {}, db)).toMatchObject({ ok: false, error: { code: 'not_a_ledger' } });
    expect(readFileSync(db).length).toBe(0);
  });

  it('a read-only ledger file verifies and reads (run as an unprivileged user); a writer gets io, not corrupt', async () => {
    const dir = tempDir();
    const db = await ledger(dir);
    chmodSync(db, 0o444);
    chmodSync(dir, 0o777); // (the unprivileged user may create the -shm index beside it)
    const asUser = process.getuid?.() === 0 ? NOBODY : {};
    const fixture = unprivilegedPath(join(FIXTURES, 'read-handler.mjs'));
    const run = (name: string, request?: unknown) => {
      const c = spawnSync(process.execPath, [fixture, name, db, ...(request ? [JSON.stringify(request)] : [])], { encoding: 'utf8', ...asUser });
      expect(c.stderr).toBe('');
      return JSON.parse(c.stdout) as R;
    };
    const before = readFileSync(db);
    expect(run('verify')).toMatchObject({ ok: true, intact: true, checked: 3, head: { position: 3 } });
    expect(run('events').events.map((e: R) => e.type)).toEqual(['HostCreated', 'HostCreated', 'TimeAdvanced']);
    expect(run('createHost', { hostId: 'c', tscKhz: 1_000_000 })).toMatchObject({ ok: false, error: { code: 'io' } });
    expect(readFileSync(db).equals(before)).toBe(true);
  });
});

describe('verify reports the head and checks an anchor', () => {
  it('head and anchor', async () => {
    const db = await ledger();
    const v = await call('verify', {}, db);
    expect(v).toMatchObject({ ok: true, intact: true, checked: 3, head: { position: 3 } });
    expect(v.head.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await call('verify', { anchor: v.head }, db)).toMatchObject({ ok: true, intact: true });
    closeStores();
    // the last two events and every table entry pointing at them removed consistently
    const raw = new Database(db);
    raw.exec("DELETE FROM events WHERE position > 2; DELETE FROM streams WHERE last_position > 2; DELETE FROM stream_categories WHERE category = 'ledger'");
    raw.close();
    const after = await call('verify', {}, db);
    expect(after).toMatchObject({ ok: true, intact: true, checked: 2, head: { position: 2 } });
    expect(await call('verify', { anchor: v.head }, db)).toMatchObject({ ok: true, intact: false, firstBrokenPosition: 3 });
    expect(await call('verify', { anchor: after.head }, db)).toMatchObject({ ok: true, intact: true });
  });
});

describe('request ids', () => {
  it('reused with a different request: conflict naming the id; the identical retry: the stored answer', async () => {
    const db = join(tempDir(), 'l.db');
    const first = await call('createHost', { hostId: 'a', tscKhz: 1_000_000, requestId: 'once' }, db);
    expect(first.ok).toBe(true);
    const other = await call('createHost', { hostId: 'b', tscKhz: 1_000_000, requestId: 'once' }, db);
    expect(other).toMatchObject({ ok: false, error: { code: 'conflict', details: { requestId: 'once' } } });
    expect(other.error.message).toContain('once');
    expect(await call('createHost', { hostId: 'a', tscKhz: 1_000_000, requestId: 'once' }, db)).toEqual(first);
    expect((await call('events', {}, db)).lastPosition).toBe(1);
    expect((await call('stateAt', { hostId: 'b' }, db)).error.code).toBe('not_found');
  });

  it('a rewritten stored response is not returned by a retry (corrupt) and fails verify', async () => {
    const db = join(tempDir(), 'l.db');
    const first = await call('createHost', { hostId: 'a', tscKhz: 1_000_000, requestId: 'r1' }, db);
    closeStores();
    const raw = new Database(db);
    raw.prepare("UPDATE requests SET response = ? WHERE request_id = 'r1'").run(JSON.stringify({ ...first, forged: true }));
    raw.close();
    expect(await call('createHost', { hostId: 'a', tscKhz: 1_000_000, requestId: 'r1' }, db)).toMatchObject({ ok: false, error: { code: 'corrupt' } });
    expect(await call('verify', {}, db)).toMatchObject({ ok: true, intact: false, table: 'requests' });
  });
});

describe('fork targets', () => {
  it('a NUL in the target is invalid_request and the existing database it would name is untouched', async () => {
    const dir = tempDir();
    const db = await ledger(dir);
    const other = join(dir, 'other.db');
    const before = foreignDb(other);
    const r = await call('fork', { position: 2, targetDb: `${other}\0` }, db);
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(readFileSync(other).equals(before)).toBe(true);
    // and as the source path
    expect(await call('verify', {}, `${db}\0`)).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
  });

  it('a missing directory is not_found, :memory: is invalid_request', async () => {
    const dir = tempDir();
    const db = await ledger(dir);
    expect(await call('fork', { position: 2, targetDb: join(dir, 'no', 'f.db') }, db)).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(await call('fork', { position: 2, targetDb: ':memory:' }, db)).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(readdirSync(dir).filter((f) => !f.startsWith('ledger.db'))).toEqual([]);
  });

  it('under Lambda, targets are confined to CLOCKLEDGER_FORK_DIR (relative targets inside it)', async () => {
    const dir = tempDir();
    const db = await ledger(dir);
    const forks = join(dir, 'forks');
    mkdirSync(forks);
    const saved = [process.env.CLOCKLEDGER_DB, process.env.CLOCKLEDGER_FORK_DIR];
    process.env.CLOCKLEDGER_DB = db;
    process.env.CLOCKLEDGER_FORK_DIR = forks;
    try {
      for (const targetDb of [join(dir, 'out.db'), '../out.db', '/tmp/out.db']) {
        expect(await lambda.handler({ handler: 'fork', request: { position: 2, targetDb } }), targetDb).toMatchObject({
          ok: false,
          error: { code: 'invalid_request' },
        });
      }
      expect(existsSync(join(dir, 'out.db'))).toBe(false);
      expect(await lambda.handler({ handler: 'fork', request: { position: 2, targetDb: 'w.db' } })).toMatchObject({
        ok: true,
        events: 2,
        targetDb: join(forks, 'w.db'),
      });
      expect(existsSync(join(forks, 'w.db'))).toBe(true);
    } finally {
      for (const [k, v] of [
        ['CLOCKLEDGER_DB', saved[0]],
        ['CLOCKLEDGER_FORK_DIR', saved[1]],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
