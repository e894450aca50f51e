// The event-log interface: generic, knows nothing of what the events mean.

/** Who recorded an event and why (every field optional; unknown fields are kept). */
export interface EventMetadata {
  handler?: string;
  requestId?: string;
  correlationId?: string;
  causationId?: string;
  profile?: string;
  codeVersion?: string;
  [key: string]: unknown;
}

export interface NewEvent {
  type: string;
  /** version of this event type's data schema */
  schemaVersion?: number;
  /** the simulated instant (ns) */
  time: bigint;
  /** JSON-safe data: u64 values as decimal strings */
  data: unknown;
  metadata?: EventMetadata;
  /**
   * The producer built `data` in canonical order already (every object's keys sorted, JSON
   * values only): the store writes JSON.stringify(data) without checking or copying it.
   */
  canonical?: boolean;
}

export interface StoredEvent<D = unknown> {
  position: number;
  streamId: string;
  version: number;
  type: string;
  schemaVersion: number;
  time: bigint;
  data: D;
  metadata: EventMetadata;
  hash: string;
}

/** A row as stored, JSON left unparsed: for fast scans that parse only what they need. */
export interface RawEvent {
  position: number;
  streamId: string;
  version: number;
  type: string;
  schemaVersion: number;
  /** decimal string */
  time: string;
  data: string;
  metadata: string;
}

/**
 * One event as a replay pass reads it, as an array (no per-row object keys): position, stream id,
 * version, type, time (decimal string), data (canonical JSON).
 */
export type EventRow = [position: number, streamId: string, version: number, type: string, time: string, data: string];

/**
 * Many events as a replay pass decodes them: the columns of an EventRow, six values a row one after
 * another (position, stream id, version, type, time as a decimal string, data parsed from its JSON).
 */
export type EventChunk = unknown[];

/** Events for one stream, appended only if the stream is at expectedVersion (0: does not exist yet). */
export interface AppendBatch {
  streamId: string;
  expectedVersion: number | 'any';
  events: NewEvent[];
  /** when the stream next wants waking (a pending timer of what it models); null clears it, undefined leaves it */
  wakeAt?: bigint | null;
}

export interface CommitOptions {
  /** makes the invocation idempotent: a second commit with the same id records nothing */
  requestId?: string;
  /** what the request asked (a hash); a request id reused with another fingerprint is a conflict */
  fingerprint?: string;
  handler?: string;
  /** the response to store for the request id, computed from the positions just written */
  response?: (written: WrittenEvent[]) => unknown;
  /** more writes (e.g. snapshots) that belong to the same transaction, once positions are known */
  alsoWrite?: (written: WrittenEvent[]) => void;
  /**
   * snapshots written and bound in the same transaction: each at its stream version, its position
   * the one this commit gives that version, or the log's (a version neither holds is invalid_request)
   */
  snapshots?: CommitSnapshot[];
}

/** A snapshot a commit writes: its position is found from its stream version. */
export interface CommitSnapshot {
  streamId: string;
  version: number;
  codeVersion: string;
  state: Buffer;
}

export interface WrittenEvent {
  position: number;
  streamId: string;
  version: number;
  type: string;
}

export type CommitResult = { duplicate: false; written: WrittenEvent[]; response: unknown } | { duplicate: true; written: []; response: unknown };

export interface ReadOptions {
  fromPosition?: number;
  toPosition?: number;
  /** events whose time is ≤ this instant */
  toTime?: bigint;
  limit?: number;
  streamId?: string;
  /** stream ids starting with this prefix */
  streamPrefix?: string;
  /** scan(): leave metadata out (it reads as "{}"), for passes that only evolve state */
  withoutMetadata?: boolean;
  /**
   * scanChunks(): top-level fields of each event's data (an object) a reader does not use, left out
   * of the data it decodes (not decoded at all where the engine can). Names: letters, digits, '_'.
   */
  omitDataFields?: string[];
}

export interface SnapshotRecord {
  streamId: string;
  version: number;
  position: number;
  codeVersion: string;
  state: Buffer;
}

/** The requests table's sequence: the last request's number and the digest of every request up to it. */
export interface RequestsHead {
  /** requests are numbered 1, 2, ... in the order they were answered (0: none yet) */
  seq: number;
  /** sha256 chained over each request's number and response hash, from the genesis hash */
  hash: string;
}

/** The log's head: what to keep outside the ledger, to detect later that it was shortened or rewritten. */
export interface LedgerHead {
  /** the last event's position (0 for an empty log) */
  position: number;
  /** its chain hash (the genesis hash for an empty log) */
  hash: string;
  /** the requests table's head */
  requests: RequestsHead;
}

/** A head kept from an earlier verify: the log must still hold it (an anchor without `requests` checks the events only). */
export interface VerifyAnchor {
  position: number;
  hash: string;
  requests?: RequestsHead;
}

