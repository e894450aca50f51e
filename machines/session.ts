// A unit of work: the streams one invocation reads, the events it decides to record, and the
// states those events evolve to. Nothing reaches the log until commit(), which appends every
// stream's events in one transaction, each checked against the version it was read at.
import { CodedError } from '../lib/coded-error.js';
import { produce } from 'immer';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { serialize } from 'node:v8';
import { sampleHost, type HostSample, type HostSpec, type HostState } from '../kvm/host.js';
import { ConflictError } from '../store/errors.js';
import type { AppendBatch, CommitResult, EventMetadata, EventStore, NewEvent, WrittenEvent } from '../store/types.js';
import { toJson, type Json } from './codec.js';
import { hostSpecToJson, hostStreamId, type HostEvent } from './host/host.js';
import { LEDGER_STREAM, type LedgerState } from './ledger/ledger.js';
import { rebuildStream, rememberTip } from './rebuild.js';
import { applyStreamEvent, copyStreamState, streamKind, type DomainEvent, type StreamState } from './streams.js';
import { CODE_VERSION } from './version.js';
import { vmIdOf, vmStreamId, VM_STREAM_PREFIX, type VmEvent } from './vm/events.js';
import type { VmRecord } from './vm/evolve.js';
import { decideVm } from './vm/decider.js';
import { vmRefusal, vmSnapshotOf, type VmCommand, type VmCommandInput } from './vm/machine.js';
import { catchupTickDue, dueTimer, nextTimerAt } from '../kvm/x86/vm.js';

/** The last instant the log can hold (signed 64-bit ns). */
const MAX_TIME = 1n << 63n;
/** Delayed works one invocation may record (each VM's kvmclock sync fires every 300 s). */
const MAX_TIMERS_PER_SESSION = 100_000;
/** How far past the instant asked for the session reads the log's wake index at once. */
const WAKE_LOOKAHEAD_NS = 1_000_000_000n;

/** A command the domain refuses: unknown ids, a state that does not allow it, a conflict. */
export class DomainError extends CodedError<'not_found' | 'invalid_state' | 'conflict' | 'invalid_request'> {}

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

/** The global position a recorded event got. */
export function positionOf(written: WrittenEvent[], ref: EventRef): number | null {
  return written.find((w) => w.streamId === ref.streamId && w.version === ref.version)?.position ?? null;
}

interface Loaded {
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

export class Session {
  private readonly loaded = new Map<string, Loaded>();
  /** states kept at instants an audit revisits (private copies; those to persist are serialized at commit) */
  private readonly snapshotsToSave: { streamId: string; version: number; state: StreamState; persist: boolean }[] = [];
  /** every recorded event in the order it was decided: the order it takes in the log */
  private readonly order: { streamId: string; event: NewEvent }[] = [];
  private clock: bigint | null = null;
  /** the instant the session began at */
  private beganAt: bigint | null = null;
  /** the instant the ledger has recorded time up to: the session's start, then each commit's */
  private ledgerAt: bigint | null = null;
  /** the log's wake index as the session read it, up to an instant */
  private wakeIndex: { upTo: bigint; due: { streamId: string; wakeAt: bigint }[] } | null = null;

  constructor(
    readonly store: EventStore,
    readonly meta: SessionMeta,
  ) {}

