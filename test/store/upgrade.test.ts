// A ledger written before requests were numbered, wakes recorded and snapshots bound keeps
// verifying, and means what it meant, read as it is and after the upgrade. The fixture
// (fixtures/ledger-schema8.sqlite) was written by clockledger at commit 0763ee1 (SQLite schema 8), with
// the CLI: hosts a and b (3 GHz), VM web (2 vCPUs) run, 1 s of time (request a1), migrated to b as
// web.m1 (qemu, 100 ms blackout, m1), a guest rdtsc on web.m1 (g1: 3000480000) and a read of the
// time (t0, no event): 48 events, 8 requests, a snapshot of web.m1 at version 16. On PostgreSQL the
// same rows are loaded into a schema at pg version 3 (the schema of that commit).
import Database from 'better-sqlite3';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { clearRebuildCache } from '../../machines/rebuild.js';
import { migratePg } from '../../store/pg-migrate.js';
import { closeOpened, freshSchema, PG_URL, pgLocation, postgres, sqlite, type Engine } from './engines.js';
import { cleanup, FIXTURES, tempDir } from './helpers.js';

const FIXTURE = join(FIXTURES, 'ledger-schema8.sqlite');

afterEach(async () => {
  await closeStores();
  await closeOpened();
  cleanup();
});

type R = Record<string, any>;
async function call(name: keyof typeof handlers, request: unknown, db: string): Promise<R> {
  // (as a new process: nothing held from an earlier call)
  await closeStores();
  clearRebuildCache();
  return (await handlers[name](request, { db })) as R;
}

/** The fixture's rows, read from a copy (a reader would leave SQLite's -shm and -wal beside the file). */
function fixtureRows(table: string): Record<string, unknown>[] {
  const copy = join(tempDir(), 'copy.db');
  copyFileSync(FIXTURE, copy);
  const db = new Database(copy, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

/** The fixture where an engine keeps a ledger: a copy of the file, or its rows in a pg schema at version 3. */
async function oldLedger(engine: Engine): Promise<string> {
  if (engine.name === 'sqlite') {
    const db = join(tempDir(), 'ledger.db');
    copyFileSync(FIXTURE, db);
    return db;
  }
  const schema = freshSchema();
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await migratePg(c, schema, 3);
    for (const table of ['events', 'requests', 'snapshots', 'streams', 'stream_categories']) {
      for (const row of fixtureRows(table)) {
        const cols = Object.keys(row);
        await c.query(`INSERT INTO "${schema}".${table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(row));
      }
    }
  } finally {
    await c.end();
  }
  return pgLocation(schema);
}

async function hashes(engine: Engine, db: string): Promise<[number, string][]> {
  const rows = await engine.query<{ position: number; hash: string }>(db, 'SELECT position, hash FROM events ORDER BY position');
  return rows.map((r) => [Number(r.position), r.hash]);
}

describe.each([sqlite, postgres])('a ledger written before schema 9 (SQLite) / 4 (PostgreSQL): $name', (engine: Engine) => {
  it('verifies read as it is and after the upgrade, with the same head; its events keep their hashes', async () => {
    const db = await oldLedger(engine);
    const before = await hashes(engine, db);
    expect(before).toHaveLength(48);
    // read as it is (read-only: nothing converted): the wakes no event records are checked by replay
    const ro = await call('verify', {}, db);
    expect(ro).toMatchObject({ ok: true, intact: true, checked: 48, coverage: { requests: 8, snapshots: 0, wakes: 6, wakesUnchecked: 0 } });
    const state = await call('stateAt', { vmId: 'web.m1' }, db);
    expect(state.ok).toBe(true);
    // upgraded by a writer: the unbound snapshot is dropped, the requests numbered as they were read
    expect(await call('advanceTime', { ns: 0, requestId: 't0' }, db)).toEqual({ ok: true, now: '1100420000' });
    expect(await hashes(engine, db)).toEqual(before);
    expect(await engine.query(db, 'SELECT stream_id FROM snapshots')).toEqual([]);
    const up = await call('verify', {}, db);
    expect(up).toMatchObject({ ok: true, intact: true, checked: 48, head: ro.head, coverage: { requests: 8, wakesUnchecked: 0 } });
    // and means what it meant: the same state, the stored answers
    expect(await call('stateAt', { vmId: 'web.m1' }, db)).toEqual(state);
    expect(await call('guest', { vmId: 'web.m1', vcpu: 0, op: 'rdtsc', requestId: 'g1' }, db)).toEqual({ ok: true, value: '3000480000', position: 48 });
  });

  it('its wake instants, recorded by no event, are checked by replay; new writes record theirs', async () => {
    const db = await oldLedger(engine);
    expect(await call('advanceTime', { ns: 0 }, db)).toMatchObject({ ok: true });
    await engine.exec(db, "UPDATE streams SET wake_at = NULL WHERE stream_id = 'vm-web.m1'");
    expect(await call('verify', { replay: false }, db)).toMatchObject({ ok: true, intact: true, coverage: { wakes: 0, wakesUnchecked: 6 } });
    const v = await call('verify', {}, db);
    expect(v).toMatchObject({ ok: true, intact: false, table: 'streams', firstBrokenPosition: 48 });
    expect(v.reason).toContain('stream vm-web.m1 is to be woken at no instant, but a replay of its events gives 1200380000');
    // a write on the VM records its wake with its event, so the store checks it without replay
    await engine.exec(db, "UPDATE streams SET wake_at = 1200380000 WHERE stream_id = 'vm-web.m1'");
    expect((await call('guest', { vmId: 'web.m1', vcpu: 1, op: 'rdtsc' }, db)).position).toBe(49);
    const [last] = (await call('events', { streamId: 'vm-web.m1', from: 49 }, db)).events as R[];
    expect(last!.metadata.wakeAt).toBe('1200380000');
    expect(await call('verify', { replay: false }, db)).toMatchObject({ ok: true, intact: true, coverage: { wakes: 1, wakesUnchecked: 5 } });
  });
});
