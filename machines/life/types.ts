// The parts of a guest's life (machines/life/life.ts folds them): its samples, marks, stops and
// findings, and the spans of true time it ran or stood still in.
import type { AuditReport } from '../audit/report.js';
import type { LifeStop } from './lineage.js';

/** One instant of the life. */
export interface LifeSample {
  timeNs: bigint;
  /** the VM the guest runs on (in a blackout: the one it stopped on) */
  vmId: string;
  /** guest CLOCK_REALTIME − the host's CLOCK_REALTIME */
  realtimeErrorNs: bigint;
  /** kvmclock's advance since the guest first ran − true time's (null: no kvmclock) */
  kvmclockErrorNs: bigint | null;
  /** the boot vCPU's TSC (arm64: CNTVCT) advance since, at its nominal rate, − true time's */
  tscErrorNs: bigint;
  clocksource: string;
}

export type LifeMarkKind =
  | 'created'
  | 'migration'
  | 'standby'
  | 'clone'
  | 'template'
  | 'failed'
  | 'restore'
  | 'correction'
  | 'clocksource'
  | 'configured'
  | 'source-lost'
  | 'destroyed';

/** Something that happened to the guest. */
export interface LifeMark {
  timeNs: bigint;
  kind: LifeMarkKind;
  vmId: string;
  text: string;
  migrationId?: string;
  /** a kept template's stop and resume, or a VM saved as a template and destroyed: the template */
  templateId?: string;
  /** corrections: which time source, what it did, and the error before and after */
  source?: 'chrony' | 'ntpd' | 'ptp_kvm' | 'agent';
  action?: 'step' | 'slew';
  beforeNs?: bigint;
  afterNs?: bigint;
}

/** One stop of the life: its audit's verdict, the error it left, and how long it lasted beyond the step threshold. */
export interface LifeCycle {
  index: number;
  /** the migration (a template's stop: the template's id) */
  migrationId: string;
  /** template: the VM saved as a template and kept paused until its vCPUs ran again (no migration: nothing audits it, verdict null) */
  kind: 'migration' | 'standby' | 'clone' | 'template';
  vmId: string;
  nextVmId: string;
  stopTime: bigint;
  resumeTime: bigint | null;
  verdict: AuditReport['verdict'] | null;
  clocksource: { before: string; after: string };
  /** CLOCK_REALTIME's error as the stop began and as the guest resumed */
  errorAtStopNs: bigint;
  errorAtResumeNs: bigint | null;
  /** the first correction after the resume that brought the error within `toleranceNs` (null: none before the next stop or the end) */
  correctedAt: bigint | null;
  correctedBy: string | null;
}

export interface LifeFinding {
  code: 'realtime_beyond_tolerance' | 'realtime_within_tolerance' | 'tsc_marked_unstable' | 'unsynchronised_drift' | 'refclock_unavailable' | 'ntpd_exited';
  severity: 'info' | 'warn' | 'fail';
  timeNs: bigint;
  message: string;
  /** the cycle (1-based) and migration that made it, where one did */
  cycle?: number;
  migrationId?: string;
}

/** Where the guest is at an instant: the VM it runs on (or stopped on), and whether it runs. */
export interface Span {
  vmId: string;
  from: bigint;
  until: bigint;
  running: boolean;
  stop: LifeStop | null;
}
