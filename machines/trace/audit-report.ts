// The trace audit's report (audit.ts): per VM, its measurement (audit-measure.ts) as the answer
// shows it, and the findings the rules drew from it (audit-rules.ts), each citing trace lines.
import type { Severity } from '../audit/report.js';
import type { MasterClockMeasure, TraceMeasurement } from './audit-measure.js';
import type { TraceImportedData } from './state.js';

export type { Arm64Timer, Arm64TimerState, Arm64TimerVcpu } from './arm64-timers.js';
export type { TraceTscWrite, TraceVcpu } from './audit-measure.js';

export type TraceFindingCode =
  | 'events_lost'
  | 'tsc_offsets_differ'
  | 'tsc_write_outside_sync_window'
  | 'master_clock_lost'
  | 'master_clock_off'
  | 'master_clock_before_vcpus'
  | 'pvclock_tsc_stable_cleared'
  | 'pvclock_time_step';

export interface TraceFinding {
  code: TraceFindingCode;
  severity: Severity;
  message: string;
  /** trace line numbers of the events behind it */
  lines: number[];
}

/** One VM's audit: its measurement (audit-measure.ts), the master clock as the answer shows it, and the findings. */
export interface TraceVmAudit extends Omit<TraceMeasurement, 'masterClock'> {
  vm: string;
  /** the master clock's final state, its transitions and how many updates the capture holds */
  masterClock: Pick<MasterClockMeasure, 'final' | 'finalLine' | 'transitions' | 'creationLine' | 'beforeVcpus'> & { updates: number };
  findings: TraceFinding[];
}

export interface TraceAudit {
  traceId: string;
  format: string;
  source: string | null;
  events: number;
  /** the capture dropped events (every VM's audit may miss some): the lost-event lines */
  lost: { line: number; cpu: number; events: number }[];
  vms: TraceVmAudit[];
}

/** One VM's audit: its measurement in the answer's order, and the findings. */
export function traceVmAudit(vm: string, m: TraceMeasurement, findings: TraceFinding[]): TraceVmAudit {
  const mc = m.masterClock;
  return {
    vm,
    arm64Timers: m.arm64Timers,
    guestTscHz: m.guestTscHz,
    guestTscHzFrom: m.guestTscHzFrom,
    vcpus: m.vcpus,
    tscOffsetSpreadCycles: m.tscOffsetSpreadCycles,
    tscOffsetSpreadNs: m.tscOffsetSpreadNs,
    tscOffsetWrites: m.tscOffsetWrites,
    tscMsrWrites: m.tscMsrWrites,
    masterClock: {
      final: mc.final,
      finalLine: mc.finalLine,
      updates: mc.updateLines.length,
      transitions: mc.transitions,
      creationLine: mc.creationLine,
      beforeVcpus: mc.beforeVcpus,
    },
    pvclock: m.pvclock,
    findings,
  };
}

/** The audit of a trace: its head, and each VM's audit. */
export function traceAudit(head: TraceImportedData, vms: TraceVmAudit[]): TraceAudit {
  return { traceId: head.traceId, format: head.format, source: head.source, events: head.events, lost: head.lost ?? [], vms };
}
