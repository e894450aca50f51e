// An EventStore (SQLite) seen through the AsyncEventStore interface, so code and tests written
// once against the async contract run on both engines. The SQLite store does its work when a
// method is called: the promises come back already settled. Inside commit's alsoWrite and
// transaction(), writes made through this view before the body's first await of anything else
// are in the transaction (better-sqlite3 transactions are synchronous and cannot span an await).
import type { AsyncCommitOptions, AsyncEventStore } from './async-types.js';
import type { AppendBatch, EventStore, ReadOptions, SnapshotRecord, StreamReplayer, VerifyAnchor } from './types.js';

export function asyncView(store: EventStore): AsyncEventStore {
  const settle = <T>(fn: () => T): Promise<T> => {
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e);
    }
  };
  return {
    path: store.path,
    commit: (batches: AppendBatch[], opts: AsyncCommitOptions = {}) =>
      settle(() => store.commit(batches, { ...opts, alsoWrite: opts.alsoWrite && ((w) => void opts.alsoWrite!(w)) })),
    findRequest: (id: string, fingerprint?: string) => settle(() => store.findRequest(id, fingerprint)),
    read: (opts?: ReadOptions) => settle(() => store.read(opts)),
    scan: (opts?: ReadOptions) => ({
      async *[Symbol.asyncIterator]() {
        yield* store.scan(opts);
      },
    }),
    streamVersion: (streamId: string, atPosition?: number) => settle(() => store.streamVersion(streamId, atPosition)),
    streams: (prefix?: string) => settle(() => store.streams(prefix)),
    openStreams: (prefix: string, endTypes: string[]) => settle(() => store.openStreams(prefix, endTypes)),
    lastPosition: () => settle(() => store.lastPosition()),
    positionAtTime: (t: bigint) => settle(() => store.positionAtTime(t)),
    positionOfVersion: (streamId: string, version: number) => settle(() => store.positionOfVersion(streamId, version)),
    dueStreams: (t: bigint, prefix?: string) => settle(() => store.dueStreams(t, prefix)),
    countCategory: (category: string) => settle(() => store.countCategory(category)),
    saveSnapshot: (s: SnapshotRecord) => settle(() => store.saveSnapshot(s)),
    latestSnapshot: (streamId: string, codeVersion: string, maxPosition?: number) => settle(() => store.latestSnapshot(streamId, codeVersion, maxPosition)),
    snapshotGaps: (every: number, codeVersion: string) => settle(() => store.snapshotGaps?.(every, codeVersion) ?? []),
    verify: (anchor?: VerifyAnchor, replayer?: StreamReplayer) => settle(() => store.verify(anchor, replayer)),
    fork: (position: number, target: string) => settle(() => store.fork(position, target)),
    transaction: <T>(fn: () => Promise<T>) => settle(() => store.transaction(fn)).then((p) => p),
    close: () => settle(() => store.close()),
  };
}
