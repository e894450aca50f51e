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
}

export interface WrittenEvent {
  position: number;
  streamId: string;
  version: number;
  type: string;
}

export type CommitResult =
  | { duplicate: false; written: WrittenEvent[]; response: unknown }
  | { duplicate: true; written: []; response: unknown };

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
}

export interface SnapshotRecord {
  streamId: string;
  version: number;
  position: number;
  codeVersion: string;
  state: Buffer;
}

/** a head kept from an earlier verify */
export interface VerifyAnchor {
  position: number;
  hash: string;
}

export interface VerifyResult {
  intact: boolean;
  /** events whose chain link was checked */
  checked: number;
  /** the last event's position and chain hash (0 and the genesis hash for an empty log): keep it outside the file to detect a shortened log later */
  head: { position: number; hash: string };
  firstBrokenPosition?: number;
  reason?: string;
  /** the table where the first problem was found (events, streams, stream_categories, requests) */
  table?: string;
}

export interface EventStore {
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
  /** check the log; with an anchor (an earlier head), also that the log still holds it */
  verify(anchor?: VerifyAnchor): VerifyResult;
  fork(position: number, targetPath: string): { events: number };
  /** run fn in one write transaction (BEGIN IMMEDIATE) */
  transaction<T>(fn: () => T): T;
  close(): void;
}
