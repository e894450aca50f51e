// Rebuilding stream state from the log: the latest snapshot at or before the target, then the
// events after it, through the stream's pure reducer. Snapshots are written every N events so
// time travel never rescans a whole stream.
import { freeze } from 'immer';
import { deserialize, serialize } from 'node:v8';
import { omittedFields, withoutFields } from '../store/omit-fields.js';
import { reportRejectedSnapshot } from '../store/snapshot-binding.js';
import type { EventChunk, EventRow, EventStore, RawEvent, ReadOptions, SnapshotRecord } from '../store/types.js';
import type { EvolveOptions } from './vm/evolve.js';
import { applyStreamEvent, copyStreamState, streamKind, type StreamState } from './streams.js';
import { CODE_VERSION } from './version.js';

export { SNAPSHOT_EVERY } from './snapshot-every.js';
import { SNAPSHOT_EVERY } from './snapshot-every.js';

/** Where to stop: after a global position, at a stream version, or at a simulated instant (inclusive). */
export interface RebuildTarget {
  position?: number;
  version?: number;
  time?: bigint;
}

export interface Rebuilt<S = StreamState> {
  state: S | null;
  /** the stream version the state reflects (0: the stream has no events yet) */
  version: number;
  /** the global position of that version's event */
  position: number;
}

export interface RebuildOptions extends EvolveOptions {
  /** write snapshots while rebuilding (default: yes, unless a profile is substituted) */
  saveSnapshots?: boolean;
}

/** The last global position a target allows. */
export function targetPosition(store: EventStore, streamId: string, t: RebuildTarget): number {
  let max = store.lastPosition();
  if (t.position !== undefined) max = Math.min(max, t.position);
  if (t.time !== undefined) max = Math.min(max, store.positionAtTime(t.time));
  if (t.version !== undefined) {
    const p = t.version === 0 ? 0 : store.positionOfVersion(streamId, t.version);
    if (p === undefined) return Math.min(max, Number.MAX_SAFE_INTEGER);
    max = Math.min(max, p);
  }
  return max;
}

// Current (tip) states already rebuilt in this process, by store (its identity, not its path: every
// ':memory:' store has the same path) and stream. Bounded per store, least recently stored first
// out: a long-lived process (a warm function, a fleet script) touches streams without end, and
// most (destroyed VMs, ended migrations) never again.
let tipCaches = new WeakMap<object, Map<string, Rebuilt>>();
const TIP_CACHE_MAX = 20_000;
function tipsOf(store: EventStore): Map<string, Rebuilt> {
  let m = tipCaches.get(store);
  if (!m) tipCaches.set(store, (m = new Map()));
  return m;
}
function cacheTip(store: EventStore, streamId: string, r: Rebuilt): void {
  const tips = tipsOf(store);
  tips.delete(streamId);
  tips.set(streamId, r);
  if (tips.size > TIP_CACHE_MAX) tips.delete(tips.keys().next().value!);
}

/** The state this process last held live for a stream (what a session committed), if any. */
export function liveState(store: EventStore, streamId: string): Rebuilt | undefined {
  return tipCaches.get(store)?.get(streamId);
}

/** Forget cached states (tests that rewrite a database under the same path). */
export function clearRebuildCache(): void {
  tipCaches = new WeakMap();
}

const snapshotName = (s: SnapshotRecord) => `the snapshot of ${s.streamId} at version ${s.version} (position ${s.position})`;

/**
 * A snapshot's state, decoded; undefined (and said, as the store says of a snapshot it does not
 * use) when its bytes are not a state. The store has checked its binding; bytes that passed it and
 * still do not decode were forged with the binding recomputed, which only verify's replay proves.
 */
export function stateOfSnapshot(path: string, snap: SnapshotRecord): StreamState | undefined {
  let state: unknown;
  try {
    state = deserialize(snap.state);
  } catch (e) {
    reportRejectedSnapshot(path, snap, `${snapshotName(snap)} does not decode (${(e as Error).message})`);
    return undefined;
  }
  if (state === null || typeof state !== 'object') {
    reportRejectedSnapshot(path, snap, `${snapshotName(snap)} decodes to ${state === null ? 'null' : typeof state}, not a state`);
    return undefined;
  }
  return state as StreamState;
}

/** Decode a raw row into the event shape the reducers take. */
export function decodeRaw(r: RawEvent): { type: string; data: object; time: bigint } {
  return { type: r.type, data: JSON.parse(r.data) as object, time: BigInt(r.time) };
}

/** The rows of a scan as arrays of the columns a replay needs (one array per row, no object keys where the engine can). */
export function* scanRows(store: EventStore, opts: ReadOptions): IterableIterator<EventRow> {
  if (store.scanRows) return yield* store.scanRows({ ...opts, withoutMetadata: true });
  for (const r of store.scan({ ...opts, withoutMetadata: true })) yield [r.position, r.streamId, r.version, r.type, r.time, r.data];
}

const CHUNK_ROWS = 256;

