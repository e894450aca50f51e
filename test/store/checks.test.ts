// What a reader trusts is checked (verify: SQLite's integrity, the tables beside the events, the
// stored request answers, the head) and a read never writes (read-only opens of missing, empty,
// foreign, older and read-only files); fork targets are plain new files in existing directories.
import Database from 'better-sqlite3';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH, migrate, StoreError, type EventStore } from '../../store/index.js';
import { cleanup, ev, openStore, tempDbPath, tempDir } from './helpers.js';

afterEach(cleanup);

/** The code of the StoreError f throws. */
function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return (e as StoreError).code;
  }
  throw new Error('expected a StoreError');
}

/**
 * 12 events (position: stream@version): 1 vm-a@1 | 2-3 vm-b@1-2 | 4-6 host-h@1-3 | 7 vm-a@2 |
 * 8-9 vm-b@3-4 | 10-12 host-h@4-6; each commit with a request id req-<k> answering its positions.
 */
function buildLog(): string {
  const path = tempDbPath();
  const s = openStore(path);
  const plan: [string, number, number][] = [
    ['vm-a', 0, 1],
    ['vm-b', 0, 2],
    ['host-h', 0, 3],
    ['vm-a', 1, 1],
    ['vm-b', 2, 2],
    ['host-h', 3, 3],
  ];
  let pos = 0;
  plan.forEach(([stream, v, n], k) => {
    s.commit([{ streamId: stream, expectedVersion: v, events: Array.from({ length: n }, (_, j) => ev('t', 10 * (pos + j + 1), { n: pos + j + 1 })) }], {
      requestId: `req-${k}`,
      handler: 'h',
      fingerprint: `fp-${k}`,
      response: (w) => ({ positions: w.map((x) => x.position) }),
    });
    pos += n;
  });
  s.close();
  return path;
}

function tamper(path: string, sql: string): EventStore {
  const db = new Database(path);
  try {
    expect(db.prepare(sql).run().changes).toBeGreaterThan(0);
  } finally {
    db.close();
  }
  return openStore(path);
}

function hashAt(s: EventStore, p: number): string {
  return s.read({ fromPosition: p, toPosition: p })[0]!.hash;
}

describe('verify checks what readers trust', () => {
  it('reports the head: the last position and its hash (0 and the genesis hash when empty)', () => {
    const s = openStore(buildLog());
    expect(s.verify()).toMatchObject({ intact: true, checked: 12, head: { position: 12, hash: hashAt(s, 12) } });
    expect(openStore(tempDbPath()).verify()).toMatchObject({ intact: true, checked: 0, head: { position: 0, hash: GENESIS_HASH } });
  });

  it('events deleted from the end are found through the streams and requests that point past the end', () => {
    const s = tamper(buildLog(), 'DELETE FROM events WHERE position > 9');
    const r = s.verify();
    expect(r).toMatchObject({ intact: false, checked: 9, firstBrokenPosition: 10, table: 'streams', head: { position: 9, hash: hashAt(s, 9) } });
    expect(r.reason).toMatch(/host-h ends at position 12 .* log ends at 9/);
  });

  it('a bumped stream version is reported at the stream’s last event', () => {
    const s = tamper(buildLog(), "UPDATE streams SET version = version + 1 WHERE stream_id = 'vm-a'");
    const r = s.verify();
    expect(r).toMatchObject({ intact: false, checked: 12, firstBrokenPosition: 7, table: 'streams' });
    expect(r.reason).toMatch(/vm-a is listed at version 3 .* end at version 2/);
  });

  it('a wrong category count is reported', () => {
    const s = tamper(buildLog(), "UPDATE stream_categories SET streams = 1 WHERE category = 'vm'");
    expect(s.verify()).toMatchObject({
      intact: false,
      firstBrokenPosition: 2,
      table: 'stream_categories',
      reason: 'category vm counts 1 stream but the log has 2',
    });
  });

  it('a rewritten stored response fails verify, and a retry refuses it (corrupt) instead of returning it', () => {
    const s = tamper(buildLog(), `UPDATE requests SET response = '{"positions":[99]}' WHERE request_id = 'req-4'`);
    const r = s.verify();
    expect(r).toMatchObject({ intact: false, checked: 12, firstBrokenPosition: 9, table: 'requests' });
    expect(r.reason).toMatch(/req-4/);
    expect(codeOf(() => s.findRequest('req-4', 'fp-4'))).toBe('corrupt');
    expect(codeOf(() => s.commit([], { requestId: 'req-4', fingerprint: 'fp-4' }))).toBe('corrupt');
    // an untouched request still answers
    expect(s.findRequest('req-3', 'fp-3')).toEqual({ response: { positions: [7] } });
  });

  it('a response moved to other positions fails its hash too', () => {
    const s = tamper(buildLog(), "UPDATE requests SET first_position = 1, last_position = 1 WHERE request_id = 'req-3'");
    expect(s.verify()).toMatchObject({ intact: false, firstBrokenPosition: 1, table: 'requests' });
  });

  it('damaged pages are corrupt (a coded error), not intact', () => {
    const path = tempDbPath();
    const s = openStore(path);
    for (let k = 0; k < 40; k++) s.commit([{ streamId: `vm-${k}`, expectedVersion: 0, events: [ev('t', k, { pad: 'x'.repeat(900) })] }]);
    s.close();
    const bytes = readFileSync(path);
    expect(bytes.length).toBeGreaterThan(16 * 4096);
    bytes.fill(0x5a, 10 * 4096 + 8, 10 * 4096 + 4000); // inside page 11, past its header
    writeFileSync(path, bytes);
    expect(codeOf(() => openStore(path).verify())).toBe('corrupt');
  });
});

