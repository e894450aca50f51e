// A unit of work: the streams one invocation reads, the events it decides to record, and the
// states those events evolve to. Nothing reaches the log until commit(), which appends every
// stream's events in one transaction, each checked against the version it was read at.
import { produce } from 'immer';
import { serialize } from 'node:v8';
import type { AppendBatch, CommitResult, EventMetadata, EventStore, NewEvent, WrittenEvent } from '../../store/types.js';
import { applyStreamEvent, copyStreamState, streamKind, type DomainEvent, type StreamState } from '../streams.js';
import { SNAPSHOT_EVERY } from '../snapshot-every.js';
import { CODE_VERSION } from '../version.js';
import { vmIdOf } from '../vm/events.js';
import { DomainError } from './errors.js';
import type { StreamReader, SyncLogPort, UnitCommit } from './port.js';
import { readerOf } from './sqlite-port.js';

export interface SessionMeta {
  handler: string;
  requestId?: string;
  correlationId?: string;
  /** what the request asked (hashed), stored with its request id */
  fingerprint?: string;
}

/** An event recorded in this session, by stream and version; its global position is known after commit. */
export interface EventRef {
  streamId: string;
  version: number;
}

/** A stream as this unit of work holds it. */
export interface Loaded {
  base: number;
  state: StreamState | null;
  /** the state was created by this session: nothing else holds it, so events evolve it in place */
  owned: boolean;
  /** the VM's id, for a VM stream */
  vmId: string | null;
  version: number;
  position: number;
  pending: NewEvent[];
}

export class UnitOfWork {
  /** what the unit of work reads the log through (the store itself for SQLite) */
  readonly log: StreamReader;
  protected readonly loaded = new Map<string, Loaded>();
  /** states kept at instants an audit revisits (private copies; those to persist are serialized at commit) */
  private readonly snapshotsToSave: { streamId: string; version: number; state: StreamState; persist: boolean }[] = [];
  /** the states at every SNAPSHOT_EVERY-th version this session records, serialized as they were then */
  private readonly periodic: { streamId: string; version: number; state: Buffer }[] = [];
  /** every recorded event in the order it was decided: the order it takes in the log */
  private readonly order: { streamId: string; event: NewEvent }[] = [];

  constructor(
    log: EventStore | StreamReader,
    readonly meta: SessionMeta,
  ) {
    this.log = readerOf(log);
  }

  /** A stream as this unit of work holds it, read on first use. */
  load(streamId: string): Loaded {
    let l = this.loaded.get(streamId);
    if (!l) {
      const r = this.log.readStream(streamId);
      const vmId = vmIdOf(streamId);
      l = { base: r.version, state: r.state, owned: false, vmId, version: r.version, position: r.position, pending: [] };
      this.loaded.set(streamId, l);
    }
    return l;
  }

  /** The streams this unit of work has read, in the order it read them. */
  heldStreams(): IterableIterator<Loaded> {
    return this.loaded.values();
  }

  /** Whether this unit of work has read a stream. */
  holds(streamId: string): boolean {
    return this.loaded.has(streamId);
  }

  /** Record an event on a stream; the state evolves at once (the caller may pass it precomputed). */
  record(streamId: string, ev: DomainEvent, time: bigint, next?: StreamState, extraMeta: EventMetadata = {}, canonical = false): EventRef {
    const l = this.load(streamId);
    if (next === undefined) {
      const kind = streamKind(streamId);
      if (l.state === null || l.owned) {
        next = applyStreamEvent(kind, l.state, ev, time).state;
        l.owned = true;
      } else {
        // a state read from the log or the cache is shared: evolve a copy
        next = produce(l.state, (d) => applyStreamEvent(kind, d as StreamState, ev, time).state) as StreamState;
      }
    }
    l.state = next;
    l.version++;
    // (serialized now: an owned state goes on changing in place with the session's next events)
    if (l.version % SNAPSHOT_EVERY === 0) this.periodic.push({ streamId, version: l.version, state: serialize(next) });
    const metadata = this.metadataFor(extraMeta);
    const e: NewEvent = { type: ev.type, time, data: ev.data, metadata, canonical };
    l.pending.push(e);
    this.order.push({ streamId, event: e });
    return { streamId, version: l.version };
  }

  // Events of one session share their metadata object (per profile), so the store encodes it once.
  private readonly metadataCache = new Map<string, EventMetadata>();
  private metadataFor(extra: EventMetadata): EventMetadata {
    // (VM events add only their profile: key those by it without encoding)
    const keys = Object.keys(extra);
    const key = keys.length === 0 ? '' : keys.length === 1 && keys[0] === 'profile' ? `p:${String(extra.profile)}` : JSON.stringify(extra);
    let m = this.metadataCache.get(key);
    if (!m) {
      m = Object.freeze({
        handler: this.meta.handler,
        codeVersion: CODE_VERSION,
        ...(this.meta.requestId !== undefined ? { requestId: this.meta.requestId, causationId: this.meta.requestId } : {}),
        ...(this.meta.correlationId !== undefined ? { correlationId: this.meta.correlationId } : {}),
        ...extra,
      });
      this.metadataCache.set(key, m);
    }
    return m;
  }

  /** The state of any loaded stream (for migrations and audits). */
  stream(streamId: string): StreamState | null {
    return this.load(streamId).state;
  }

