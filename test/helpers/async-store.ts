// An asynchronous engine for tests: a SQLite store behind promises, every answer one turn of the
// event loop later (as a network round trip would be), counting the calls it answers.
import type { AsyncLogEngine } from '../../machines/session/index.js';
import type { EventStore, WrittenEvent } from '../../store/types.js';

export interface CountingEngine extends AsyncLogEngine {
  calls: Record<string, number>;
}

/** `beforeCommit` runs before each commit reaches the store (another writer may get in there). */
export function asyncWrapper(store: EventStore, beforeCommit?: () => Promise<void>): CountingEngine {
  const calls: Record<string, number> = {};
  const later = async <T>(name: string, fn: () => T): Promise<T> => {
    calls[name] = (calls[name] ?? 0) + 1;
    await new Promise((r) => setImmediate(r));
    return fn();
  };
  return {
    calls,
    path: store.path,
    async commit(batches, opts = {}) {
      // (SQLite cannot wait inside its transaction: the extra writes follow it, before the answer)
      let written: WrittenEvent[] | null = null;
      await beforeCommit?.();
      const r = await later('commit', () => store.commit(batches, { ...opts, alsoWrite: (w) => void (written = w) }));
      if (written && opts.alsoWrite) await opts.alsoWrite(written);
      return r;
    },
    findRequest: (requestId, fingerprint) => later('findRequest', () => store.findRequest(requestId, fingerprint)),
    async *scan(opts) {
      // (rows read in full first: the connection cannot write while a scan is open)
      for (const r of await later('scan', () => [...store.scan(opts)])) yield r;
    },
    streamVersion: (streamId) => later('streamVersion', () => store.streamVersion(streamId)),
    lastPosition: () => later('lastPosition', () => store.lastPosition()),
    positionOfVersion: (streamId, version) => later('positionOfVersion', () => store.positionOfVersion(streamId, version)),
    dueStreams: (t, prefix) => later('dueStreams', () => store.dueStreams(t, prefix)),
    countCategory: (category) => later('countCategory', () => store.countCategory(category)),
    openStreams: (prefix, endTypes) => later('openStreams', () => store.openStreams(prefix, endTypes)),
    saveSnapshot: (s) => later('saveSnapshot', () => store.saveSnapshot(s)),
    latestSnapshot: (streamId, codeVersion, maxPosition) => later('latestSnapshot', () => store.latestSnapshot(streamId, codeVersion, maxPosition)),
  };
}
