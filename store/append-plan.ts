// One append, worked out without a database. In: the log's heads as the commit read them (its
// last position and chain hash, the versions of the streams the batches name, what the requests
// table holds of the request id) and the batches. Out: everything the commit writes, in full,
// before any of it is written: the event rows with their chain hashes, the events written, each
// stream's new head and wake instant, the category counts, the log's new head, and the request's
// row once its response is known (requestRow). The SQLite and PostgreSQL engines read the heads
// their own way and write the plan their own way; neither decides anything about an append.
// (As Emmett's appendToStream: the expected-version check and the rows come first, then the
// writes; here the chain and the request ledger are planned with them.)
import { canonicalJson, chainHash } from './canonical.js';
import { ConflictError, StoreError } from './errors.js';
import {
  checkRequestId,
  missingRowError,
  requestRowOf,
  responseHash,
  storedAnswer,
  type RequestEvents,
  type RequestRow,
  type StoredRequestRow,
} from './request-check.js';
import { I64_MAX, I64_MIN } from './sql-shared.js';
import { streamCategory } from './stream-category.js';
import type { AppendBatch, EventMetadata, NewEvent, StoredEvent, WrittenEvent } from './types.js';

/** What an append depends on of the log, read in the commit's transaction before it is planned. */
export interface AppendHeads {
  /** the last event's position (0: the log is empty) */
  position: number;
  /** its chain hash (the genesis hash for an empty log) */
  hash: string;
  /** the version of each stream the batches name (a stream it does not hold: 0, no such stream) */
  versions: ReadonlyMap<string, number>;
  /** with a request id: what the requests table holds (required then) */
  request?: RequestHead;
}

/** What the log holds of the commit's request id. */
export interface RequestHead {
  /** the requests table's last number (0: none yet) */
  seq: number;
  /** the row stored for the id (null: none) */
  stored: StoredRequestRow | null;
  /** the events whose metadata carries the id (null or count 0: none) */
  carried: RequestEvents | null;
}

/** Who asks: the request id makes the commit idempotent (see CommitOptions). */
export interface AppendRequest {
  requestId?: string;
  fingerprint?: string;
  handler?: string;
}

/** One event's row as it is stored: its place, its columns as the chain hashes them, and that hash. */
export interface AppendRow extends Omit<StoredEvent, 'data' | 'metadata'> {
  /** canonical JSON */
  data: string;
  /** canonical JSON (a batch's last event stamped with the batch's wake instant) */
  metadata: string;
}

/** A stream's head after the commit (one per stream the commit wrote events to). */
export interface StreamHead {
  streamId: string;
  version: number;
  /** its last event's position, type and chain hash (what a snapshot at this version binds to) */
  position: number;
  type: string;
  hash: string;
}

/** A commit worked out: what to write. */
export interface AppendPlan {
  duplicate: false;
  /** every event's row, in position order */
  rows: AppendRow[];
  /** what the commit reports: each event's position, stream, version and type */
  written: WrittenEvent[];
  /** each stream written to, its new head, in the order the commit first wrote to it */
  streams: StreamHead[];
  /** each stream whose wake instant the commit sets (null clears it), with or without events */
  wakes: Map<string, bigint | null>;
  /** how many streams each category gains (streams whose first event this commit writes) */
  categories: Map<string, number>;
  /** the log's head after the commit */
  end: { position: number; hash: string };
  /** the request's row to store, less its response (requestRow completes it); null without a request id */
  request: { requestId: string; handler?: string; fingerprint?: string; seq: number } | null;
}

/** A retry of a request already answered: nothing to write, the stored response to give. */
export interface AppendDuplicate {
  duplicate: true;
  response: unknown;
}

/** A request row as a commit stores it: the row, its response hash and its number. */
export interface NewRequestRow extends RequestRow {
  responseHash: string;
  seq: number;
}