  /**
   * Keep a stream's current state (an instant an audit will revisit): for this session's own
   * reads, and, unless `persist` is false, as a snapshot written with the commit.
   */
  keepSnapshot(streamId: string, persist = true): void {
    const l = this.load(streamId);
    // a private copy: the live state goes on changing in place (it is serialized at commit)
    if (l.version > 0 && l.state !== null)
      this.snapshotsToSave.push({ streamId, version: l.version, state: copyStreamState(streamKind(streamId), l.state), persist });
  }

  /** The events this session recorded on a stream, with the versions they take. */
  recorded(streamId: string): { version: number; event: NewEvent }[] {
    const l = this.loaded.get(streamId);
    return l ? l.pending.map((event, i) => ({ version: l.base + i + 1, event })) : [];
  }

  /** The version a stream had when this session first read it (null: not read). */
  baseVersion(streamId: string): number | null {
    return this.loaded.get(streamId)?.base ?? null;
  }

  /** A stream's version in this session, its own events included (null: not read). */
  currentVersion(streamId: string): number | null {
    return this.loaded.get(streamId)?.version ?? null;
  }

  /** A state this session keeps as a snapshot, if it keeps that stream version (not to be changed). */
  keptState(streamId: string, version: number): StreamState | undefined {
    return this.snapshotsToSave.find((sn) => sn.streamId === streamId && sn.version === version)?.state;
  }

  /** How many events this session has recorded so far. */
  pendingCount(): number {
    return this.order.length;
  }

  // ---- commit -----------------------------------------------------------------------------

  /**
   * What this unit of work writes: its events in decision order, the wake instants of the
   * streams that have them (`wakeAtOf`), the snapshots to persist, and the request's answer.
   * `mustHold` names a stream whose version the commit checks even if nothing was recorded on it.
   */
  protected unitCommit(
    response: ((written: WrittenEvent[]) => unknown) | undefined,
    mustHold: string,
    wakeAtOf: (l: Loaded) => bigint | null | undefined,
  ): UnitCommit {
    // Keep the decision order across streams (so time never goes backwards in position order):
    // one batch per run of consecutive events on a stream, each expecting the version before it.
    const batches: AppendBatch[] = [];
    const next = new Map<string, number>();
    for (const { streamId, event } of this.order) {
      const last = batches.at(-1);
      if (last && last.streamId === streamId) {
        last.events.push(event);
      } else {
        batches.push({ streamId, expectedVersion: next.get(streamId) ?? this.loaded.get(streamId)!.base, events: [event] });
      }
      next.set(streamId, (next.get(streamId) ?? this.loaded.get(streamId)!.base) + 1);
    }
    const held = this.loaded.get(mustHold);
    if (held && !next.has(mustHold) && batches.length) batches.push({ streamId: mustHold, expectedVersion: held.base, events: [] });
    const lastBatch = new Map<string, AppendBatch>();
    for (const b of batches) lastBatch.set(b.streamId, b);
    for (const [sid, b] of lastBatch) {
      const wakeAt = wakeAtOf(this.loaded.get(sid)!);
      if (wakeAt !== undefined) b.wakeAt = wakeAt;
    }
    // the periodic snapshots, and the states kept for audits (one per stream version)
    const snapshots = [...this.periodic];
    const at = new Set(snapshots.map((sn) => `${sn.streamId}\u0000${sn.version}`));
    for (const sn of this.snapshotsToSave) {
      if (sn.persist && !at.has(`${sn.streamId}\u0000${sn.version}`))
        snapshots.push({ streamId: sn.streamId, version: sn.version, state: serialize(sn.state) });
    }
    return { batches, snapshots, requestId: this.meta.requestId, fingerprint: this.meta.fingerprint, handler: this.meta.handler, response };
  }

  /** After a commit: the states it made current are remembered, and shared from now on. */
  committed(r: CommitResult): void {
    if (r.duplicate) return;
    const last = new Map<string, number>();
    for (const w of r.written) last.set(w.streamId, w.position);
    for (const [streamId, l] of this.loaded) {
      if (!l.pending.length) continue;
      this.log.remember(streamId, { state: l.state, version: l.version, position: last.get(streamId)! });
      // the committed state is shared from now on (the cache holds it): copied before it changes again
      l.owned = false;
    }
  }

  /** Commit through a synchronous log (an asynchronous one commits through withSession). */
  protected commitSync(unit: UnitCommit): CommitResult {
    const port = this.log as Partial<SyncLogPort>;
    if (port.mode !== 'sync') throw new Error('this log commits asynchronously: run the work through withSession');
    const r = port.commit!(unit);
    this.committed(r);
    return r;
  }
}

/** A stream's state as its model's type (null while the stream has no events). */
export function stateOf<S extends StreamState>(work: UnitOfWork, streamId: string): S | null {
  return work.load(streamId).state as S | null;
}

/** The same, or not_found naming what is missing: e.g. { noun: 'host', key: 'hostId', id } refuses with "no host '<id>'". */
export function requireState<S extends StreamState>(work: UnitOfWork, streamId: string, what: { noun: string; key: string; id: string }): S {
  const s = stateOf<S>(work, streamId);
  if (!s) throw new DomainError('not_found', `no ${what.noun} '${what.id}'`, { [what.key]: what.id });
  return s;
}
