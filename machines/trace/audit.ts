// The audit of an imported host trace, from the log alone: per VM, the vCPUs' final TSC offsets
// and their spread, the TSC writes and their spacing against the kernel's one-second
// synchronization window, the master clock's transitions, and the pvclock the guest was given
// (its frequency, system_time steps, PVCLOCK_TSC_STABLE_BIT flips). Every finding cites the trace
// line numbers of the events behind it. A measurement pass (audit-measure.ts), a table of rules
// (audit-rules.ts) and the report (audit-report.ts).
import type { EventStore } from '../../store/types.js';
import { measureTraceVm, type TraceAuditOptions } from './audit-measure.js';
import { traceAudit, traceVmAudit, type TraceAudit, type TraceVmAudit } from './audit-report.js';
import { judgeTrace } from './audit-rules.js';
import { readTrace } from './read.js';
import { traceRecordOf, type TraceImportedData, type TracepointData } from './state.js';

export type { TraceAuditOptions } from './audit-measure.js';
export type { Arm64TimerState, Arm64TimerVcpu, TraceAudit, TraceFinding, TraceFindingCode, TraceTscWrite, TraceVcpu, TraceVmAudit } from './audit-report.js';

/** Audit an imported trace (null: no such trace). */
export function auditTrace(store: EventStore, traceId: string, opts: TraceAuditOptions = {}): TraceAudit | null {
  const trace = readTrace(store, traceId);
  if (!trace) return null;
  const lost = trace.head.lost ?? [];
  return traceAudit(
    trace.head,
    [...trace.byVm].map(([vm, evs]) => auditVm(vm, evs, opts, lost)),
  );
}

/** The audit of one VM's events as stored (in trace order); lost: the capture's lost-event lines. */
export function auditVm(vm: string, evs: TracepointData[], opts: TraceAuditOptions = {}, lost: TraceImportedData['lost'] = []): TraceVmAudit {
  const m = measureTraceVm(evs.map(traceRecordOf), opts);
  return traceVmAudit(vm, m, judgeTrace({ m, lost }));
}