/** What verify checked beyond the events' hash chain (counts). */
export interface VerifyCoverage {
  /** request rows: response hash, numbering, digest, and the request ids their events carry */
  requests: number;
  /** snapshots whose binding (stream, version, position, the chain hash there, a hash of the state) was checked */
  snapshots: number;
  /** of those, snapshots whose state was re-derived by replaying their stream (0 without a replayer) */
  snapshotStates: number;
  /** streams whose wake instant was checked: against the wake their last event records, or by replay */
  wakes: number;
  /** streams whose wake instant only a replay could check, left unchecked (no replayer given) */
  wakesUnchecked: number;
}

export interface VerifyResult {
  intact: boolean;
  /** events whose chain link was checked */
  checked: number;
  /** the last event's position and chain hash, and the requests' head: keep it outside the file to detect a shortened or rewritten log later */
  head: LedgerHead;
  firstBrokenPosition?: number;
  reason?: string;
  /** the table where the first problem was found (events, streams, stream_categories, requests, snapshots) */
  table?: string;
  /** what was checked beside the chain (absent when the chain itself is broken) */
  coverage?: VerifyCoverage;
}

/**
 * Replays streams for verify(), to re-derive what the store keeps beside the events but cannot
 * judge alone: a snapshot's state, and the wake instant of a stream whose last event records none.
 * The store knows nothing of what events mean; the code that evolves them supplies this.
 */
export interface StreamReplayer {
  /** snapshots of this code version are re-derived; those of others (never read by it) are checked by their binding only */
  readonly codeVersion: string;
  /** whether a stream with this id can have a wake instant (false: it must have none, and is not replayed for it) */
  hasWake(streamId: string): boolean;
  /** a replay of one stream, fed its events from the first */
  replay(streamId: string): StreamReplay;
}

export interface StreamReplay {
  /** the stream's next event */
  apply(row: EventRow): void;
  /** why the state reached differs from a snapshot's state (undefined: they are the same) */
  differs(state: Buffer): string | undefined;
  /** the wake instant the state reached implies (null: none) */
  wakeAt(): bigint | null;
}

export interface EventStore {
  /** where the log lives (a file path, or a URL without its password) */
  readonly path: string;
  commit(batches: AppendBatch[], opts?: CommitOptions): CommitResult;
  /** the stored answer of a request id (throws conflict when stored for a different fingerprint, corrupt when altered) */
  findRequest(requestId: string, fingerprint?: string): { response: unknown } | undefined;
  read(opts?: ReadOptions): StoredEvent[];
  scan(opts?: ReadOptions): IterableIterator<RawEvent>;
  /** scan() as arrays of the columns a replay needs (engines that can read rows that way) */
  scanRows?(opts?: ReadOptions): IterableIterator<EventRow>;
  /** scanRows() a chunk of rows at a time, data parsed (engines that can read rows that way) */
  scanChunks?(opts?: ReadOptions): IterableIterator<EventChunk>;
  streamVersion(streamId: string, atPosition?: number): number;
  streams(prefix?: string): string[];
  /** streams (with this prefix) whose last event is of none of these types: processes a log holds unfinished */
  openStreams(prefix: string, endTypes: string[]): string[];
  lastPosition(): number;
  /** the last position whose event happened at or before t (0 if none) */
  positionAtTime(t: bigint): number;
  /** the position of a stream's event at a given version */
  positionOfVersion(streamId: string, version: number): number | undefined;
  /** streams (with this prefix) whose wake instant is at or before t, earliest first */
  dueStreams(t: bigint, prefix?: string): { streamId: string; wakeAt: bigint }[];
  /** how many streams a category has (ids up to their first '-'; one row read) */
  countCategory(category: string): number;
  saveSnapshot(s: SnapshotRecord): void;
  latestSnapshot(streamId: string, codeVersion: string, maxPosition?: number): SnapshotRecord | undefined;
  /**
   * Streams (in id order) that lack a snapshot of this code version at some multiple of `every` up
   * to their version: those a pass must snapshot for a read never to replay `every` events or more.
   */
  snapshotGaps?(every: number, codeVersion: string): string[];
  /**
   * Check the log and every table kept beside it; with an anchor (an earlier head), also that the log
   * still holds it; with a replayer, also re-derive snapshot states and unrecorded wake instants.
   */
  verify(anchor?: VerifyAnchor, replayer?: StreamReplayer): VerifyResult;
  /** copy the log up to a position into a new log at target (a path, or a URL for PostgreSQL), created exclusively: an existing target is invalid_request */
  fork(position: number, targetPath: string): { events: number };
  /** run fn in one write transaction (BEGIN IMMEDIATE) */
  transaction<T>(fn: () => T): T;
  close(): void;
}
