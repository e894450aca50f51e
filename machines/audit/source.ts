// What an audit reads: the migration's stream, the VM states at its cut points, the hosts, and
// the VM events it cites. Either from the log (any time, any process, under any profile), or from
// the session that just committed the migration: the same events and states, already in memory,
// so the migrate handler does not read back and decode what it has just written.
import type { HostState } from '../../kvm/host.js';
import type { EventStore, WrittenEvent } from '../../store/types.js';
import { hostStreamId } from '../host/host.js';
import type { LedgerState } from '../ledger/ledger.js';
import type { GuestConfigState } from '../life/config.js';
import { guestStreamId, LEDGER_STREAM, MIGRATION_STREAM_PREFIX, migrationIdOf, TEMPLATE_STREAM_PREFIX, templateIdOf, templateStreamId } from '../stream-ids.js';
import { migrationStreamId, type MigrationState } from '../migration/state.js';
import type { TemplateState } from '../migration/template.js';
import { rebuildStream, scanDecoded } from '../rebuild.js';
import type { Session } from '../session/index.js';
import { vmStreamId, type IoctlIssuedData } from '../vm/events.js';
import { vcpusOf, type EvolveOptions, type VmRecord } from '../vm/evolve.js';

/** A recorded event as the audit looks at it. */
export interface LoggedEvent {
  position: number;
  type: string;
  time: bigint;
  data: unknown;
}

export interface AuditSource {
  /** the migration's current state and its events */
  migration(migrationId: string): { state: MigrationState; events: LoggedEvent[] } | null;
  /** a VM's state at a stream version */
  vmAt(vmId: string, version: number): VmRecord | null;
  /** a VM's state at a true instant: after its last event at or before it (null: none yet) */
  vmAtTime(vmId: string, time: bigint): VmRecord | null;
  /** a host's state at an instant (default: its current state) */
  host(hostId: string, time?: bigint): HostState | null;
  /**
   * a VM's events between two global positions (inclusive); `omitDataFields`: top-level fields of their
   * data the caller does not read (a source may leave them out, or give them)
   */
  vmEvents(vmId: string, fromPosition: number, toPosition?: number, omitDataFields?: string[]): LoggedEvent[];
  /** a stream's version as of a global position (default: now) */
  streamVersion(streamId: string, atPosition?: number): number;
  positionOfVersion(streamId: string, version: number): number | null;
  /**
   * the instant the last of these vCPUs of a VM first entered KVM_RUN (the guest running on it: a VM a
   * migration created runs from its resume), null if one never did
   */
  firstRun(vmId: string, vcpus: number[]): bigint | null;
  /** every migration's id in the log (the guest's life is read along them) */
  migrationIds(): string[];
  /** every template's id in the log, and a template's state (a VM saved as one and kept paused has a stop in its life) */
  templateIds(): string[];
  template(templateId: string): TemplateState | null;
  /** the guest recorded with a VM (null: none, the default guest) */
  guestConfig(vmId: string): GuestConfigState | null;
  /** whether the log holds any recorded guest (none: every audit is of a guest fresh at its stop, as before guests were recorded) */
  hasRecordedGuests(): boolean;
  /** the ledger's true time now (the end of every guest's life so far) */
  now(): bigint;
}

/** Over a VM's events in log order: the instant the last of `vcpus` first entered KVM_RUN (stops reading there). */
function firstRunOf(events: Iterable<{ type: string; time: bigint | string; data: unknown }>, vcpus: number[]): bigint | null {
  const waiting = new Set(vcpus);
  for (const e of events) {
    if (e.type !== 'IoctlIssued') continue;
    const d = e.data as IoctlIssuedData;
    if (d.ioctl !== 'KVM_RUN' || d.vcpu === null || !waiting.delete(d.vcpu)) continue;
    if (!waiting.size) return BigInt(e.time);
  }
  return null;
}

/**
 * A VM stream's KVM_RUN ioctls from the log, in order, for firstRunOf: only rows whose stored text
 * names that ioctl are decoded (canonical JSON writes it as "ioctl":"KVM_RUN", so no other row can
 * be one), not every guest read and exit before them.
 */