/**
 * Plan one commit. A request id already answered comes back as a duplicate (its stored answer
 * checked); otherwise every batch must find its stream at the version it expects (ConflictError),
 * every event time must fit a signed 64-bit instant, and every event's metadata.requestId must be
 * the commit's (invalid_request). Nothing given is changed.
 */
export function planAppend(
  heads: AppendHeads,
  batches: readonly AppendBatch[],
  request: AppendRequest = {},
  /** false: the rows are chained by whoever writes them (PostgreSQL's server): hashes left empty */
  chained = true,
): AppendPlan | AppendDuplicate {
  const requestId = request.requestId;
  let seq = 0;
  if (requestId !== undefined) {
    checkRequestId(requestId);
    const r = heads.request;
    if (r === undefined) throw new TypeError('planAppend: a commit with a request id needs the request head');
    if (r.stored !== null) return { duplicate: true, response: storedAnswer(r.stored, request.fingerprint).response };
    if (r.carried !== null && r.carried.count > 0) throw missingRowError(requestId, r.carried, heads.position);
    seq = r.seq + 1;
  }
  let position = heads.position;
  let hash = heads.hash;
  const versions = new Map<string, number>();
  const rows: AppendRow[] = [];
  const written: WrittenEvent[] = [];
  const streams = new Map<string, StreamHead>();
  const wakes = new Map<string, bigint | null>();
  const categories = new Map<string, number>();
  // a session gives all its events one metadata object per kind: encode each once
  const metadataText = new Map<unknown, string>();
  const stamped: Stamped = new Map();
  for (const b of batches) {
    const streamId = b.streamId;
    let version = versions.get(streamId) ?? heads.versions.get(streamId) ?? 0;
    if (b.expectedVersion !== 'any' && b.expectedVersion !== version) throw new ConflictError(streamId, b.expectedVersion, version);
    if (version === 0 && b.events.length) {
      const c = streamCategory(streamId);
      categories.set(c, (categories.get(c) ?? 0) + 1);
    }
    const metadataOf = batchMetadata(b, requestId, stamped);
    for (let i = 0; i < b.events.length; i++) {
      const e = b.events[i]!;
      if (e.time < I64_MIN || e.time > I64_MAX) throw new StoreError('invalid_request', `event time ${e.time} does not fit a signed 64-bit instant`);
      position++;
      version++;
      const row = encodeRow(e, position, streamId, version, chained ? hash : null, metadataText, metadataOf[i]);
      rows.push(row);
      written.push({ position, streamId, version, type: e.type });
      hash = row.hash;
    }
    versions.set(streamId, version);
    if (b.events.length) streams.set(streamId, { streamId, version, position, type: b.events[b.events.length - 1]!.type, hash });
    const wake = batchWake(b);
    if (wake !== undefined) wakes.set(streamId, wake);
  }
  return {
    duplicate: false,
    rows,
    written,
    streams: [...streams.values()],
    wakes,
    categories,
    end: { position, hash },
    request: requestId === undefined ? null : { requestId, handler: request.handler, fingerprint: request.fingerprint, seq },
  };
}

/** The request row a planned commit stores, once its response is known (null: the commit has no request id). */
export function requestRow(plan: AppendPlan, response: unknown): NewRequestRow | null {
  if (plan.request === null) return null;
  const row = requestRowOf(plan.request, plan.written, plan.end.hash, response);
  return { ...row, responseHash: responseHash(row), seq: plan.request.seq };
}

/**
 * One event's row at its place in the log. A commit gives all its events one metadata object per
 * kind: `metadataText` keeps each one's text so it is encoded once. `metadataOf` replaces the
 * event's own (a batch's last event, stamped with its wake instant: see batchMetadata). With no
 * previous hash, the row is left for its writer to chain (hash '').
 */
