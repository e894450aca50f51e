// Reading one stream from a position (time travel from its nearest snapshot): one seek on
// events_by_stream_position (migration 008) and a range read in order, not a walk over every
// event of the stream and a sort. A log written before migration 008 gains the index and its
// hash chain still verifies.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { latestSchemaVersion, migrate } from '../../store/index.js';
import { cleanup, ev, openStore, tempDbPath } from './helpers.js';

afterEach(cleanup);

const STREAM_SCAN = 'SELECT position FROM events WHERE position >= ? AND position <= ? AND stream_id = ? ORDER BY position';

function plan(db: Database.Database, sql: string): string[] {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(1, 2, 'vm-a') as { detail: string }[]).map((r) => r.detail);
}

describe('a stream read from a position', () => {
  it('is one seek on (stream_id, position) and needs no sort', () => {
    const path = tempDbPath();
    openStore(path).close();
    const db = new Database(path, { readonly: true });
    try {
      expect(plan(db, STREAM_SCAN)).toEqual(['SEARCH events USING COVERING INDEX events_by_stream_position (stream_id=? AND position>? AND position<?)']);
    } finally {
      db.close();
    }
  });

  it('an old log (schema 7) gains the index; its events, order and hash chain are kept', () => {
    const path = tempDbPath();
    const old = new Database(path);
    migrate(old, 7);
    old.close();
    const s = openStore(path); // migrates 7 -> latest
    for (let i = 0; i < 6; i++) s.commit([{ streamId: i % 2 ? 'vm-a' : 'vm-b', expectedVersion: 'any', events: [ev('tick', i, { i })] }]);
    s.close();
    // written at schema 7 by the same rows: drop what 008 and later added, and the version, as a log before 008
    const w = new Database(path);
    w.exec('DROP INDEX events_by_stream_position; DROP INDEX events_by_request; DROP INDEX requests_by_seq');
    w.exec('ALTER TABLE requests DROP COLUMN seq; ALTER TABLE snapshots DROP COLUMN chain_hash; ALTER TABLE snapshots DROP COLUMN binding');
    w.pragma('user_version = 7');
    const before = w.prepare('SELECT position, stream_id, version, hash FROM events ORDER BY position').all();
    w.close();

    const s2 = openStore(path);
    expect(s2.verify()).toMatchObject({ intact: true, checked: 6 });
    expect(s2.read({ streamId: 'vm-a', fromPosition: 3, toPosition: 6 }).map((e) => [e.position, e.version, (e.data as { i: number }).i])).toEqual([
      [4, 2, 3],
      [6, 3, 5],
    ]);
    s2.close();
    const after = new Database(path, { readonly: true });
    expect(after.prepare('SELECT position, stream_id, version, hash FROM events ORDER BY position').all()).toEqual(before);
    expect(after.pragma('user_version', { simple: true })).toBe(latestSchemaVersion());
    expect(plan(after, STREAM_SCAN)[0]).toContain('events_by_stream_position');
    after.close();
  });
});