function* kvmRunRows(store: EventStore, streamId: string): Generator<{ type: string; time: string; data: unknown }> {
  for (const r of store.scan({ streamId, withoutMetadata: true })) {
    if (r.type === 'IoctlIssued' && r.data.includes('"ioctl":"KVM_RUN"')) yield { type: r.type, time: r.time, data: JSON.parse(r.data) as unknown };
  }
}

function scanEvents(store: EventStore, streamId: string, fromPosition?: number, toPosition?: number, omitDataFields?: string[]): LoggedEvent[] {
  // a chunk of rows at a time where the engine can (one string and one JSON.parse per chunk)
  const out: LoggedEvent[] = [];
  for (const c of scanDecoded(store, { streamId, fromPosition, toPosition, ...(omitDataFields?.length ? { omitDataFields } : {}) })) {
    for (let i = 0; i < c.length; i += 6) out.push({ position: c[i] as number, type: c[i + 3] as string, time: BigInt(c[i + 4] as string), data: c[i + 5] });
  }
  return out;
}

/** The audit's reads answered from the log (VM states re-executed under `opts.profile` if given). */
export function logAuditSource(store: EventStore, opts: EvolveOptions = {}): AuditSource {
  return {
    migration(migrationId) {
      const state = rebuildStream<MigrationState>(store, migrationStreamId(migrationId)).state;
      return state ? { state, events: scanEvents(store, migrationStreamId(migrationId)) } : null;
    },
    vmAt: (vmId, version) => rebuildStream<VmRecord>(store, vmStreamId(vmId), { version }, opts).state,
    vmAtTime: (vmId, time) => rebuildStream<VmRecord>(store, vmStreamId(vmId), { time }, opts).state,
    host: (hostId, time) => rebuildStream<HostState>(store, hostStreamId(hostId), time === undefined ? {} : { time }).state,
    vmEvents: (vmId, fromPosition, toPosition, omitDataFields) => scanEvents(store, vmStreamId(vmId), fromPosition, toPosition, omitDataFields),
    streamVersion: (streamId, atPosition) => store.streamVersion(streamId, atPosition),
    positionOfVersion: (streamId, version) => store.positionOfVersion(streamId, version) ?? null,
    firstRun: (vmId, vcpus) => firstRunOf(kvmRunRows(store, vmStreamId(vmId)), vcpus),
    migrationIds: () => store.streams(MIGRATION_STREAM_PREFIX).map((sid) => migrationIdOf(sid)!),
    templateIds: () => store.streams(TEMPLATE_STREAM_PREFIX).map((sid) => templateIdOf(sid)!),
    template: (templateId) => rebuildStream<TemplateState>(store, templateStreamId(templateId)).state,
    guestConfig: (vmId) => (store.streamVersion(guestStreamId(vmId)) ? rebuildStream<GuestConfigState>(store, guestStreamId(vmId)).state : null),
    hasRecordedGuests: () => store.countCategory('guest') > 0,
    now: () => rebuildStream<LedgerState>(store, LEDGER_STREAM).state?.now ?? 0n,
  };
}

/**
 * First-run instants already known, per log (the store a session committed to), by VM stream and
 * vCPUs. Once every vCPU named has entered KVM_RUN the answer is fixed: the log only grows. A
 * session that created a VM leaves its answer here, so the audit of the migration that later moves
 * that VM on does not read the VM's stream back from the log.
 */
const knownFirstRuns = new WeakMap<EventStore, Map<string, bigint>>();
const firstRunKey = (streamId: string, vcpus: readonly number[]) => `${streamId}\u0000${vcpus.join(',')}`;

/**
 * The audit's reads answered from a session that has just committed (its recorded events with the
 * positions the commit gave them, the states it kept at the migration's cut points); anything the
 * session did not hold is read from the log.
 */
