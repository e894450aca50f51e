// The event-log interface for engines that answer asynchronously (PostgreSQL): EventStore method by
// method, every result a Promise and scan an AsyncIterable. Same semantics as store/types.ts.
import type {
  AppendBatch,
  CommitOptions,
  CommitResult,
  EventRow,
  EventStore,
  RawEvent,
  ReadOptions,
  SnapshotRecord,
  StoredEvent,
  WrittenEvent,
} from './types.js';

export interface AsyncCommitOptions extends Omit<CommitOptions, 'alsoWrite'> {
  /**
   * More writes that belong to the same transaction, once positions are known: the store's own
   * methods called from here (awaited) run inside the commit's transaction.
   */
  alsoWrite?: (written: WrittenEvent[]) => void | Promise<void>;
}

/** What one request reads before it decides, asked in one go (StreamsLoader.loadStreams). */
export interface StreamsLoad {
  /** streams to read: each from a position the caller already holds it at (0: from its start) */
  streams: { streamId: string; after: number }[];
  /** the snapshots to start from are this code version's */
  codeVersion: string;
  /** the stored answer of a request id (as findRequest, with this fingerprint) */
  request?: { requestId: string; fingerprint?: string };
  /** the wake index of a prefix up to an instant (upTo), or up to the last event's instant plus `ahead`; the streams it names are read too */
  due?: { prefix: string; upTo?: bigint; ahead?: bigint };
}

/** One stream as loadStreams read it. */
export interface LoadedStream {
  streamId: string;
  /** its version now (0: no such stream) */
  version: number;
  /** the position it was asked from */
  after: number;
  /** the version of the event at `after` if that is this stream's (null: it is not, or after is 0) */
  afterVersion: number | null;
  /** its latest snapshot after `after` that is bound where it claims (none: undefined) */
  snapshot?: SnapshotRecord;
  /** its events after the snapshot (or after `after`), in order */
  rows: EventRow[];
}

export interface StreamsLoaded {
  streams: LoadedStream[];
  /** the last event (null: the log is empty) */
  head: { position: number; time: bigint; hash: string } | null;
  /** the request's stored answer (undefined: none) */
  answer?: { response: unknown };
  due?: { prefix: string; upTo: bigint; list: { streamId: string; wakeAt: bigint }[] };
}

/** An engine that reads what a request needs in one round trip. */
export interface StreamsLoader {
  loadStreams(spec: StreamsLoad): Promise<StreamsLoaded>;
}

/**
 * One stream as a scoped read asks it (StreamBundleLoader.streamBundle): everything a rebuild of
 * it up to a bound reads, in one round trip.
 */
export interface StreamBundle {
  /** the stream's version now (0: no such stream) */
  version: number;
  /** the last event (null: the log is empty) */
  head: { position: number; time: bigint } | null;
  /** the position of the version asked (undefined: none asked, or the stream has no such version) */
  versionPosition?: number;
  /** the last position the bundle covers: the least of the head, the position asked and the version's */
  upTo: number;
  /**
   * the latest snapshot of the code version at or before upTo, bound where it claims (null: none;
   * undefined: the latest is not bound where it claims, and the rows below are not given)
   */
  snapshot: SnapshotRecord | null | undefined;
  /** the stream's events after the snapshot (from its start without one), without metadata, in order, at most `limit` */
  rows: RawEvent[];
  /** the last position the rows cover, every event of the stream up to it given (upTo, unless cut at the limit) */
  rowsTo: number;
  /** the stream's last event at or before upTo, in full (undefined: none) */
  last?: StoredEvent;
}

/** An engine that reads a stream's bundle in one round trip. */
export interface StreamBundleLoader {
  streamBundle(streamId: string, opts: { codeVersion: string; maxPosition?: number; version?: number; limit: number }): Promise<StreamBundle>;
}

/** An engine's methods with every answer a Promise (the rest of the interface as it is). */
type Promised<S> = { [K in keyof S]: S[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : S[K] };

/**
 * EventStore (store/types.ts) method by method, each answer a Promise: derived from it, so the two
 * cannot drift. Where the shapes differ: commit's alsoWrite may be async, scan is an AsyncIterable,
 * a transaction's work is async, and snapshotGaps is required (the optional row scans are not here).
 */
export interface AsyncEventStore extends Promised<Omit<EventStore, 'commit' | 'scan' | 'scanRows' | 'scanChunks' | 'snapshotGaps' | 'transaction'>> {
  commit(batches: AppendBatch[], opts?: AsyncCommitOptions): Promise<CommitResult>;
  scan(opts?: ReadOptions): AsyncIterable<RawEvent>;
  snapshotGaps(every: number, codeVersion: string): Promise<string[]>;
  /** run fn in one write transaction; the store's methods awaited inside it take part in it */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
}
