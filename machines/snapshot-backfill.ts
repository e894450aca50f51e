// Snapshots for a ledger written before writers kept them (or whose snapshots a new code version
// discarded): each stream lacking one at some multiple of SNAPSHOT_EVERY is replayed from its
// first event, and every missing multiple is written, bound to its place in the log like a
// writer's. Events are only read: nothing in the log changes, and a second pass finds nothing to do.
import { serialize } from 'node:v8';
import type { AsyncEventStore } from '../store/async-types.js';
import type { EventStore, SnapshotRecord } from '../store/types.js';
import { scanRows } from './rebuild.js';
import { SNAPSHOT_EVERY } from './snapshot-every.js';
import { applyStreamEvent, streamKind, type StreamKind, type StreamState } from './streams.js';
import { CODE_VERSION } from './version.js';

export interface BackfillResult {
  /** streams that lacked a snapshot */
  streams: number;
  /** snapshots written */
  snapshots: number;
  /** events replayed */
  events: number;
}

/** How many snapshots are written per transaction (a VM snapshot is a few kB). */
const PER_TRANSACTION = 500;

function kindOf(streamId: string): StreamKind | null {
  try {
    return streamKind(streamId);
  } catch {
    return null;
  }
}

/** One stream's replay, collecting the states at the multiples of SNAPSHOT_EVERY. */
class StreamPass {
  private state: StreamState | null = null;
  readonly out: SnapshotRecord[] = [];
  constructor(
    private readonly streamId: string,
    private readonly kind: StreamKind,
  ) {}
  apply(position: number, version: number, type: string, time: string, data: string): void {
    this.state = applyStreamEvent(this.kind, this.state, { type, data: JSON.parse(data) as object }, BigInt(time), { noResult: true }).state;
    if (version % SNAPSHOT_EVERY === 0) this.out.push({ streamId: this.streamId, version, position, codeVersion: CODE_VERSION, state: serialize(this.state) });
  }
}

/** Write the snapshots a SQLite ledger (open for writing) lacks. */
export function backfillSnapshots(store: EventStore): BackfillResult {
  const r: BackfillResult = { streams: 0, snapshots: 0, events: 0 };
  for (const streamId of store.snapshotGaps?.(SNAPSHOT_EVERY, CODE_VERSION) ?? []) {
    const kind = kindOf(streamId);
    if (kind === null) continue;
    r.streams++;
    const pass = new StreamPass(streamId, kind);
    // (read whole before writing: a connection cannot write while it iterates)
    for (const row of scanRows(store, { streamId })) pass.apply(row[0], row[2], row[3], row[4], row[5]), r.events++;
    for (let i = 0; i < pass.out.length; i += PER_TRANSACTION) {
      const chunk = pass.out.slice(i, i + PER_TRANSACTION);
      store.transaction(() => {
        for (const s of chunk) store.saveSnapshot(s);
      });
    }
    r.snapshots += pass.out.length;
  }
  return r;
}

/** The same on an asynchronous store (PostgreSQL). */
export async function backfillSnapshotsAsync(store: AsyncEventStore): Promise<BackfillResult> {
  const r: BackfillResult = { streams: 0, snapshots: 0, events: 0 };
  for (const streamId of await store.snapshotGaps(SNAPSHOT_EVERY, CODE_VERSION)) {
    const kind = kindOf(streamId);
    if (kind === null) continue;
    r.streams++;
    const pass = new StreamPass(streamId, kind);
    for await (const row of store.scan({ streamId, withoutMetadata: true })) pass.apply(row.position, row.version, row.type, row.time, row.data), r.events++;
    for (let i = 0; i < pass.out.length; i += PER_TRANSACTION) {
      const chunk = pass.out.slice(i, i + PER_TRANSACTION);
      await store.transaction(async () => {
        for (const s of chunk) await store.saveSnapshot(s);
      });
    }
    r.snapshots += pass.out.length;
  }
  return r;
}

/** Stores already brought up to date by this process (a pass runs once per open store). */
const ensured = new WeakSet<object>();

/**
 * Before the first write through a store: the snapshots its ledger lacks, written once (a ledger
 * written before writers kept them, or after a new code version discarded the old ones).
 */
export async function ensureSnapshots(store: EventStore | AsyncEventStore, engine: 'sqlite' | 'postgres'): Promise<BackfillResult | undefined> {
  if (ensured.has(store)) return undefined;
  const r = engine === 'sqlite' ? backfillSnapshots(store as EventStore) : await backfillSnapshotsAsync(store as AsyncEventStore);
  ensured.add(store);
  return r;
}
