// The SQLite side of the store seam: the synchronous store read directly, committed directly.
import type { EventStore } from '../../store/types.js';
import { rebuildStream, rememberTip } from '../rebuild.js';
import { CODE_VERSION } from '../version.js';
import type { StreamReader, SyncLogPort, UnitCommit } from './port.js';

const ports = new WeakMap<EventStore, SyncLogPort>();

/** The log port of a synchronous store (one per store). */
export function sqlitePort(store: EventStore): SyncLogPort {
  let p = ports.get(store);
  if (!p) ports.set(store, (p = makePort(store)));
  return p;
}

/** A store, or a reader given as it is (the session reads through either). */
export function readerOf(log: EventStore | StreamReader): StreamReader {
  return 'readStream' in log ? log : sqlitePort(log);
}

function makePort(store: EventStore): SyncLogPort {
  return {
    mode: 'sync',
    readStream: (streamId) => rebuildStream(store, streamId),
    lastEvent: () => lastEventOf(store),
    dueStreams: (t, prefix) => store.dueStreams(t, prefix),
    countCategory: (category) => store.countCategory(category),
    streamVersion: (streamId) => store.streamVersion(streamId),
    openStreams: (prefix, endTypes) => store.openStreams(prefix, endTypes),
    remember: (streamId, r) => rememberTip(store, streamId, r),
    findRequest: (requestId, fingerprint) => store.findRequest(requestId, fingerprint),
    commit(u: UnitCommit) {
      // Snapshots (kept for later audits, and every SNAPSHOT_EVERY versions) go in the same transaction as the events.
      const snapshots = u.snapshots.map((sn) => ({ ...sn, codeVersion: CODE_VERSION }));
      return store.commit(u.batches, { requestId: u.requestId, fingerprint: u.fingerprint, handler: u.handler, response: u.response, snapshots });
    },
  };
}

function lastEventOf(store: EventStore): { position: number; time: bigint } | null {
  const last = store.lastPosition();
  if (last === 0) return null;
  for (const r of store.scan({ fromPosition: last, toPosition: last, withoutMetadata: true })) return { position: last, time: BigInt(r.time) };
  return null;
}

/**
 * The instant the log has reached: the ledger's time, or its last event's if that is later. A
 * session records the ledger's advance last, at commit; a fork cut inside that commit keeps the
 * events and loses the ledger's record of them, and its clock must not run behind its own log.
 * (Positions grow with time, so the last event is the latest.)
 */
export function logTime(store: EventStore | StreamReader, ledgerNow: bigint): bigint {
  const last = readerOf(store).lastEvent();
  return last !== null && last.time > ledgerNow ? last.time : ledgerNow;
}
