// Time travel reads at most one snapshot interval of a stream's events: the writer keeps a snapshot
// at every SNAPSHOT_EVERY-th (100th) version of every stream in the commit that records it, and a
// rebuild at any version starts from the nearest one below it, read-only and in a fresh store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeStores, storeFor } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { toJson } from '../../machines/codec.js';
import { rebuildStream, SNAPSHOT_EVERY } from '../../machines/rebuild.js';
import Database from 'better-sqlite3';
import type { EventStore } from '../../store/types.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { CODE_VERSION } from '../../machines/version.js';
import { streamReplayer } from '../../machines/replay-check.js';
import { backfillSnapshots } from '../../machines/snapshot-backfill.js';

const dir = mkdtempSync(join(tmpdir(), 'clockledger-snap-'));
afterAll(() => {
  closeStores();
  rmSync(dir, { recursive: true, force: true });
});

/** The store with its scans counted (rows read). */
function counting(store: EventStore): { store: EventStore; rows: () => number } {
  let n = 0;
  const s = Object.create(store) as EventStore;
  s.scan = (o) => {
    const it = store.scan(o);
    return (function* () {
      for (const r of it) n++, yield r;
    })() as ReturnType<EventStore['scan']>;
  };
  // (a replay pass reads rows as arrays where the store can)
  s.scanRows = (o) => {
    const it = store.scanRows!(o);
    return (function* () {
      for (const r of it) n++, yield r;
    })();
  };
  return { store: s, rows: () => n };
}

describe('snapshots every SNAPSHOT_EVERY versions of a stream', () => {
  it('written by the writer: a fresh read-only rebuild at version 257 reads only the 57 events after the snapshot at 200', async () => {
    expect(SNAPSHOT_EVERY).toBe(100);
    const db = join(dir, 'l.db');
    const ok = async (r: Promise<{ ok: boolean }>) => expect((await r).ok).toBe(true);
    await ok(handlers.createHost({ hostId: 'h', tscKhz: 2_500_000 }, { db }));
    await ok(handlers.createVm({ vmId: 'a', hostId: 'h', vcpus: 1 }, { db }));
    const store = storeFor({ db });
    while (store.streamVersion('vm-a') < 300) await ok(handlers.ioctl({ vmId: 'a', vcpu: 0, ioctl: 'KVM_GET_TSC_KHZ' }, { db }));
    while (store.streamVersion('ledger') < 120) await ok(handlers.advanceTime({ ns: '1000' }, { db }));
    // no rebuild ran: the writer's commits kept the snapshots at 100, 200 and 300
    const reader = openEventStore(db, { readonly: true });
    try {
      for (const v of [100, 200, 300]) expect(reader.latestSnapshot('vm-a', CODE_VERSION, reader.positionOfVersion('vm-a', v))?.version).toBe(v);
      // and of the other kinds: the ledger stream (one event per advance of time)
      expect(reader.latestSnapshot('ledger', CODE_VERSION)?.version).toBe(100);
      const fromScratch = toJson(rebuildStream(reader, 'vm-a', { version: 257 }, { saveSnapshots: false }).state);
      const c = counting(reader);
      const r = rebuildStream(c.store, 'vm-a', { version: 257 });
      expect(r.version).toBe(257);
      expect(c.rows()).toBe(57);
      expect(toJson(r.state)).toEqual(fromScratch);
      // the writer's snapshots are the states replay gives, bound where they claim
      const v = reader.verify(undefined, streamReplayer());
      expect(v.intact).toBe(true);
      expect(v.coverage!.snapshotStates).toBe(4);
    } finally {
      reader.close();
    }
  });
});

describe('a ledger written before writers kept snapshots', () => {
  it('gets them once, before its first write, without an event rewritten', async () => {
    const db = join(dir, 'old.db');
    const ok = async (r: Promise<{ ok: boolean }>) => expect((await r).ok).toBe(true);
    await ok(handlers.createHost({ hostId: 'h', tscKhz: 2_500_000 }, { db }));
    await ok(handlers.createVm({ vmId: 'a', hostId: 'h', vcpus: 1 }, { db }));
    const store = storeFor({ db });
    while (store.streamVersion('vm-a') < 250) await ok(handlers.ioctl({ vmId: 'a', vcpu: 0, ioctl: 'KVM_GET_TSC_KHZ' }, { db }));
    closeStores();
    // as an older writer left it: no snapshot at all
    const raw = new Database(db);
    raw.prepare('DELETE FROM snapshots').run();
    const before = raw.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1').get() as { position: number; hash: string };
    raw.close();
    const gaps = () => {
      const s = openEventStore(db, { readonly: true });
      try {
        return s.snapshotGaps!(SNAPSHOT_EVERY, CODE_VERSION);
      } finally {
        s.close();
      }
    };
    expect(gaps()).toEqual(['vm-a']);
    // the next write brings it up to date first
    await ok(handlers.advanceTime({ ns: '1' }, { db }));
    expect(gaps()).toEqual([]);
    const s = openEventStore(db, { readonly: true });
    try {
      expect(s.read({ toPosition: before.position }).at(-1)!.hash).toBe(before.hash);
      expect(s.latestSnapshot('vm-a', CODE_VERSION)?.version).toBe(200);
      const v = s.verify(undefined, streamReplayer());
      expect(v.intact).toBe(true);
    } finally {
      s.close();
    }
    // a second pass has nothing to do
    const w = openEventStore(db);
    try {
      expect(backfillSnapshots(w)).toEqual({ streams: 0, snapshots: 0, events: 0 });
    } finally {
      w.close();
    }
  });
});
