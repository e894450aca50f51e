// An imported trace read back from the log: its TraceImported head and its tracepoint hits grouped
// by the VM they were told apart into, in capture order (the audit and the conformance check read it so).
import type { EventStore } from '../../store/types.js';
import { decodeRaw } from '../rebuild.js';
import { traceStreamId, type TraceImportedData, type TracepointData } from './state.js';

export interface StoredTrace {
  head: TraceImportedData;
  byVm: Map<string, TracepointData[]>;
}

/** The trace's head and its hits per VM (null: no such trace). */
export function readTrace(store: EventStore, traceId: string): StoredTrace | null {
  let head: TraceImportedData | null = null;
  const byVm = new Map<string, TracepointData[]>();
  for (const raw of store.scan({ streamId: traceStreamId(traceId), withoutMetadata: true })) {
    const ev = decodeRaw(raw);
    if (ev.type === 'TraceImported') {
      head = ev.data as TraceImportedData;
      for (const v of head.vms) byVm.set(v.vm, []);
    } else if (ev.type === 'TracepointObserved') {
      const d = ev.data as TracepointData;
      (byVm.get(d.vm) ?? byVm.set(d.vm, []).get(d.vm)!).push(d);
    }
  }
  return head ? { head, byVm } : null;
}
