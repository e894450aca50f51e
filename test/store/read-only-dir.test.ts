// A ledger read where nothing may be created beside it: evidence archived in a read-only
// directory is verified, audited and read (the reads run as an unprivileged user: tests run as
// root, which file modes do not bind); openLedgerForReading creates nothing in any directory; and
// a ledger whose write-ahead log holds changes it could only read through an index it would have
// to create is refused with io, not misread.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { openEventStore, openLedgerForReading, StoreError } from '../../store/index.js';
import { NOBODY, unprivilegedPath } from '../helpers/unprivileged.js';
import { cleanup, FIXTURES, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(async () => {
  // (made writable again so they can be removed)
  for (const d of dirs.splice(0)) chmodSync(d, 0o755);
  await closeStores();
  cleanup();
});

type R = Record<string, any>;
const call = async (name: keyof typeof handlers, request: unknown, db: string): Promise<R> => (await handlers[name](request, { db })) as R;

/** The seeded ledger's last position, read while it was still open (as written, before any read under test). */
let seeded = 0;

/** A seeded ledger (a migrated VM, its snapshot kept), closed: the directory holds the file alone. */
async function ledger(dir = tempDir()): Promise<string> {
  const db = join(dir, 'ledger.db');
  for (const [name, req] of [
    ['createHost', { hostId: 'a', tscKhz: 3_000_000 }],
    ['createHost', { hostId: 'b', tscKhz: 3_000_000 }],
    ['createVm', { vmId: 'web', hostId: 'a', vcpus: 2 }],
    ['runVcpu', { vmId: 'web' }],
    ['advanceTime', { ns: 1_000_000_000 }],
    ['migrate', { vmId: 'web', toHost: 'b', strategy: 'qemu', blackoutNs: 100_000_000, newVmId: 'web.m1', migrationId: 'm1' }],
  ] as const) {
    expect((await call(name, req, db)).ok, name).toBe(true);
  }
  seeded = (await call('events', { limit: 1 }, db)).lastPosition;
  await closeStores();
  expect(readdirSync(dir)).toEqual(['ledger.db']);
  return db;
}

/** Run a handler of the compiled package as the unprivileged user. */
function asNobody(name: string, db: string, request?: unknown): R {
  const fixture = unprivilegedPath(join(FIXTURES, 'read-handler.mjs'));
  const args = [fixture, name, db, ...(request ? [JSON.stringify(request)] : [])];
  const c = spawnSync(process.execPath, args, { encoding: 'utf8', ...(process.getuid?.() === 0 ? NOBODY : {}) });
  expect(c.stderr).toBe('');
  return JSON.parse(c.stdout) as R;
}

function readOnlyDir(dir: string): void {
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o444);
  chmodSync(dir, 0o555);
  dirs.push(dir);
}

describe('a ledger in a read-only directory', () => {
  it('is verified, audited and read, and nothing appears beside it', async () => {
    const dir = tempDir();
    const db = await ledger(dir);
    const before = readFileSync(db);
    readOnlyDir(dir);
    expect(asNobody('verify', db)).toMatchObject({ ok: true, intact: true, checked: seeded, coverage: { snapshots: 1, snapshotStates: 1 } });
    expect(asNobody('audit', db, { migrationId: 'm1' })).toMatchObject({ ok: true, audit: { migrationId: 'm1', status: 'completed' } });
    expect(asNobody('listVms', db).vms.map((v: R) => v.vmId)).toEqual(['web', 'web.m1']);
    expect(asNobody('stateAt', db, { vmId: 'web.m1' })).toMatchObject({ ok: true, version: 18 });
    expect(asNobody('events', db, { limit: 1 })).toMatchObject({ ok: true, lastPosition: seeded });
    // a writer is refused (io), and nothing was created or changed
    expect(asNobody('advanceTime', db, { ns: 1 })).toMatchObject({ ok: false, error: { code: 'io' } });
    expect(readdirSync(dir)).toEqual(['ledger.db']);
    expect(readFileSync(db).equals(before)).toBe(true);
  });

  it('with its -wal holding changes and no -shm index, is refused with io naming both, not misread', async () => {
    const src = tempDir();
    const w = new Database(join(src, 'live.db'));
    w.pragma('journal_mode = WAL');
    w.pragma('wal_autocheckpoint = 0');
    w.close();
    const s = openEventStore(join(src, 'live.db'));
    s.commit([{ streamId: 'x-a', expectedVersion: 0, events: [{ type: 't', time: 1n, data: {} }] }]);
    // copied while the writer holds it open: the event is in the -wal only
    const dir = tempDir();
    copyFileSync(join(src, 'live.db'), join(dir, 'ledger.db'));
    copyFileSync(join(src, 'live.db-wal'), join(dir, 'ledger.db-wal'));
    readOnlyDir(dir);
    const r = asNobody('verify', join(dir, 'ledger.db'));
    expect(r).toMatchObject({ ok: false, error: { code: 'io' } });
    expect(r.error.message).toContain(`${join(dir, 'ledger.db')}-wal`);
    expect(r.error.message).toContain('-shm');
    // with its index beside it, the write-ahead log is read (nothing created)
    chmodSync(dir, 0o755);
    copyFileSync(join(src, 'live.db-shm'), join(dir, 'ledger.db-shm'));
    s.close();
    readOnlyDir(dir);
    expect(asNobody('verify', join(dir, 'ledger.db'))).toMatchObject({ ok: true, intact: true, checked: 1 });
    expect(readdirSync(dir).sort()).toEqual(['ledger.db', 'ledger.db-shm', 'ledger.db-wal']);
  });
});

describe('openLedgerForReading', () => {
  it('creates nothing beside the ledger, even in a writable directory, and refuses writes', async () => {
    const dir = tempDir();
    const db = await ledger(dir);
    const s = openLedgerForReading(db);
    try {
      expect(s.verify()).toMatchObject({ intact: true, checked: seeded });
      expect(s.streamVersion('vm-web.m1')).toBe(18);
      expect(() => s.commit([])).toThrow(StoreError);
      expect(readdirSync(dir)).toEqual(['ledger.db']);
    } finally {
      s.close();
    }
    // a plain read-only open in a writable directory takes part in SQLite's locking (its index beside the file)
    const ro = openEventStore(db, { readonly: true });
    ro.close();
    expect(readdirSync(dir).sort()).toEqual(['ledger.db', 'ledger.db-shm', 'ledger.db-wal']);
  });

  it('a missing ledger is not_found and nothing is created', () => {
    const dir = tempDir();
    expect(() => openLedgerForReading(join(dir, 'none.db'))).toThrow(expect.objectContaining({ code: 'not_found' }));
    expect(readdirSync(dir)).toEqual([]);
  });
});