describe('request ids', () => {
  it('a request id reused for a different request is a conflict naming it; the same request gets the stored answer', () => {
    const s = openStore(buildLog());
    let err: unknown;
    try {
      s.commit([{ streamId: 'vm-z', expectedVersion: 0, events: [ev('t', 200)] }], { requestId: 'req-1', fingerprint: 'other', handler: 'h' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('conflict');
    expect((err as StoreError).message).toMatch(/req-1/);
    expect(s.lastPosition()).toBe(12);
    expect(s.commit([], { requestId: 'req-1', fingerprint: 'fp-1' })).toEqual({ duplicate: true, written: [], response: { positions: [2, 3] } });
  });
});

describe('read-only opens never write', () => {
  it('a missing path is not_found and no file is left behind', () => {
    const dir = tempDir();
    expect(codeOf(() => openStore(join(dir, 'nope.db'), { readonly: true }))).toBe('not_found');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a 0-byte file is not_a_ledger and stays 0 bytes', () => {
    const path = tempDbPath();
    writeFileSync(path, '');
    expect(codeOf(() => openStore(path, { readonly: true }))).toBe('not_a_ledger');
    expect(readFileSync(path).length).toBe(0);
  });

  it('another application’s SQLite file is not_a_ledger, read-only or writable, and stays byte-identical', () => {
    const path = tempDbPath('app.db');
    const db = new Database(path);
    db.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada')");
    db.close();
    const before = readFileSync(path);
    for (const readonly of [true, false]) {
      expect(codeOf(() => openStore(path, { readonly }))).toBe('not_a_ledger');
      expect(readFileSync(path).equals(before)).toBe(true);
      expect(existsSync(`${path}-wal`)).toBe(false);
    }
  });

  it('a ledger at an older schema is read (and verified) read-only, unchanged', () => {
    const path = tempDbPath();
    const db = new Database(path);
    migrate(db, 3);
    db.close();
    const old = openStore(tempDbPath());
    old.commit([{ streamId: 'vm-a', expectedVersion: 0, events: [ev('t', 1), ev('t', 2)] }], { requestId: 'r', response: () => 'ok' });
    const rows = old.read();
    old.close();
    const w = new Database(path);
    const ins = w.prepare(
      'INSERT INTO events (position, stream_id, version, type, schema_version, time, data, metadata, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    for (const e of rows)
      ins.run(e.position, e.streamId, e.version, e.type, e.schemaVersion, e.time, JSON.stringify(e.data), JSON.stringify(e.metadata), e.hash);
    w.prepare("INSERT INTO requests (request_id, handler, first_position, last_position, response) VALUES ('r', '', 1, 2, '\"ok\"')").run();
    w.close();
    const before = readFileSync(path);
    const s = openStore(path, { readonly: true });
    expect(s.streamVersion('vm-a')).toBe(2);
    expect(s.countCategory('vm')).toBe(1);
    expect(s.findRequest('r')).toEqual({ response: 'ok' });
    expect(s.verify()).toMatchObject({ intact: true, checked: 2, head: { position: 2, hash: rows[1]!.hash } });
    s.close();
    expect(readFileSync(path).equals(before)).toBe(true);
  });
});

describe('fork targets', () => {
  it('a target with a NUL or control character is refused and the file its prefix names is untouched', () => {
    const s = openStore(buildLog());
    const other = tempDbPath('other.db');
    const db = new Database(other);
    db.exec('CREATE TABLE mine (x)');
    db.close();
    const before = readFileSync(other);
    for (const t of [`${other}\0`, `${other}\0.fork`, `${other}\n`]) expect(codeOf(() => s.fork(5, t))).toBe('invalid_request');
    expect(readFileSync(other).equals(before)).toBe(true);
  });

  it(':memory: is invalid_request; a missing directory is not_found, and nothing is created', () => {
    const s = openStore(buildLog());
    expect(codeOf(() => s.fork(5, ':memory:'))).toBe('invalid_request');
    const dir = tempDir();
    expect(codeOf(() => s.fork(5, join(dir, 'missing', 'f.db')))).toBe('not_found');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a read-only store forks', () => {
    const path = buildLog();
    const s = openStore(path, { readonly: true });
    const target = join(tempDir(), 'f.db');
    expect(s.fork(7, target)).toEqual({ events: 7 });
    const f = openStore(target);
    expect(f.verify()).toMatchObject({ intact: true, checked: 7, head: { position: 7, hash: hashAt(s, 7) } });
    expect(f.findRequest('req-3', 'fp-3')).toEqual({ response: { positions: [7] } });
  });
});
