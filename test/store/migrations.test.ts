// Schema migrations: applied 1..N in order under PRAGMA user_version, old databases upgraded with
// their data kept, newer databases refused (read-write and read-only) and left alone.
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { chainHash, GENESIS_HASH, latestSchemaVersion, loadMigrations, migrate, StoreError } from '../../store/index.js';
import { registerResponseHash } from '../../store/request-check.js';
import { cleanup, ev, openStore, tempDbPath } from './helpers.js';

afterEach(cleanup);

const N = latestSchemaVersion();

function userVersion(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

function tables(db: Database.Database): string[] {
  return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
}

/** Every table, index and column of a schema, by name. */
function schemaItems(db: Database.Database): string[] {
  const items: string[] = [];
  for (const { type, name } of db.prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").all() as { type: string; name: string }[]) {
    items.push(`${type} ${name}`);
    if (type === 'table') for (const c of db.pragma(`table_info(${name})`) as { name: string }[]) items.push(`column ${name}.${c.name}`);
  }
  return items.sort();
}

/** The schema as text (tables and indexes), to compare databases migrated by different paths. */
function schemaOf(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare("SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
      .pluck()
      .all() as string[];
  } finally {
    db.close();
  }
}

/** A valid first event row (correct hash) as migration 1 defines the table. */
const seedEvent = {
  position: 1,
  streamId: 'vm/seed',
  version: 1,
  type: 'seeded',
  schemaVersion: 1,
  time: '12345',
  data: '{"k":"v"}',
  metadata: '{"handler":"seed"}',
};
const seedHash = chainHash(GENESIS_HASH, seedEvent);

/** Insert rows that fit the schema at version k (only into tables that exist by then). */
function seed(db: Database.Database, k: number): void {
  const t = tables(db);
  if (k >= 1) {
    expect(t).toContain('events');
    db.prepare('INSERT INTO events (position, stream_id, version, type, schema_version, time, data, metadata, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      seedEvent.position,
      seedEvent.streamId,
      seedEvent.version,
      seedEvent.type,
      seedEvent.schemaVersion,
      BigInt(seedEvent.time),
      seedEvent.data,
      seedEvent.metadata,
      seedHash,
    );
  }
  if (t.includes('streams')) {
    // from version 4 on, the store keeps one row per stream next to its events
    db.prepare('INSERT INTO streams (stream_id, version, last_position, last_type) VALUES (?, ?, ?, ?)').run(seedEvent.streamId, 1, 1, seedEvent.type);
  }
  if (t.includes('stream_categories')) {
    // from version 6 on, with a count per category
    db.prepare('INSERT INTO stream_categories (category, streams) VALUES (?, 1)').run(seedEvent.streamId);
  }
  if (t.includes('requests')) {
    db.prepare('INSERT INTO requests (request_id, handler, first_position, last_position, response) VALUES (?, ?, ?, ?, ?)').run(
      'req-seed',
      'seed',
      1,
      1,
      JSON.stringify({ ok: true, position: 1 }),
    );
    if ((db.pragma('table_info(requests)') as { name: string }[]).some((c) => c.name === 'seq')) {
      // from version 9 on, numbered in the order answered
      db.exec("UPDATE requests SET seq = 1 WHERE request_id = 'req-seed'");
    }
    if ((db.pragma('table_info(requests)') as { name: string }[]).some((c) => c.name === 'response_hash')) {
      // from version 7 on, a stored answer carries its check, as the store writes it
      registerResponseHash(db);
      db.exec(`UPDATE requests SET response_hash = clockledger_response_hash(request_id, handler, NULL, first_position, last_position,
        (SELECT hash FROM events WHERE events.position = requests.last_position), response)`);
    }
  }
  if (t.includes('snapshots')) {
    db.prepare('INSERT INTO snapshots (stream_id, version, position, code_version, state) VALUES (?, ?, ?, ?, ?)').run(
      'vm/seed',
      1,
      1,
      'cv-seed',
      Buffer.from([1, 2, 3]),
    );
  }
}

describe('migrations', () => {
  it('the migration files are numbered 1..N without gaps', () => {
    const ms = loadMigrations();
    expect(N).toBeGreaterThanOrEqual(1);
    expect(ms.map((m) => m.version)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    for (const m of ms) expect(m.name).toMatch(new RegExp(`^0*${m.version}_.+\\.sql$`));
  });

  it('migrating an empty database applies 1..N in order and sets user_version = N', () => {
    const path = tempDbPath();
    const db = new Database(path);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(0);
      expect(migrate(db)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      expect(db.pragma('user_version', { simple: true })).toBe(N);
      expect(tables(db)).toEqual(expect.arrayContaining(['events', 'requests', 'snapshots']));
      // a second run is a no-op
      expect(migrate(db)).toEqual([]);
      expect(db.pragma('user_version', { simple: true })).toBe(N);
    } finally {
      db.close();
    }
  });

  it('migrates one step at a time: migrate(db, k) stops at k, and each step adds what its file defines', () => {
    const path = tempDbPath();
    const db = new Database(path);
    try {
      const seen: string[][] = [schemaItems(db)];
      for (let k = 1; k <= N; k++) {
        expect(migrate(db, k)).toEqual([k]);
        expect(db.pragma('user_version', { simple: true })).toBe(k);
        const t = schemaItems(db);
        // every step adds something (a table, an index or a column) and never drops anything
        expect(t.length).toBeGreaterThan(seen[k - 1]!.length);
        expect(t).toEqual(expect.arrayContaining(seen[k - 1]!));
        seen.push(t);
      }
    } finally {
      db.close();
    }
    expect(userVersion(path)).toBe(N);
  });

  it('migrating in steps gives the same schema as migrating at once, and as openEventStore', () => {
    const stepped = tempDbPath('stepped.db');
    const once = tempDbPath('once.db');
    const opened = tempDbPath('opened.db');
    const a = new Database(stepped);
    for (let k = 1; k <= N; k++) migrate(a, k);
    a.close();
    const b = new Database(once);
    migrate(b);
    b.close();
    openStore(opened).close();
    expect(schemaOf(stepped)).toEqual(schemaOf(once));
    expect(schemaOf(opened)).toEqual(schemaOf(once));
    expect(userVersion(opened)).toBe(N);
  });

  describe.each(Array.from({ length: N }, (_, k) => k))('from version %i', (k) => {
    it('openEventStore migrates to N and keeps the data', () => {
      const path = tempDbPath();
      const db = new Database(path);
      expect(migrate(db, k)).toEqual(Array.from({ length: k }, (_, i) => i + 1));
      expect(db.pragma('user_version', { simple: true })).toBe(k);
      seed(db, k);
      db.close();

      const s = openStore(path);
      expect(userVersion(path)).toBe(N);
      if (k >= 1) {
        expect(s.lastPosition()).toBe(1);
        const [e] = s.read();
        expect(e).toEqual({
          position: 1,
          streamId: 'vm/seed',
          version: 1,
          type: 'seeded',
          schemaVersion: 1,
          time: 12345n,
          data: { k: 'v' },
          metadata: { handler: 'seed' },
          hash: seedHash,
        });
        expect(s.streamVersion('vm/seed')).toBe(1);
        expect(s.countCategory('vm/seed')).toBe(1); // counted from the streams the log had
        expect(s.verify()).toMatchObject({ intact: true, checked: 1 });
      } else {
        expect(s.lastPosition()).toBe(0);
      }
      if (k >= 2) expect(s.findRequest('req-seed')).toEqual({ response: { ok: true, position: 1 } });
      else expect(s.findRequest('req-seed')).toBeUndefined();

      // the migrated database is fully usable: the chain continues from the seeded event
      const r = s.commit([{ streamId: 'vm/seed', expectedVersion: k >= 1 ? 1 : 0, events: [ev('next', 20000, { n: 1 })] }], {
        requestId: 'after-migration',
        response: (w) => w.map((x) => x.position),
      });
      expect(r.duplicate).toBe(false);
      expect(r.written.map((w) => [w.position, w.version])).toEqual([[k >= 1 ? 2 : 1, k >= 1 ? 2 : 1]]);
      s.saveSnapshot({ streamId: 'vm/seed', version: 1, position: 1, codeVersion: 'cv', state: Buffer.from('x') });
      expect(s.latestSnapshot('vm/seed', 'cv')?.position).toBe(1);
      expect(s.verify()).toMatchObject({ intact: true, checked: k >= 1 ? 2 : 1 });
      s.close();

      // and reopening it applies nothing more
      const again = new Database(path);
      try {
        expect(migrate(again)).toEqual([]);
      } finally {
        again.close();
      }
    });
  });

  describe('a database newer than the code', () => {
    /** A database at user_version N+1, as a newer clockledger (which also uses WAL) would leave it. */
    function newerDb(walMode: boolean): string {
      const path = tempDbPath();
      const db = new Database(path);
      if (walMode) db.pragma('journal_mode = WAL');
      migrate(db);
      db.exec('CREATE TABLE future_things (id INTEGER PRIMARY KEY, note TEXT)');
      db.prepare('INSERT INTO future_things (note) VALUES (?)').run('from the future');
      db.pragma(`user_version = ${N + 1}`);
      db.close();
      return path;
    }

    function expectTooNew(f: () => unknown): StoreError {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('schema_too_new');
      return err as StoreError;
    }

    it('openEventStore refuses it with schema_too_new and leaves user_version at N+1 and the data alone', () => {
      const path = newerDb(true);
      const before = readFileSync(path);
      const err = expectTooNew(() => openStore(path));
      expect(err.details).toEqual({ databaseVersion: N + 1, supportedVersion: N });
      expect(userVersion(path)).toBe(N + 1);
      const db = new Database(path, { readonly: true });
      try {
        expect(db.prepare('SELECT note FROM future_things').pluck().all()).toEqual(['from the future']);
      } finally {
        db.close();
      }
      // a WAL-mode file is byte-for-byte unchanged
      expect(readFileSync(path).equals(before)).toBe(true);
      // refusing twice is stable
      expectTooNew(() => openStore(path));
      expect(userVersion(path)).toBe(N + 1);
    });

    it('migrate() itself refuses it and applies nothing', () => {
      const path = newerDb(false);
      const db = new Database(path);
      try {
        expectTooNew(() => migrate(db));
        expect(db.pragma('user_version', { simple: true })).toBe(N + 1);
      } finally {
        db.close();
      }
    });

    it('a read-only open refuses it too, and the file is unchanged', () => {
      for (const wal of [true, false]) {
        const path = newerDb(wal);
        const before = readFileSync(path);
        expectTooNew(() => openStore(path, { readonly: true }));
        expect(userVersion(path)).toBe(N + 1);
        expect(readFileSync(path).equals(before)).toBe(true);
      }
    });

    // BUG (store/sqlite-event-store.ts, constructor): a read-write open runs
    // `PRAGMA journal_mode = WAL` *before* migrate() checks the version, so refusing a too-new
    // database that uses a rollback journal still rewrites its header (bytes 18-19 go from 1 to 2,
    // i.e. the file is switched to WAL, and the file change counter is bumped). user_version is
    // kept, but the file the newer version owns is modified. Remove `.fails` once fixed.
    it('refusing a too-new rollback-journal database does not modify the file (BUG: switched to WAL first)', () => {
      const path = newerDb(false);
      const before = readFileSync(path);
      expectTooNew(() => openStore(path));
      expect(userVersion(path)).toBe(N + 1);
      const after = readFileSync(path);
      expect(after[18]).toBe(before[18]); // file format write version: 1 = rollback journal, 2 = WAL
      expect(after.equals(before)).toBe(true);
    });

    it('a store that is not an SQLite database is refused and not clobbered', () => {
      const path = tempDbPath();
      writeFileSync(path, 'this is not a database, just some text that must survive\n'.repeat(20));
      const before = readFileSync(path);
      expect(() => openStore(path)).toThrow();
      expect(readFileSync(path).equals(before)).toBe(true);
    });
  });
});