  private load(streamId: string): Loaded {
    let l = this.loaded.get(streamId);
    if (!l) {
      const r = rebuildStream(this.store, streamId);
      const vmId = vmIdOf(streamId);
      l = { base: r.version, state: r.state, owned: false, vmId, version: r.version, position: r.position, pending: [] };
      this.loaded.set(streamId, l);
    }
    return l;
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

  // ---- time -------------------------------------------------------------------------------

  /** The simulated true time. */
  now(): bigint {
    if (this.clock === null) {
      this.clock = logTime(this.store, (this.load(LEDGER_STREAM).state as LedgerState | null)?.now ?? 0n);
      this.beganAt = this.clock;
      this.ledgerAt = this.clock;
    }
    return this.clock;
  }

  /**
   * Let true time pass; the VMs' delayed kernel work fires at its due instants and is recorded.
   * The ledger records the session's whole advance once, at commit, after everything it covers.
   */
  advanceTime(ns: bigint): bigint {
    if (ns < 0n) throw new DomainError('invalid_request', 'time only moves forward');
    const from = this.now();
    const to = from + ns;
    if (ns === 0n) return from;
    if (to >= MAX_TIME) throw new DomainError('invalid_request', `time would pass ${MAX_TIME - 1n} ns (the log keeps signed 64-bit instants)`, { now: from.toString() });
    for (let fired = 0; ; fired++) {
      const best = this.nextDueVm(to);
      if (!best) break;
      if (fired >= MAX_TIMERS_PER_SESSION) {
        throw new DomainError('invalid_request', `advancing ${ns} ns would fire more than ${MAX_TIMERS_PER_SESSION} delayed clock works: advance in smaller steps`);
      }
      this.clock = best.at > this.clock! ? best.at : this.clock;
      const timer = dueTimer(this.vm(best.vmId)!.x86!, this.clock!)!;
      this.vmCommand(best.vmId, { type: 'timer', timer });
    }
    this.clock = to;
    return to;
  }

  /**
   * The VM whose delayed kernel work falls due first, at or before `to`: VMs this session has
   * loaded answer from their state; the others from the log's wake index.
   */
  private nextDueVm(to: bigint): { vmId: string; at: bigint } | null {
    // (called on every step of simulated time: no allocation on the way)
    let bestId: string | null = null;
    let bestAt = 0n;
    for (const l of this.loaded.values()) {
      if (l.vmId === null) continue;
      const at = wakeAtOf(l.state as VmRecord | null);
      if (at !== null && at <= to && (bestId === null || at < bestAt || (at === bestAt && l.vmId < bestId))) (bestId = l.vmId), (bestAt = at);
    }
    // The log cannot change under this session without its commit failing (the ledger conflicts),
    // so the wake index is read again only to look further ahead than before (a second at a time:
    // a migration advances time by microseconds per ioctl).
    if (this.wakeIndex === null || to > this.wakeIndex.upTo) {
      const upTo = to + WAKE_LOOKAHEAD_NS < MAX_TIME ? to + WAKE_LOOKAHEAD_NS : MAX_TIME - 1n;
      this.wakeIndex = { upTo, due: this.store.dueStreams(upTo, VM_STREAM_PREFIX) };
    }
    for (const d of this.wakeIndex.due) {
      if (d.wakeAt > to) break;
      if (this.loaded.has(d.streamId)) continue;
      const vmId = vmIdOf(d.streamId)!;
      if (bestId === null || d.wakeAt < bestAt || (d.wakeAt === bestAt && vmId < bestId)) (bestId = vmId), (bestAt = d.wakeAt);
    }
    return bestId === null ? null : { vmId: bestId, at: bestAt };
  }

  // ---- hosts ------------------------------------------------------------------------------

  host(hostId: string): HostState | null {
    return this.load(hostStreamId(hostId)).state as HostState | null;
  }

  requireHost(hostId: string): HostState {
    const h = this.host(hostId);
    if (!h) throw new DomainError('not_found', `no host '${hostId}'`, { hostId });
    return h;
  }

  createHost(spec: HostSpec): HostState {
    if (this.host(spec.id)) throw new DomainError('conflict', `host '${spec.id}' already exists`, { hostId: spec.id });
    const ev: HostEvent = { type: 'HostCreated', data: { spec: hostSpecToJson(spec) } };
    this.record(hostStreamId(spec.id), ev, this.now());
    return this.host(spec.id)!;
  }

  recordHostEvent(hostId: string, ev: HostEvent): HostState {
    this.requireHost(hostId);
    this.record(hostStreamId(hostId), ev, this.now());
    return this.host(hostId)!;
  }

  sample(hostId: string): HostSample {
    return sampleHost(this.requireHost(hostId), this.now());
  }

  // ---- VMs --------------------------------------------------------------------------------

  vm(vmId: string): VmRecord | null {
    return this.load(vmStreamId(vmId)).state as VmRecord | null;
  }

  requireVm(vmId: string): VmRecord {
    const v = this.vm(vmId);
    if (!v) throw new DomainError('not_found', `no VM '${vmId}'`, { vmId });
    return v;
  }

  /** Decide a VM command through the VM machine, record its event, and return the kernel's result. */
  vmCommand(vmId: string, cmd: Exclude<VmCommandInput, { type: 'guests' | 'exits' }>): { event: VmEvent; result: Json; ref: EventRef } {
    const d = this.vmCommands(vmId, cmd);
    return { event: d.events[0]!, result: d.results[0]!, ref: d.refs[0]! };
  }

  /**
   * Decide a VM command (a batch records one event per operation) and record its events: the VM's
   * lifecycle machine accepts or refuses it, then the decider runs the kernel once for it.
   */
  vmCommands(vmId: string, cmd: VmCommandInput): { events: VmEvent[]; results: Json[]; refs: EventRef[] } {
    const sid = vmStreamId(vmId);
    const l = this.load(sid);
    const rec = l.state as VmRecord | null;
    const refused = vmRefusal(vmId, vmSnapshotOf(rec), cmd);
    if (refused) throw new DomainError(refused.code, refused.message, refused.details);
    const hostId = rec ? rec.hostId : (cmd as Extract<VmCommandInput, { type: 'create' }>).data.hostId;
    const hw = this.sample(hostId);
    // a guest in software TSC catch-up exited at its last tick: the kernel needs the host as it was then
    const tick = rec?.x86 ? catchupTickDue(rec.x86, rec.lastTime, hw.t) : null;
    if (tick !== null) hw.tick = sampleHost(this.requireHost(hostId), tick);
    // (a record this session made itself is changed in place; one read from the log or the cache is copied first)
    const decision = decideVm({ ...cmd, hw } as VmCommand, rec, l.owned);
    const next = decision.state;
    // (the decider builds its events' data in the log's canonical key order)
    const refs = decision.events.map((ev) => this.record(sid, ev, hw.t, next, { profile: next.profile }, ev.type !== 'VmCreated'));
    l.owned = true;
    return { events: decision.events, results: decision.results, refs };
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
    if (l.version > 0 && l.state !== null) this.snapshotsToSave.push({ streamId, version: l.version, state: copyStreamState(streamKind(streamId), l.state), persist });
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

  /** The simulated instant the session began at. */
  startTime(): bigint {
    this.now();
    return this.beganAt!;
  }

  /** How many events this session has recorded so far. */
  pendingCount(): number {
    return this.order.length;
  }

  // ---- commit -----------------------------------------------------------------------------

  commit(response?: (written: WrittenEvent[]) => unknown): CommitResult {
    if (this.ledgerAt !== null && this.clock !== null && this.clock > this.ledgerAt) {
      const from = this.ledgerAt;
      this.ledgerAt = this.clock;
      this.record(LEDGER_STREAM, { type: 'TimeAdvanced', data: { from: from.toString(), to: this.clock.toString() } }, this.clock);
    }
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
    // Each VM's next delayed work goes into the wake index, set with its stream's last batch.
    // Everything this session recorded happened at or after the time it read: if another writer
    // moved time on meanwhile, the commit must fail and the work be decided again.
    const ledger = this.loaded.get(LEDGER_STREAM);
    if (ledger && !next.has(LEDGER_STREAM) && batches.length) batches.push({ streamId: LEDGER_STREAM, expectedVersion: ledger.base, events: [] });
    const lastBatch = new Map<string, AppendBatch>();
    for (const b of batches) lastBatch.set(b.streamId, b);
    for (const [sid, b] of lastBatch) if (this.loaded.get(sid)!.vmId !== null) b.wakeAt = wakeAtOf(this.loaded.get(sid)!.state as VmRecord | null);
    // Snapshots kept for later audits are written in the same transaction as the events.
    const alsoWrite = (written: WrittenEvent[]) => {
      for (const sn of this.snapshotsToSave) {
        if (!sn.persist) continue;
        const position = positionOf(written, sn) ?? this.store.positionOfVersion(sn.streamId, sn.version);
        if (position !== undefined && position !== null) {
          this.store.saveSnapshot({ streamId: sn.streamId, version: sn.version, position, codeVersion: CODE_VERSION, state: serialize(sn.state) });
        }
      }
    };
    const r = this.store.commit(batches, { requestId: this.meta.requestId, fingerprint: this.meta.fingerprint, handler: this.meta.handler, response, alsoWrite });
    if (!r.duplicate) {
      const last = new Map<string, number>();
      for (const w of r.written) last.set(w.streamId, w.position);
      for (const [streamId, l] of this.loaded) {
        if (!l.pending.length) continue;
        rememberTip(this.store, streamId, { state: l.state, version: l.version, position: last.get(streamId)! });
        // the committed state is shared from now on (the cache holds it): copied before it changes again
        l.owned = false;
      }
    }
    return r;
  }
}

/**
 * The instant the log has reached: the ledger's time, or its last event's if that is later. A
 * session records the ledger's advance last, at commit; a fork cut inside that commit keeps the
 * events and loses the ledger's record of them, and its clock must not run behind its own log.
 * (Positions grow with time, so the last event is the latest.)
 */
export function logTime(store: EventStore, ledgerNow: bigint): bigint {
  const last = store.lastPosition();
  if (last === 0) return ledgerNow;
  let t = ledgerNow;
  for (const r of store.scan({ fromPosition: last, toPosition: last, withoutMetadata: true })) if (BigInt(r.time) > t) t = BigInt(r.time);
  return t;
}

/** When a VM's delayed kernel work next falls due (null: none, or the VM is gone). */
function wakeAtOf(rec: VmRecord | null): bigint | null {
  if (!rec || rec.destroyed || !rec.x86) return null;
  return nextTimerAt(rec.x86);
}

/**
 * How a session that lost a race is retried: up to `attempts` times, each after a random pause
 * of 0 to min(maxDelayMs, baseDelayMs × 2^retry) ms (exponential backoff with full jitter, so
 * writers that collided do not collide again in step). The defaults leave about 12 s of backoff
 * before a request gives up with `conflict`.
 */
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 150, baseDelayMs: 1, maxDelayMs: 160 };

/** The pause before retry number `retry` (1-based): timing only, never part of a recorded result. */
export function retryDelayMs(retry: number, p: RetryPolicy = DEFAULT_RETRY): number {
  const cap = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.min(retry, 30));
  return randomInt(0, Math.max(1, Math.floor(cap)) + 1);
}

/** Run a use case in a session, retrying from scratch (after a backoff) when another writer got in first. */
export async function withSession<T>(
  store: EventStore,
  meta: SessionMeta,
  work: (s: Session) => T,
  respond: (value: T, written: WrittenEvent[]) => unknown,
  retry: RetryPolicy = DEFAULT_RETRY,
): Promise<{ response: unknown; duplicate: boolean }> {
  if (meta.requestId !== undefined) {
    const prior = store.findRequest(meta.requestId, meta.fingerprint);
    if (prior) return { response: prior.response, duplicate: true };
  }
  for (let i = 1; ; i++) {
    const s = new Session(store, meta);
    const value = work(s);
    try {
      const r = s.commit((written) => toJson(respond(value, written)));
      return { response: r.response, duplicate: r.duplicate };
    } catch (e) {
      if (!(e instanceof ConflictError) || i >= retry.attempts) {
        if (e instanceof ConflictError) throw new DomainError('conflict', `${e.message} (given up after ${i} attempts)`, { ...e.details, attempts: i });
        throw e;
      }
      // Someone appended to a stream we read: decide again from the new state, after a pause
      // that lets other work of this process run meanwhile.
      await sleep(retryDelayMs(i, retry));
    }
  }
}