/**
 * The rows of a scan decoded for a replay pass, a chunk at a time: six values a row (position, stream
 * id, version, type, time as a decimal string, data parsed), by the engine's own chunked read where it has one.
 */
export function* scanDecoded(store: EventStore, opts: ReadOptions): IterableIterator<EventChunk> {
  if (store.scanChunks) return yield* store.scanChunks({ ...opts, withoutMetadata: true });
  const omit = omittedFields(opts);
  let chunk: EventChunk = [];
  for (const r of scanRows(store, opts)) {
    chunk.push(r[0], r[1], r[2], r[3], r[4], withoutFields(JSON.parse(r[5]) as unknown, omit));
    if (chunk.length === CHUNK_ROWS * 6) yield chunk, (chunk = []);
  }
  if (chunk.length) yield chunk;
}

/** Rebuild one stream's state at a target (default: its latest event). */
export function rebuildStream<S extends StreamState = StreamState>(
  store: EventStore,
  streamId: string,
  target: RebuildTarget = {},
  opts: RebuildOptions = {},
): Rebuilt<S> {
  const substituted = opts.profile !== undefined;
  // The current state, already held by this process: one version check instead of a rebuild.
  if (!substituted && target.position === undefined && target.version === undefined && target.time === undefined) {
    const cached = liveState(store, streamId);
    if (cached && cached.version === store.streamVersion(streamId)) return cached as Rebuilt<S>;
  }
  const kind = streamKind(streamId);
  const maxPosition = targetPosition(store, streamId, target);
  const save = (opts.saveSnapshots ?? true) && !substituted;

  // Start from the best of: nothing, this process's cached tip, the latest stored snapshot.
  let state: StreamState | null = null;
  let version = 0;
  let position = 0;
  let shared = false; // a cached tip is shared (held live, or frozen): copy it before moving it forward
  if (!substituted) {
    const cached = liveState(store, streamId);
    if (cached && cached.position <= maxPosition) ({ state, version, position } = cached), (shared = true);
    const snap = store.latestSnapshot(streamId, CODE_VERSION, maxPosition);
    const kept = snap && snap.position > position ? stateOfSnapshot(store.path, snap) : undefined;
    if (snap && kept !== undefined) {
      state = kept;
      version = snap.version;
      position = snap.position;
      shared = false;
    }
  }
  // (a connection cannot write while it iterates: snapshots are saved after the scan)
  const snapshots: SnapshotRecord[] = [];
  const evolveOpts: EvolveOptions = { ...opts, noResult: true };
  for (const row of scanRows(store, { streamId, fromPosition: position + 1, toPosition: maxPosition })) {
    if (shared && state !== null) state = copyStreamState(kind, state);
    shared = false;
    const time = BigInt(row[4]);
    state = applyStreamEvent(kind, state, { type: row[3], data: JSON.parse(row[5]) as object }, time, evolveOpts).state;
    version = row[2];
    position = row[0];
    if (save && version % SNAPSHOT_EVERY === 0) {
      snapshots.push({ streamId, version, position, codeVersion: CODE_VERSION, state: serialize(state) });
    }
  }
  if (snapshots.length)
    store.transaction(() => {
      for (const sn of snapshots) store.saveSnapshot(sn);
    });
  if (state !== null && !shared) freeze(state, true);
  const result: Rebuilt = { state, version, position };
  if (!substituted && version > 0 && version === store.streamVersion(streamId)) cacheTip(store, streamId, result);
  return result as Rebuilt<S>;
}

/** Remember a state a session just committed, so the next load in this process starts from it. */
export function rememberTip(store: EventStore, streamId: string, r: Rebuilt): void {
  cacheTip(store, streamId, r);
}

/** Rebuild every stream up to a position in one pass over the log (the full replay). */
export function rebuildAll(store: EventStore, toPosition?: number, opts: EvolveOptions = {}, onProgress?: (position: number) => void): Map<string, Rebuilt> {
  const states = new Map<string, Rebuilt>();
  const evolveOpts: EvolveOptions = { ...opts, noResult: true };
  let n = 0;
  // events come in runs at one instant: its decimal string is converted once per run
  let timeText = '';
  let t = 0n;
  for (const c of scanDecoded(store, { toPosition })) {
    for (let i = 0; i < c.length; i += 6) {
      const position = c[i] as number;
      const streamId = c[i + 1] as string;
      const version = c[i + 2] as number;
      const cur = states.get(streamId);
      if (c[i + 4] !== timeText) t = BigInt((timeText = c[i + 4] as string));
      const next = applyStreamEvent(streamKind(streamId), cur?.state ?? null, { type: c[i + 3] as string, data: c[i + 5] as object }, t, evolveOpts).state;
      if (cur) {
        cur.state = next;
        cur.version = version;
        cur.position = position;
      } else states.set(streamId, { state: next, version, position });
      if (onProgress && ++n % 10_000 === 0) onProgress(position);
    }
  }
  return states;
}
