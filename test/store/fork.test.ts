// fork(position, target): a new database with the log's prefix 1..position, the requests that
// finished within it, and nothing else; the original is never affected.
import Database from 'better-sqlite3';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { latestSchemaVersion, StoreError, type EventStore } from '../../store/index.js';
import { cleanup, ev, openStore, tempDbPath, tempDir } from './helpers.js';

afterEach(cleanup);

/**
 * 10 events with requests: req-a → 1..3, req-empty → no events (recorded after 3),
 * req-b → 4..6, req-c → 7..8 (spans the fork point 7), req-d → 9..10; plus snapshots at 2 and 8.
 */
function buildOriginal(): { path: string; store: EventStore } {
  const path = tempDbPath('original.db');
  const s = openStore(path, { codeVersion: 'cv1' });
  const resp = (w: { position: number }[]) => ({ positions: w.map((x) => x.position) });
  s.commit([{ streamId: 'vm/a', expectedVersion: 0, events: [ev('a1', 10), ev('a2', 20), ev('a3', 30)] }], {
    requestId: 'req-a',
    handler: 'h',
    response: resp,
  });
  s.commit([], { requestId: 'req-empty', handler: 'h', response: () => 'nothing' });
  s.commit(
    [
      { streamId: 'vm/b', expectedVersion: 0, events: [ev('b1', 40)] },
      { streamId: 'vm/a', expectedVersion: 3, events: [ev('a4', 50), ev('a5', 60)] },
    ],
    { requestId: 'req-b', handler: 'h', response: resp },
  );
  s.commit([{ streamId: 'vm/b', expectedVersion: 1, events: [ev('b2', 70), ev('b3', 80)] }], { requestId: 'req-c', handler: 'h', response: resp });
  s.commit([{ streamId: 'host/h', expectedVersion: 0, events: [ev('h1', 90), ev('h2', 100)] }], { requestId: 'req-d', handler: 'h', response: resp });
  s.saveSnapshot({ streamId: 'vm/a', version: 2, position: 2, codeVersion: 'cv1', state: Buffer.from('a@2') });
  s.saveSnapshot({ streamId: 'vm/b', version: 3, position: 8, codeVersion: 'cv1', state: Buffer.from('b@3') });
  expect(s.lastPosition()).toBe(10);
  return { path, store: s };
}

function requestIds(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT request_id FROM requests ORDER BY request_id').pluck().all() as string[];
  } finally {
    db.close();
  }
}