export function sessionAuditSource(session: Session, written: WrittenEvent[], store: EventStore): AuditSource {
  const log = logAuditSource(store);
  const positions = new Map<string, number>();
  for (const w of written) positions.set(`${w.streamId}\u0000${w.version}`, w.position);
  const firstWritten = written[0]?.position ?? Infinity;
  const eventsOf = (streamId: string): LoggedEvent[] =>
    session.recorded(streamId).map(({ version, event }) => ({
      position: positions.get(`${streamId}\u0000${version}`)!,
      type: event.type,
      time: event.time,
      data: event.data,
    }));
  let known = knownFirstRuns.get(store);
  if (!known) knownFirstRuns.set(store, (known = new Map()));
  // The VMs this session created: their whole streams are its own events (what the session holds
  // live), so when their vCPUs first ran is known now, for their own later audits.
  for (const l of session.heldStreams()) {
    if (l.vmId === null || l.base !== 0 || l.state === null || !l.pending.length) continue;
    const sid = vmStreamId(l.vmId);
    const vcpus = vcpusOf(l.state as VmRecord).map((v) => v.id);
    const t = firstRunOf(
      session.recorded(sid).map((r) => r.event),
      vcpus,
    );
    if (t !== null) known.set(firstRunKey(sid, vcpus), t);
  }
  return {
    migration(migrationId) {
      const sid = migrationStreamId(migrationId);
      // the whole stream was written by this session (it began the migration)
      if (session.baseVersion(sid) !== 0) return log.migration(migrationId);
      const state = session.stream(sid) as MigrationState | null;
      return state ? { state, events: eventsOf(sid) } : null;
    },
    vmAt(vmId, version) {
      const sid = vmStreamId(vmId);
      const kept = session.keptState(sid, version);
      if (kept) return kept as VmRecord;
      if (session.currentVersion(sid) === version) return session.stream(sid) as VmRecord | null;
      return log.vmAt(vmId, version);
    },
    // the session has committed: the log holds every state it passed through
    vmAtTime: (vmId, time) => log.vmAtTime(vmId, time),
    host(hostId, time) {
      const sid = hostStreamId(hostId);
      // A host this session read and did not change, and nobody changed since (another process
      // may append to a stream this session only read): its state holds from its last event, which
      // the log has before this session began (positions grow with time), so at any instant asked here.
      const read = session.currentVersion(sid);
      if (read !== null && session.baseVersion(sid) === read && store.streamVersion(sid) === read && (time === undefined || time >= session.startTime())) {
        return session.stream(sid) as HostState | null;
      }
      return log.host(hostId, time);
    },
    vmEvents(vmId, fromPosition, toPosition, omitDataFields) {
      const sid = vmStreamId(vmId);
      if (fromPosition < firstWritten) return log.vmEvents(vmId, fromPosition, toPosition, omitDataFields);
      return eventsOf(sid).filter((e) => e.position >= fromPosition && (toPosition === undefined || e.position <= toPosition));
    },
    streamVersion: (streamId, atPosition) => log.streamVersion(streamId, atPosition),
    // the session has committed: the log holds every migration and guest it recorded
    migrationIds: () => log.migrationIds(),
    templateIds: () => log.templateIds(),
    template: (templateId) => log.template(templateId),
    guestConfig: (vmId) => log.guestConfig(vmId),
    hasRecordedGuests: () => log.hasRecordedGuests(),
    now: () => log.now(),
    positionOfVersion: (streamId, version) => positions.get(`${streamId}\u0000${version}`) ?? log.positionOfVersion(streamId, version),
    // the log up to this session, then what it recorded (a VM this session created is in neither part alone)
    firstRun: (vmId, vcpus) => {
      const sid = vmStreamId(vmId);
      const hit = known.get(firstRunKey(sid, vcpus));
      if (hit !== undefined) return hit;
      const base = session.baseVersion(sid);
      return firstRunOf(
        (function* () {
          if (base !== 0) yield* kvmRunRows(store, sid);
          yield* eventsOf(sid);
        })(),
        vcpus,
      );
    },
  };
}
