// Time travel reads at most one snapshot interval of a stream's events: snapshots are written every
// SNAPSHOT_EVERY (100) versions, and a rebuild at any version starts from the nearest one below it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeStores, storeFor } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { toJson } from '../../machines/codec.js';
import { clearRebuildCache, rebuildStream, SNAPSHOT_EVERY } from '../../machines/rebuild.js';
import type { EventStore } from '../../store/types.js';

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
  it('a rebuild at version 257 reads only the 57 events after the snapshot at 200, and equals a rebuild from scratch', async () => {
    expect(SNAPSHOT_EVERY).toBe(100);
    const db = join(dir, 'l.db');
    const ok = async (r: Promise<{ ok: boolean }>) => expect((await r).ok).toBe(true);
    await ok(handlers.createHost({ hostId: 'h', tscKhz: 2_500_000 }, { db }));
    await ok(handlers.createVm({ vmId: 'a', hostId: 'h', vcpus: 1 }, { db }));
    const store = storeFor({ db });
    while (store.streamVersion('vm-a') < 300) await ok(handlers.ioctl({ vmId: 'a', vcpu: 0, ioctl: 'KVM_GET_TSC_KHZ' }, { db }));
    // a full rebuild writes the snapshots (at 100, 200, 300)
    clearRebuildCache();
    const fromScratch = toJson(rebuildStream(store, 'vm-a', { version: 257 }, { saveSnapshots: false }).state);
    clearRebuildCache();
    rebuildStream(store, 'vm-a');
    clearRebuildCache();
    const c = counting(store);
    const r = rebuildStream(c.store, 'vm-a', { version: 257 });
    expect(r.version).toBe(257);
    expect(c.rows()).toBe(57);
    expect(toJson(r.state)).toEqual(fromScratch);
  });
});