function encodeRow(
  e: NewEvent,
  position: number,
  streamId: string,
  version: number,
  prevHash: string | null,
  metadataText: Map<unknown, string>,
  metadataOf: EventMetadata | undefined,
): AppendRow {
  const data = e.canonical ? (JSON.stringify(e.data) ?? 'null') : canonicalJson(e.data ?? null);
  let metadata = metadataText.get(metadataOf);
  if (metadata === undefined) metadataText.set(metadataOf, (metadata = canonicalJson(metadataOf ?? {})));
  const schemaVersion = e.schemaVersion ?? 1;
  // (the content spelled out: a spread into a new literal took ~8 µs per event in V8)
  const hash =
    prevHash === null ? '' : chainHash(prevHash, { position, streamId, version, type: e.type, schemaVersion, time: e.time.toString(), data, metadata });
  return { position, streamId, version, type: e.type, schemaVersion, time: e.time, data, metadata, hash };
}

/**
 * The metadata key under which a batch's last event records the stream's wake instant (a decimal
 * string, or null for none): the store's, so verify can recompute streams.wake_at from the events.
 */
export const WAKE_KEY = 'wakeAt';

/** Metadata objects stamped with a wake instant, by the object stamped and the instant. */
type Stamped = Map<EventMetadata | undefined, Map<string | null, EventMetadata>>;

/**
 * The metadata of each event of a batch as the log records it: the batch's last event carries the
 * wake instant the batch sets (AppendBatch.wakeAt), so the wake index is chained with the events.
 * An event's metadata.requestId, if any, must be the commit's request id (verify relies on it).
 */
function batchMetadata(b: AppendBatch, requestId: string | undefined, stamped: Stamped): (EventMetadata | undefined)[] {
  const out: (EventMetadata | undefined)[] = new Array(b.events.length);
  for (let i = 0; i < b.events.length; i++) {
    const m = b.events[i]!.metadata;
    if (requestId !== undefined && m?.requestId !== undefined && m.requestId !== requestId) {
      const claimed = JSON.stringify(m.requestId);
      const why = `an event's metadata.requestId (${claimed}) is not the commit's request id (${JSON.stringify(requestId)})`;
      throw new StoreError('invalid_request', why, { field: 'requestId' });
    }
    out[i] = m;
  }
  if (b.wakeAt === undefined || !b.events.length) return out;
  const wake = b.wakeAt === null ? null : b.wakeAt.toString();
  const last = out[out.length - 1];
  if (last !== undefined && Object.hasOwn(last, WAKE_KEY) && last[WAKE_KEY] !== wake) {
    const recorded = JSON.stringify(last[WAKE_KEY]);
    const why = `the last event's metadata.${WAKE_KEY} (${recorded}) is not the batch's wake instant (${wake})`;
    throw new StoreError('invalid_request', why, { streamId: b.streamId });
  }
  // (a session's events share one metadata object: stamp each object once per wake instant)
  let byWake = stamped.get(last);
  if (!byWake) stamped.set(last, (byWake = new Map()));
  let m = byWake.get(wake);
  if (m === undefined) byWake.set(wake, (m = { ...(last ?? {}), [WAKE_KEY]: wake }));
  out[out.length - 1] = m;
  return out;
}

/**
 * The wake instant a batch sets: its own (wakeAt), or, for a batch copied verbatim from a log (a
 * fork), the one its last event records; undefined leaves the stream's as it is.
 */
function batchWake(b: AppendBatch): bigint | null | undefined {
  if (b.wakeAt !== undefined) return b.wakeAt;
  const m = b.events.at(-1)?.metadata;
  if (m === undefined || !Object.hasOwn(m, WAKE_KEY)) return undefined;
  const w = m[WAKE_KEY];
  if (w === null) return null;
  if (typeof w !== 'string' || !/^-?[0-9]{1,19}$/.test(w)) {
    const why = `metadata.${WAKE_KEY} of ${b.streamId}'s last event is not a decimal instant: ${JSON.stringify(w)}`;
    throw new StoreError('invalid_request', why, { streamId: b.streamId });
  }
  return BigInt(w);
}
