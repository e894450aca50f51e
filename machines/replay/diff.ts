// Comparing two logs (two databases, or a log and its fork): stream by stream, version by
// version, where the recorded inputs are the same and the results differ.
import type { EventStore, StoredEvent } from '../../store/types.js';
import type { Json } from '../codec.js';
import { VM_STREAM_PREFIX, type VmEvent } from '../vm/events.js';
import { jsonEqual, recordedOutcome, type Outcome } from './compare.js';

// What the kernel produced, and which kernel it was: neither is an input of the VMM's.
const NOT_INPUTS = new Set(['ret', 'errno', 'out', 'result', 'trace', 'profile']);

/** An event's inputs: its type, instant and data without what the kernel produced or which kernel ran. */
function inputsOf(e: StoredEvent): Json {
  const data = e.data as Record<string, Json>;
  const kept: Record<string, Json> = {};
  for (const [k, v] of Object.entries(data ?? {})) {
    if (NOT_INPUTS.has(k)) continue;
    // a host's spec names its kernel profile too
    kept[k] = k === 'spec' && v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).filter(([x]) => x !== 'profile')) : v;
  }
  return { type: e.type, time: e.time.toString(), data: kept };
}

/** The kernel profile a host or VM stream's first event records (null: another kind of stream). */
function profileOf(e: StoredEvent | undefined): string | null {
  const d = e?.data as { profile?: unknown; spec?: { profile?: unknown } } | undefined;
  const p = d?.profile ?? d?.spec?.profile;
  return typeof p === 'string' ? p : null;
}

export interface ResultDifference {
  streamId: string;
  version: number;
  positionA: number;
  positionB: number;
  type: string;
  ioctl?: string;
  op?: string;
  vcpu: number | null;
  a: Outcome;
  b: Outcome;
}

export interface DiffResult {
  streamsCompared: number;
  eventsCompared: number;
  onlyInA: string[];
  onlyInB: string[];
  /** the first version of a stream whose inputs differ: later events of that stream are not comparable */
  inputsDiverge: { streamId: string; version: number; positionA: number; positionB: number }[];
  /** streams (hosts, VMs) recorded under a different kernel profile in each log: their results are expected to differ */
  profileDifferences: { streamId: string; a: string; b: string }[];
  /** same inputs, different results (sorted by position in A) */
  differences: ResultDifference[];
  differenceCount: number;
  firstDifference: ResultDifference | null;
}

export function diffLogs(a: EventStore, b: EventStore, opts: { streamPrefix?: string; keep?: number } = {}): DiffResult {
  const prefix = opts.streamPrefix ?? '';
  const sa = new Set(a.streams(prefix));
  const sb = new Set(b.streams(prefix));
  const both = [...sa].filter((s) => sb.has(s));
  const out: DiffResult = {
    streamsCompared: both.length,
    eventsCompared: 0,
    onlyInA: [...sa].filter((s) => !sb.has(s)),
    onlyInB: [...sb].filter((s) => !sa.has(s)),
    inputsDiverge: [],
    profileDifferences: [],
    differences: [],
    differenceCount: 0,
    firstDifference: null,
  };
  const all: ResultDifference[] = [];
  for (const streamId of both) {
    const ea = a.read({ streamId });
    const eb = b.read({ streamId });
    const pa = profileOf(ea[0]);
    const pb = profileOf(eb[0]);
    if (pa !== pb) out.profileDifferences.push({ streamId, a: pa ?? '(none)', b: pb ?? '(none)' });
    const n = Math.min(ea.length, eb.length);
    for (let i = 0; i < n; i++) {
      const x = ea[i]!;
      const y = eb[i]!;
      out.eventsCompared++;
      if (!jsonEqual(inputsOf(x), inputsOf(y))) {
        out.inputsDiverge.push({ streamId, version: x.version, positionA: x.position, positionB: y.position });
        break;
      }
      if (!streamId.startsWith(VM_STREAM_PREFIX)) continue;
      const oa = recordedOutcome({ type: x.type, data: x.data } as VmEvent);
      const ob = recordedOutcome({ type: y.type, data: y.data } as VmEvent);
      if (jsonEqual(oa.result, ob.result) && jsonEqual(oa.trace, ob.trace)) continue;
      const d = x.data as { vcpu?: number | null; ioctl?: string; op?: string };
      all.push({
        streamId,
        version: x.version,
        positionA: x.position,
        positionB: y.position,
        type: x.type,
        ...(d.ioctl !== undefined ? { ioctl: d.ioctl } : {}),
        ...(d.op !== undefined ? { op: d.op } : {}),
        vcpu: d.vcpu ?? null,
        a: oa,
        b: ob,
      });
    }
  }
  all.sort((p, q) => p.positionA - q.positionA);
  out.differenceCount = all.length;
  out.differences = all.slice(0, opts.keep ?? 1000);
  out.firstDifference = all[0] ?? null;
  return out;
}
