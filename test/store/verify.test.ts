// verify(): the hash chain and the position/version sequences detect edits, deletions,
// reorderings and forged hashes made with raw SQL behind the store's back.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { chainHash, type EventStore } from '../../store/index.js';
import { cleanup, ev, openStore, tempDbPath } from './helpers.js';

afterEach(cleanup);

const COUNT = 12;

/**
 * 12 events in 6 commits, returns the closed store's path. Layout (position: stream@version):
 * 1 vm/a@1 | 2-3 vm/b@1-2 | 4-6 host/h@1-3 | 7 vm/a@2 | 8-9 vm/b@3-4 | 10-12 host/h@4-6
 */
function buildLog(): string {
  const path = tempDbPath();
  const s = openStore(path);
  const streams = ['vm/a', 'vm/b', 'host/h'];
  const versions = new Map<string, number>();
  let pos = 0;
  for (let c = 0; pos < COUNT; c++) {
    const stream = streams[c % 3]!;
    const n = 1 + (c % 3);
    const v = versions.get(stream) ?? 0;
    s.commit([
      {
        streamId: stream,
        expectedVersion: v,
        events: Array.from({ length: n }, (_, j) => ev(`type${(pos + j) % 4}`, 1000 + 10 * (pos + j), { n: pos + j, s: stream }, { handler: 'h' })),
      },
    ]);
    versions.set(stream, v + n);
    pos += n;
  }
  expect(pos).toBe(COUNT);
  expect(s.read().map((e) => `${e.streamId}@${e.version}`)).toEqual([
    'vm/a@1',
    'vm/b@1',
    'vm/b@2',
    'host/h@1',
    'host/h@2',
    'host/h@3',
    'vm/a@2',
    'vm/b@3',
    'vm/b@4',
    'host/h@4',
    'host/h@5',
    'host/h@6',
  ]);
  expect(s.verify()).toMatchObject({ intact: true, checked: COUNT });
  s.close();
  return path;
}

/** Tamper with the closed database using better-sqlite3 directly, then reopen the store. */
function tamper(path: string, sql: (db: Database.Database) => void): EventStore {
  const db = new Database(path);
  try {
    sql(db);
  } finally {
    db.close();
  }
  return openStore(path);
}

