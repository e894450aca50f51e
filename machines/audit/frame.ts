// The audit's frame, the same for every architecture: the migration, the guest as its stop began
// (before), the guest as it resumed (after: the destination, or the source once it resumed after a
// failure; none while the migration is in flight), the true time between them, and the recorded
// VM events of the migration that findings cite.
import type { HostState } from '../../kvm/host.js';
import type { MigrationState } from '../migration/state.js';
import { vmStreamId, type IoctlIssuedData } from '../vm/events.js';
import type { VmRecord } from '../vm/evolve.js';
import type { AuditSource, LoggedEvent } from './source.js';

/** The guest on one side of the stop: its state, its host's, and the true time. */
export interface Side {
  rec: VmRecord;
  host: HostState;
  time: bigint;
}

export interface AuditFrame {
  src: AuditSource;
  mig: MigrationState;
  /** the migration's recorded events */
  migEvents: LoggedEvent[];
  before: Side;
  after: Side | null;
  stopTime: bigint;
  /** the resume's true time (the stop's while nothing resumed) */
  resumeTime: bigint;
  /** true time from the stop to the resume (0 while nothing resumed) */
  elapsedNs: bigint;
  /** the recorded events of the VMs of this migration, in log order */
  vmEvents: LoggedEvent[];
  /** the positions of this migration's ioctls that match */
  ioctls(pred: (d: IoctlIssuedData) => boolean): number[];
  /** the position of the refused step's event (failed migrations) */
  failurePosition: number | null;
}

function sideAt(src: AuditSource, vmId: string, version: number, time: bigint): Side | null {
  const rec = src.vmAt(vmId, version);
  if (!rec) return null;
  const host = src.host(rec.hostId, time)!;
  return { rec, host, time };
}

/** A clone's save half: the template VM's events from its stop to the save's end. */
function templateSaveEvents(src: AuditSource, mig: MigrationState): LoggedEvent[] {
  const phases = mig.template!.phases;
  const sid = vmStreamId(mig.vmId);
  const from = src.positionOfVersion(sid, phases[0]!.marks.source.version + 1);
  const to = src.positionOfVersion(sid, phases[phases.length - 1]!.marks.source.version);
  return from === null || to === null || to < from ? [] : src.vmEvents(mig.vmId, from, to);
}

/** The frame of one migration, or null if the source holds no such migration. */
export function frameOf(src: AuditSource, migrationId: string): AuditFrame | null {
  const m = src.migration(migrationId);
  if (!m) return null;
  const { state: mig, events: migEvents } = m;
  const phase = (name: string) => mig.phases.find((p) => p.phase === name);
  const pausing = phase('pausing');
  const endEvent = migEvents.find((e) => e.type === 'MigrationCompleted' || e.type === 'MigrationFailed');

  // Before: the source as the stop began (a migration cut before its first phase: as it started).
  // After: the destination as its guest resumed, or the source once it resumed after a failure.
  const stopTime = BigInt(pausing?.time ?? mig.startedAt);
  const srcVersion = pausing?.marks?.source.version ?? src.streamVersion(vmStreamId(mig.vmId), migEvents[0]!.position);
  const before = sideAt(src, mig.vmId, srcVersion, stopTime)!;
  let after: Side | null = null;
  if (mig.status === 'completed') {
    const v = phase('verifying')!;
    after = sideAt(src, mig.newVmId, v.marks!.destination!.version, BigInt(v.time));
  } else if (endEvent && mig.template) {
    // a clone that failed: its VM was torn down and the template's VM was never stopped by it
    after = null;
  } else if (endEvent) {
    const srcVersion = src.streamVersion(vmStreamId(mig.vmId), endEvent.position);
    after = sideAt(src, mig.vmId, srcVersion, endEvent.time);
  }

  // The recorded VM events of this migration, for citations.
  const vmEventsOf = (vmId: string) => src.vmEvents(vmId, migEvents[0]!.position, endEvent?.position);
  const vmEvents = [
    // a clone: the template VM's pause and save (its events of the clone's own span are not the clone's)
    ...(mig.template ? templateSaveEvents(src, mig) : vmEventsOf(mig.vmId)),
    ...(mig.newVmId !== mig.vmId && (mig.status === 'completed' || src.streamVersion(vmStreamId(mig.newVmId)) > 0) ? vmEventsOf(mig.newVmId) : []),
  ].sort((a, b) => a.position - b.position);
  const resumeTime = after?.time ?? stopTime;
  return {
    src,
    mig,
    migEvents,
    before,
    after,
    stopTime,
    resumeTime,
    elapsedNs: resumeTime - stopTime,
    vmEvents,
    ioctls: (pred) => vmEvents.filter((e) => e.type === 'IoctlIssued' && pred(e.data as IoctlIssuedData)).map((e) => e.position),
    failurePosition: mig.failure?.ref ? src.positionOfVersion(mig.failure.ref.streamId, mig.failure.ref.version) : null,
  };
}
