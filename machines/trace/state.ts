// An imported host trace as a stream of the log: one TraceImported event (what was read, from
// where), then one TracepointObserved event per known tracepoint hit, in capture order, each with
// its line number and trace timestamp. Observed events: nothing is re-executed from them.
import { toSortedJson, type Json } from '../codec.js';
import type { TraceFields, TraceFormat, TraceLineCounts, TraceRecord } from './parse.js';

export { TRACE_STREAM_PREFIX, traceIdOf, traceStreamId } from '../stream-ids.js';

export interface TraceImportedData {
  traceId: string;
  format: TraceFormat;
  /** the file it came from, when imported from one */
  source: string | null;
  events: number;
  ignored: number;
  ignoredByEvent: Record<string, number>;
  /** per event read, how many lines (absent in traces imported before it was recorded) */
  readByEvent?: Record<string, number>;
  /** what every line of the capture was (absent in traces imported before it was recorded) */
  lines?: TraceLineCounts;
  /** the first line of no layout read here, as it reads (absent before it was recorded) */
  firstUnreadable?: { line: number; text: string } | null;
  /** events the ring buffer dropped ("CPU:N [LOST M EVENTS]"), where */
  lost: { line: number; cpu: number; events: number }[];
  /** the VMs the events were told apart into, with how each was named */
  vms: { vm: string; pids: number[]; tgid: number | null }[];
}

/** A record's columns as stored: u64 values (bigint) as decimal strings. */
type Stored<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] extends bigint | null ? string | null : T[K] };

/** A tracepoint hit as stored: the record's columns, the VM it was told apart into, its event name and its fields as JSON. */
export type TracepointData = Stored<Omit<TraceRecord, 'fields'>> & {
  vm: string;
  event: TraceFields['event'];
  fields: { [k: string]: Json };
};

export type TraceEvent = { type: 'TraceImported'; data: TraceImportedData } | { type: 'TracepointObserved'; data: TracepointData };

export interface TraceState {
  traceId: string;
  format: TraceFormat;
  source: string | null;
  /** tracepoint events recorded */
  observed: number;
  ignored: number;
  vms: string[];
}

export function applyTraceEvent(state: TraceState | null, ev: TraceEvent): TraceState {
  if (ev.type === 'TraceImported') {
    const d = ev.data;
    return { traceId: d.traceId, format: d.format, source: d.source, observed: 0, ignored: d.ignored, vms: d.vms.map((v) => v.vm) };
  }
  if (!state) throw new Error('a tracepoint event before its TraceImported');
  state.observed++;
  return state;
}

/** The stored form of a parsed record, in the log's canonical key order. */
export function tracepointData(r: TraceRecord, vm: string): TracepointData {
  const { event, ...fields } = r.fields;
  return {
    cpu: r.cpu,
    event,
    fields: toSortedJson(fields) as { [k: string]: Json },
    flags: r.flags,
    line: r.line,
    pid: r.pid,
    task: r.task,
    tgid: r.tgid,
    timeNs: r.timeNs === null ? null : r.timeNs.toString(),
    timestamp: r.timestamp,
    vm,
  };
}

/** The parsed record back from its stored form (tracepointData's inverse, less the VM): u64 values as bigint again. */
export function traceRecordOf(d: TracepointData): TraceRecord {
  const { line, task, pid, tgid, cpu, flags, timestamp } = d;
  return { line, task, pid, tgid, cpu, flags, timestamp, timeNs: d.timeNs === null ? null : BigInt(d.timeNs), fields: tracepointFields(d) };
}

/** The stored fields back as the parser's typed fields: the events with u64 fields take them as bigint. */
function tracepointFields(d: TracepointData): TraceFields {
  const f = d.fields as Record<string, unknown>;
  const big = (k: string) => BigInt(f[k] as string);
  switch (d.event) {
    case 'kvm_write_tsc_offset':
      return { event: d.event, vcpu: f.vcpu as number, prev: big('prev'), next: big('next') };
    case 'kvm_pvclock_update':
      return { ...(f as object), event: d.event, tscTimestamp: big('tscTimestamp'), systemTime: big('systemTime') } as TraceFields;
    case 'kvm_msr':
      return { ...(f as object), event: d.event, data: big('data') } as TraceFields;
    case 'kvm_timer_save_state':
    case 'kvm_timer_restore_state':
      return { ...(f as object), event: d.event, ctl: big('ctl'), cval: big('cval') } as TraceFields;
    default:
      return { ...(f as object), event: d.event } as TraceFields;
  }
}