describe('verify', () => {
  it('an intact log is intact with checked = count', () => {
    const path = buildLog();
    const s = openStore(path);
    expect(s.lastPosition()).toBe(COUNT);
    expect(s.verify()).toMatchObject({ intact: true, checked: COUNT });
    const ro = openStore(path, { readonly: true });
    expect(ro.verify()).toMatchObject({ intact: true, checked: COUNT });
  });

  it('an empty log is intact with checked = 0', () => {
    const s = openStore(tempDbPath());
    expect(s.verify()).toMatchObject({ intact: true, checked: 0 });
  });

  it.each([1, 5, COUNT])('editing the data of event %i is reported at that position', (p) => {
    const path = buildLog();
    const s = tamper(path, (db) => {
      expect(db.prepare('UPDATE events SET data = ? WHERE position = ?').run('{"n":999,"s":"forged"}', p).changes).toBe(1);
    });
    const r = s.verify();
    expect(r.intact).toBe(false);
    expect(r.firstBrokenPosition).toBe(p);
    expect(r.checked).toBe(p - 1);
    expect(r.reason).toBeTruthy();
  });

  it.each([
    ['type', "UPDATE events SET type = 'forged' WHERE position = ?"],
    ['time', 'UPDATE events SET time = time + 1 WHERE position = ?'],
    ['metadata', `UPDATE events SET metadata = '{"handler":"evil"}' WHERE position = ?`],
    ['schema_version', 'UPDATE events SET schema_version = 2 WHERE position = ?'],
    ['data (whitespace only)', `UPDATE events SET data = replace(data, ',', ', ') WHERE position = ?`],
  ])('editing the %s of one event is reported at that position', (_what, sql) => {
    const path = buildLog();
    const s = tamper(path, (db) => {
      expect(db.prepare(sql).run(7).changes).toBe(1);
    });
    expect(s.verify()).toMatchObject({ intact: false, checked: 6, firstBrokenPosition: 7 });
  });

  it('deleting an event from the middle reports the first missing position', () => {
    const path = buildLog();
    const s = tamper(path, (db) => {
      db.prepare('DELETE FROM events WHERE position IN (6, 9)').run();
    });
    const r = s.verify();
    expect(r).toMatchObject({ intact: false, checked: 5, firstBrokenPosition: 6 });
    expect(r.reason).toMatch(/6/);
  });

  it('deleting the first event reports position 1', () => {
    const path = buildLog();
    const s = tamper(path, (db) => {
      db.prepare('DELETE FROM events WHERE position = 1').run();
    });
    expect(s.verify()).toMatchObject({ intact: false, checked: 0, firstBrokenPosition: 1 });
  });

  it('swapping two events’ contents (reordering) reports the first swapped position', () => {
    const path = buildLog();
    // positions 4 (host/h@1) and 9 (vm/b@4): swap stream, version, type, time, data, metadata
    const s = tamper(path, (db) => {
      const get = db.prepare('SELECT stream_id, version, type, schema_version, time, data, metadata FROM events WHERE position = ?');
      const a = get.get(4) as Record<string, unknown>;
      const b = get.get(9) as Record<string, unknown>;
      expect(a).not.toEqual(b);
      const put = db.prepare(
        'UPDATE events SET stream_id = @stream_id, version = @version, type = @type, schema_version = ' +
          '@schema_version, time = @time, data = @data, metadata = @metadata WHERE position = @position',
      );
      db.transaction(() => {
        // park one row's (stream, version) to keep UNIQUE(stream_id, version) satisfied mid-swap
        db.prepare("UPDATE events SET stream_id = '__tmp__' WHERE position = 9").run();
        put.run({ ...b, position: 4 });
        put.run({ ...a, position: 9 });
      })();
    });
    expect(s.verify()).toMatchObject({ intact: false, checked: 3, firstBrokenPosition: 4 });
  });

  it('swapping two whole rows, hashes included, reports the first swapped position', () => {
    const path = buildLog();
    const s = tamper(path, (db) => {
      db.transaction(() => {
        db.prepare('UPDATE events SET position = -1 WHERE position = 3').run();
        db.prepare('UPDATE events SET position = 3 WHERE position = 8').run();
        db.prepare('UPDATE events SET position = 8 WHERE position = -1').run();
      })();
    });
    expect(s.verify()).toMatchObject({ intact: false, checked: 2, firstBrokenPosition: 3 });
  });

  it('swapping only the data of two events of the same stream and type is still caught', () => {
    const path = buildLog();
    const s = tamper(path, (db) => {
      const rows = db.prepare("SELECT position, data FROM events WHERE stream_id = 'host/h' ORDER BY position").all() as { position: number; data: string }[];
      expect(rows.length).toBeGreaterThanOrEqual(2);
      const [x, y] = [rows[1]!, rows[4]!]; // positions 5 and 11
      expect([x.position, y.position]).toEqual([5, 11]);
      expect(x.data).not.toBe(y.data);
      const upd = db.prepare('UPDATE events SET data = ? WHERE position = ?');
      upd.run(y.data, x.position);
      upd.run(x.data, y.position);
    });
    expect(s.verify()).toMatchObject({ intact: false, firstBrokenPosition: 5, checked: 4 });
  });

  it('editing the hash of the last event reports that position', () => {
    const path = buildLog();
    const s = tamper(path, (db) => {
      db.prepare("UPDATE events SET hash = 'f' || substr(hash, 2) WHERE position = ? AND substr(hash, 1, 1) != 'f'").run(COUNT);
      db.prepare("UPDATE events SET hash = '0' || substr(hash, 2) WHERE position = ? AND substr(hash, 1, 1) = 'f'").run(COUNT);
    });
    expect(s.verify()).toMatchObject({ intact: false, checked: COUNT - 1, firstBrokenPosition: COUNT });
  });

  it('recomputing a forged event’s own hash does not help: the next event’s link breaks', () => {
    const path = buildLog();
    // forge event 5 and give it a correct hash; event 6 still chains from the old hash
    const s = tamper(path, (db) => {
      db.prepare('UPDATE events SET data = ? WHERE position = 5').run('{"n":4,"s":"forged"}');
    });
    const e5 = s.read({ fromPosition: 5, toPosition: 5 })[0]!;
    const prev = s.read({ fromPosition: 4, toPosition: 4 })[0]!.hash;
    s.close();
    const newHash = chainHash(prev, {
      position: 5,
      streamId: e5.streamId,
      version: e5.version,
      type: e5.type,
      schemaVersion: e5.schemaVersion,
      time: e5.time.toString(),
      data: '{"n":4,"s":"forged"}',
      metadata: JSON.stringify(e5.metadata),
    });
    const s2 = tamper(path, (db) => {
      db.prepare('UPDATE events SET hash = ? WHERE position = 5').run(newHash);
    });
    expect(s2.verify()).toMatchObject({ intact: false, checked: 5, firstBrokenPosition: 6 });
  });

  it('a version gap within a stream is reported where it happens', () => {
    const path = buildLog();
    const s = tamper(path, (db) => {
      // vm/a@2 at position 7 becomes vm/a@7
      expect(db.prepare("UPDATE events SET version = 7 WHERE position = 7 AND stream_id = 'vm/a'").run().changes).toBe(1);
    });
    const r = s.verify();
    expect(r).toMatchObject({ intact: false, firstBrokenPosition: 7, checked: 6 });
    expect(r.reason).toMatch(/version/);
  });
});
