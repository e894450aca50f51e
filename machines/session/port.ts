// The store seam of a unit of work.
//
// Deciding is synchronous: the kernel, the machines and the reducers run to completion without
// waiting, so one request decides in one go from the states it read. All the log I/O a unit of
// work needs therefore happens around the decision, never inside it:
//
//   before   the streams (and index lookups) it will read are made available to a StreamReader;
//   during   the session reads only through that StreamReader, synchronously;
//   after    what it decided goes to the log in one commit (a UnitCommit).
//
// Two kinds of log sit behind the seam:
// - SyncLogPort (SQLite, sqlite-port.ts): the reader reads the file directly, and commit is
//   synchronous. withSession calls it without a single await in between (nothing to prefetch).
// - AsyncLogPort (an engine with an asynchronous interface, async-port.ts): withSession loads
//   what the work will need first (the ledger, the log's last event, the VMs due in the wake
//   index's lookahead, and any ids the caller names). A decision that reads anything not loaded
//   gets a NeedsStreams signal naming it: the attempt is thrown away, withSession loads what was
//   named, asynchronously, and decides again from scratch, exactly as after a lost race
//   (ConflictError). The decision is a function of what it read, so deciding from loaded states
//   gives the events the direct path gives. Commit is awaited; each batch still checks the
//   version its stream was read at, so a stream that moved on since it was loaded is a conflict.
import type { AppendBatch, CommitResult, WrittenEvent } from '../../store/types.js';
import type { Rebuilt } from '../rebuild.js';

/** What a decision reads from the log: synchronous, each answer as of the unit of work's reads. */
export interface StreamReader {
  /** a stream's current state, with the version and position it reflects (version 0: no such stream) */
  readStream(streamId: string): Rebuilt;
  /** the log's last event, its position and instant (null: the log is empty) */
  lastEvent(): { position: number; time: bigint } | null;
  /** streams with this prefix whose wake instant is at or before t, earliest first */
  dueStreams(t: bigint, prefix: string): { streamId: string; wakeAt: bigint }[];
  /** how many streams a category has */
  countCategory(category: string): number;
  /** a stream's current version (0: no such stream) */
  streamVersion(streamId: string): number;
  /** streams (with this prefix) whose last event is of none of these types */
  openStreams(prefix: string, endTypes: string[]): string[];
  /** a state a commit just made current, so the next read of it in this process starts there */
  remember(streamId: string, r: Rebuilt): void;
}

/** What one unit of work writes, in one transaction. */
export interface UnitCommit {
  batches: AppendBatch[];
  /** states to write as snapshots (serialized), at stream versions this commit or the log holds */
  snapshots: { streamId: string; version: number; state: Buffer }[];
  requestId?: string;
  fingerprint?: string;
  handler?: string;
  /** the response stored for the request id, from the positions just written */
  response?: (written: WrittenEvent[]) => unknown;
}

/** A log answered synchronously (SQLite): the reader reads it directly. */
export interface SyncLogPort extends StreamReader {
  readonly mode: 'sync';
  /** the stored answer of a request id (conflict when stored for a different fingerprint) */
  findRequest(requestId: string, fingerprint?: string): { response: unknown } | undefined;
  commit(unit: UnitCommit): CommitResult;
}

/** A log answered asynchronously: decisions read what a LoadingReader loaded before them. */
export interface AsyncLogPort {
  readonly mode: 'async';
  findRequest(requestId: string, fingerprint?: string): Promise<{ response: unknown } | undefined>;
  /** a reader holding nothing yet, for one request's attempts */
  open(): LoadingReader;
  commit(unit: UnitCommit): Promise<CommitResult>;
}

export type LogPort = SyncLogPort | AsyncLogPort;

/** A reader over what was loaded: a read of anything else throws NeedsStreams (and is noted in `missing`). */
export interface LoadingReader extends StreamReader {
  /** what the current attempt read and the reader did not hold (even if the work caught the signal) */
  readonly missing: readonly Need[];
  /** load these (and clear `missing`) */
  load(needs: readonly Need[]): Promise<void>;
  /** load again everything held: the log moved on (a lost race) */
  refresh(): Promise<void>;
  /**
   * the first load of a request: `first`, the stored answer of its request id (returned, and
   * nothing more loaded, if it was answered) and the wake index of `due.prefix` up to the last
   * event's instant plus `due.ahead`, in one round trip where the engine can
   */
  begin(
    first: readonly Need[],
    request: { requestId: string; fingerprint?: string } | undefined,
    due: { prefix: string; ahead: bigint },
  ): Promise<{ response: unknown } | undefined>;
  /** after a commit: the streams this request read, for the next request to load ahead */
  noteRead(): void;
}

/** Something a decision reads from the log. */
export type Need =
  | { kind: 'stream'; streamId: string }
  | { kind: 'head' }
  /** the wake index up to an instant, and the streams it names */
  | { kind: 'due'; upTo: bigint; prefix: string }
  | { kind: 'category'; category: string }
  | { kind: 'open'; prefix: string; endTypes: string[] };

/** A decision read something its reader had not loaded: load `needs`, then decide again from scratch. */
export class NeedsStreams extends Error {
  constructor(readonly needs: readonly Need[]) {
    super(`the decision needs what was not loaded: ${needs.map(describeNeed).join(', ')}`);
    this.name = 'NeedsStreams';
  }
}

export function describeNeed(n: Need): string {
  switch (n.kind) {
    case 'stream':
      return n.streamId;
    case 'head':
      return 'the last event';
    case 'due':
      return `streams '${n.prefix}*' due by ${n.upTo}`;
    case 'category':
      return `the count of '${n.category}'`;
    case 'open':
      return `open streams '${n.prefix}*'`;
  }
}

/** The global position a recorded event got. */
export function positionOf(written: WrittenEvent[], ref: { streamId: string; version: number }): number | null {
  return written.find((w) => w.streamId === ref.streamId && w.version === ref.version)?.position ?? null;
}
