// The migration stream (migration-<id>): its parameters, the phases it went through, and how it
// ended. The ioctls themselves are recorded in the VM streams.
import type { Json } from '../codec.js';

export type MigrationPhase = 'pausing' | 'saving' | 'transferring' | 'restoring' | 'resuming' | 'verifying' | 'rollingBack';
export type MigrationStatus = 'running' | 'completed' | 'failed';

export interface MigrationStartedData {
  migrationId: string;
  vmId: string;
  newVmId: string;
  fromHost: string;
  toHost: string;
  /** the strategy's name (without release or switches) */
  strategy: string;
  /** the modelled release it ran; absent: the strategy's baseline release (what it modelled before releases were recorded) */
  release?: string;
  /** that release's behaviour switches as in force (overrides applied); absent with release */
  switches?: { [k: string]: boolean };
  params: { [k: string]: Json };
  /**
   * a clone: the guest restored from a template's one save (vmId is the template's VM). Its phases
   * begin with the template's pausing and saving, as they were recorded then; absent: a migration.
   */
  template?: { templateId: string; phases: { phase: 'pausing' | 'saving' | 'transferring'; time: string; marks: PhaseMarks }[] };
}

/** Where each VM stream stood when a phase began: the audit cuts the VM logs at these versions. */
export interface PhaseMarks {
  time: string;
  source: { vmId: string; version: number };
  destination: { vmId: string; version: number } | null;
}

export interface MigrationFailure {
  step: string;
  reason: string;
  /** the refused ioctl's event (its global position is known once recorded) */
  ref: { streamId: string; version: number } | null;
}

export type MigrationEvent =
  | { type: 'MigrationStarted'; data: MigrationStartedData }
  | { type: 'MigrationPhaseEntered'; data: { phase: MigrationPhase; marks?: PhaseMarks } }
  | { type: 'BlackoutElapsed'; data: { ns: string } }
  | { type: 'MigrationCompleted'; data: Record<string, never> }
  | { type: 'MigrationFailed'; data: MigrationFailure };

export interface MigrationState extends MigrationStartedData {
  phase: MigrationPhase | null;
  phases: { phase: MigrationPhase; time: string; marks: PhaseMarks | null }[];
  status: MigrationStatus;
  failure: MigrationFailure | null;
  startedAt: string;
  endedAt: string | null;
}

export { migrationStreamId } from '../stream-ids.js';

export function applyMigrationEvent(state: MigrationState | null, ev: MigrationEvent, time: bigint): MigrationState {
  if (ev.type === 'MigrationStarted') {
    // a clone's save half is its template's (recorded there, before this stream began)
    const phases = (ev.data.template?.phases ?? []).map((p) => ({ phase: p.phase, time: p.time, marks: p.marks }));
    return { ...ev.data, phase: null, phases, status: 'running', failure: null, startedAt: time.toString(), endedAt: null };
  }
  if (!state) throw new Error(`${ev.type} before MigrationStarted`);
  switch (ev.type) {
    case 'MigrationPhaseEntered':
      state.phase = ev.data.phase;
      state.phases.push({ phase: ev.data.phase, time: time.toString(), marks: ev.data.marks ?? null });
      break;
    case 'BlackoutElapsed':
      break;
    case 'MigrationCompleted':
      state.status = 'completed';
      state.endedAt = time.toString();
      break;
    case 'MigrationFailed':
      state.status = 'failed';
      state.failure = ev.data;
      state.endedAt = time.toString();
      break;
  }
  return state;
}