describe('fork', () => {
  it('holds exactly events 1..position with the same hashes, and verifies intact', () => {
    const { store } = buildOriginal();
    const target = join(tempDir(), 'fork.db');
    expect(store.fork(7, target)).toEqual({ events: 7 });
    const f = openStore(target);
    expect(f.lastPosition()).toBe(7);
    expect(f.read()).toEqual(store.read({ toPosition: 7 }));
    expect(f.verify()).toMatchObject({ intact: true, checked: 7 });
    expect(f.streams()).toEqual(['vm/a', 'vm/b']);
    expect(f.streamVersion('vm/b')).toBe(2);
    // categories count the fork's streams only (host/h begins after the fork point)
    expect([f.countCategory('vm/a'), f.countCategory('vm/b'), f.countCategory('host/h')]).toEqual([1, 1, 0]);
    expect(store.countCategory('host/h')).toBe(1);
    const db = new Database(target, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(latestSchemaVersion());
    } finally {
      db.close();
    }
  });

  it('copies the requests whose last_position ≤ position (and those without events), not later ones', () => {
    const { store } = buildOriginal();
    const target = join(tempDir(), 'fork.db');
    store.fork(7, target);
    expect(requestIds(target)).toEqual(['req-a', 'req-b', 'req-empty']);
    const f = openStore(target);
    expect(f.findRequest('req-a')).toEqual({ response: { positions: [1, 2, 3] } });
    expect(f.findRequest('req-b')).toEqual({ response: { positions: [4, 5, 6] } });
    expect(f.findRequest('req-empty')).toEqual({ response: 'nothing' });
    // req-c wrote 7..8: only partly inside the fork, so it is not remembered there
    expect(f.findRequest('req-c')).toBeUndefined();
    expect(f.findRequest('req-d')).toBeUndefined();
    // and can therefore be replayed on the fork
    const r = f.commit([{ streamId: 'vm/b', expectedVersion: 2, events: [ev('b3', 80)] }], { requestId: 'req-c' });
    expect(r.duplicate).toBe(false);
    // a request inside the fork is still a duplicate there
    expect(f.commit([{ streamId: 'vm/a', expectedVersion: 0, events: [ev('x', 1)] }], { requestId: 'req-a' }).duplicate).toBe(true);
  });

  it('at a request boundary keeps that request', () => {
    const { store } = buildOriginal();
    const target = join(tempDir(), 'fork.db');
    expect(store.fork(8, target)).toEqual({ events: 8 });
    expect(requestIds(target)).toEqual(['req-a', 'req-b', 'req-c', 'req-empty']);
  });

  it('copies the snapshots at or before the position only', () => {
    const { store } = buildOriginal();
    const target = join(tempDir(), 'fork.db');
    store.fork(7, target);
    const f = openStore(target);
    expect(f.latestSnapshot('vm/a', 'cv1')?.state).toEqual(Buffer.from('a@2'));
    expect(f.latestSnapshot('vm/b', 'cv1')).toBeUndefined();
  });

  it('fork(0) is an empty log; a position past the end copies everything', () => {
    const { store } = buildOriginal();
    const empty = join(tempDir(), 'empty.db');
    expect(store.fork(0, empty)).toEqual({ events: 0 });
    const e = openStore(empty);
    expect(e.lastPosition()).toBe(0);
    expect(e.verify()).toMatchObject({ intact: true, checked: 0 });
    expect(requestIds(empty)).toEqual(['req-empty']);

    const all = join(tempDir(), 'all.db');
    expect(store.fork(1000, all)).toEqual({ events: 10 });
    const a = openStore(all);
    expect(a.read()).toEqual(store.read());
    expect(a.verify()).toMatchObject({ intact: true, checked: 10 });
    expect(requestIds(all)).toEqual(requestIds(store.path));
  });

  it('refuses an existing target path with invalid_request and does not touch it', () => {
    const { store } = buildOriginal();
    const dir = tempDir();

    const textFile = join(dir, 'notes.txt');
    writeFileSync(textFile, 'precious\n');
    const otherDb = join(dir, 'other.db');
    const other = openStore(otherDb);
    other.commit([{ streamId: 'mine', expectedVersion: 0, events: [ev('keep', 1)] }]);
    other.close();
    const emptyFile = join(dir, 'empty');
    writeFileSync(emptyFile, '');

    for (const target of [textFile, otherDb, emptyFile]) {
      const before = readFileSync(target);
      let err: unknown;
      try {
        store.fork(5, target);
      } catch (e) {
        err = e;
      }
      expect(err, target).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('invalid_request');
      expect(readFileSync(target).equals(before), target).toBe(true);
      expect(existsSync(`${target}-wal`)).toBe(false);
    }
    const o = openStore(otherDb);
    expect(o.read().map((e) => e.type)).toEqual(['keep']);
    // the original is unaffected by the refusals
    expect(store.lastPosition()).toBe(10);
    expect(store.verify()).toMatchObject({ intact: true, checked: 10 });
  });

  it('refuses a bad position without creating the target', () => {
    const { store } = buildOriginal();
    for (const p of [-1, 1.5, Number.NaN]) {
      const target = join(tempDir(), 'fork.db');
      expect(() => store.fork(p, target)).toThrow(StoreError);
      try {
        store.fork(p, target);
      } catch (e) {
        expect((e as StoreError).code).toBe('invalid_request');
      }
      expect(existsSync(target)).toBe(false);
    }
  });

  it('appending to the fork does not change the original', () => {
    const { path, store } = buildOriginal();
    const before = store.read();
    const reqBefore = requestIds(path);
    const target = join(tempDir(), 'fork.db');
    store.fork(6, target);
    const f = openStore(target);
    const r = f.commit(
      [
        { streamId: 'vm/a', expectedVersion: 5, events: [ev('fork-a6', 65)] },
        { streamId: 'vm/new', expectedVersion: 0, events: [ev('fork-n1', 66)] },
      ],
      { requestId: 'fork-only' },
    );
    expect(r.written.map((w) => w.position)).toEqual([7, 8]);
    expect(f.verify()).toMatchObject({ intact: true, checked: 8 });
    // the fork diverged: position 7 differs from the original's
    expect(f.read({ fromPosition: 7, toPosition: 7 })[0]!.hash).not.toBe(before[6]!.hash);

    // the original, through the open store and after reopening
    expect(store.read()).toEqual(before);
    expect(store.streams()).toEqual(['host/h', 'vm/a', 'vm/b']);
    expect(store.findRequest('fork-only')).toBeUndefined();
    store.close();
    const again = openStore(path);
    expect(again.read()).toEqual(before);
    expect(again.verify()).toMatchObject({ intact: true, checked: 10 });
    expect(requestIds(path)).toEqual(reqBefore);

    // and appending to the original does not change the fork
    again.commit([{ streamId: 'vm/a', expectedVersion: 5, events: [ev('orig-a6', 110)] }]);
    expect(f.lastPosition()).toBe(8);
    expect(f.read({ fromPosition: 7 }).map((e) => e.type)).toEqual(['fork-a6', 'fork-n1']);
  });

  it('a store can be forked twice, and a fork can be forked', () => {
    const { store } = buildOriginal();
    const f1 = join(tempDir(), 'f1.db');
    const f2 = join(tempDir(), 'f2.db');
    store.fork(9, f1);
    store.fork(3, f2);
    const a = openStore(f1);
    const f3 = join(tempDir(), 'f3.db');
    expect(a.fork(4, f3)).toEqual({ events: 4 });
    const c = openStore(f3);
    expect(c.read()).toEqual(store.read({ toPosition: 4 }));
    expect(c.verify()).toMatchObject({ intact: true, checked: 4 });
    expect(openStore(f2).read()).toEqual(store.read({ toPosition: 3 }));
  });
});
