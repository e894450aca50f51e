// Re-executing a recorded log under another kernel profile: every VM event runs again with the
// inputs and hardware samples it recorded, and its result and tracepoints are compared with the
// recorded ones (or with those of a reference profile run in lockstep).
import { KvmUsageError } from '../../kvm/errors.js';
import type { KernelProfile } from '../../kvm/profiles.js';
import type { EventStore } from '../../store/types.js';
import { scanDecoded } from '../rebuild.js';
import { vmIdOf, vmStreamId, VM_STREAM_PREFIX, type VmEvent } from '../vm/events.js';
import { applyVmEvent, type EvolveOptions, type VmRecord } from '../vm/evolve.js';
import { matchesJson, matchesRecorded, recordedOutcome, type Outcome } from './compare.js';
import { toJson, type Json } from '../codec.js';

export interface ReplayScope {
  vmIds?: string[];
  fromPosition?: number;
  toPosition?: number;
}

export interface ReplayOptions extends ReplayScope {
  profile: KernelProfile;
  /** compare with this profile's re-execution instead of the recorded results */
  reference?: KernelProfile;
  /** keep at most this many divergences in the list (all are counted) */
  keep?: number;
  onProgress?: (position: number) => void;
}

export interface Divergence {
  position: number;
  time: bigint;
  streamId: string;
  vmId: string;
  version: number;
  type: string;
  ioctl?: string;
  op?: string;
  vcpu: number | null;
  arg?: Json;
  recorded: Outcome;
  replayed: Outcome;
}

export interface ReplayRun {
  profile: string;
  reference: string;
  eventsReplayed: number;
  vms: string[];
  divergenceCount: number;
  divergences: Divergence[];
  /** the VM states the re-execution ended with */
  replayedStates: Map<string, VmRecord>;
  /** and the reference's (the recorded profile's, when comparing with the log) */
  referenceStates: Map<string, VmRecord>;
}

/** Re-execute one event; the outcome is as the kernel produced it (bigints), encoded only if it differs. */
function execute(rec: VmRecord | null, ev: VmEvent, time: bigint, opts: EvolveOptions): { rec: VmRecord | null; outcome: Outcome } {
  try {
    const a = applyVmEvent(rec, ev, time, opts);
    return { rec: a.rec, outcome: { result: a.result, trace: a.trace ?? [] } };
  } catch (e) {
    // The call the VMM made is refused before reaching the kernel (e.g. no such vCPU under this profile).
    if (e instanceof KvmUsageError) return { rec, outcome: { result: { error: e.code, message: e.message }, trace: [] } };
    throw e;
  }
}

/** Re-execute every VM stream in scope; compare from fromPosition on. */
export function replayLog(store: EventStore, o: ReplayOptions): ReplayRun {
  const wanted = o.vmIds ? new Set(o.vmIds.map(vmStreamId)) : null;
  const keep = o.keep ?? 1000;
  const replayed = new Map<string, VmRecord | null>();
  const reference = new Map<string, VmRecord | null>();
  const divergences: Divergence[] = [];
  let count = 0;
  let n = 0;
  const replayOpts: EvolveOptions = { profile: o.profile, trace: true, raw: true };
  const referenceOpts: EvolveOptions = { profile: o.reference, trace: true, raw: true };
  const scan =
    wanted && wanted.size === 1
      ? scanDecoded(store, { streamId: [...wanted][0], toPosition: o.toPosition })
      : // the whole log in position order (a stream-prefix scan would make SQLite sort by position)
        scanDecoded(store, { toPosition: o.toPosition });
  // events come in runs at one instant: its decimal string is converted once per run
  let timeText = '';
  let time = 0n;
  for (const c of scan)
    for (let i = 0; i < c.length; i += 6) {
      const streamId = c[i + 1] as string;
      if (wanted ? !wanted.has(streamId) : !streamId.startsWith(VM_STREAM_PREFIX)) continue;
      const position = c[i] as number;
      const version = c[i + 2] as number;
      const type = c[i + 3] as string;
      const data = c[i + 5] as object;
      if (c[i + 4] !== timeText) time = BigInt((timeText = c[i + 4] as string));
      const ev = { type, data, time } as unknown as VmEvent;
      const before = replayed.get(streamId) ?? null;
      const r = execute(before, ev, time, replayOpts);
      if (r.rec !== before) replayed.set(streamId, r.rec);
      let ref: Outcome | null = null;
      let same: boolean;
      if (o.reference) {
        const x = execute(reference.get(streamId) ?? null, ev, time, referenceOpts);
        reference.set(streamId, x.rec);
        ref = { result: toJson(x.outcome.result), trace: toJson(x.outcome.trace) as Json[] };
        same = matchesJson(r.outcome.result, ref.result) && matchesJson(r.outcome.trace, ref.trace);
      } else {
        same = matchesRecorded(ev, r.outcome.result, r.outcome.trace);
      }
      n++;
      if (o.onProgress && n % 5000 === 0) o.onProgress(position);
      if (position < (o.fromPosition ?? 0) || same) continue;
      ref ??= recordedOutcome(ev);
      r.outcome = { result: toJson(r.outcome.result), trace: toJson(r.outcome.trace) as Json[] };
      count++;
      if (divergences.length < keep) {
        const d = data as { vcpu?: number | null; ioctl?: string; op?: string; arg?: Json };
        divergences.push({
          position,
          time,
          streamId,
          vmId: vmIdOf(streamId)!,
          version,
          type,
          ...(d.ioctl !== undefined ? { ioctl: d.ioctl } : {}),
          ...(d.op !== undefined ? { op: d.op } : {}),
          ...(d.arg !== undefined && d.arg !== null ? { arg: d.arg } : {}),
          vcpu: d.vcpu ?? null,
          recorded: ref,
          replayed: r.outcome,
        });
      }
    }
  const final = (m: Map<string, VmRecord | null>) => {
    const out = new Map<string, VmRecord>();
    for (const [sid, rec] of m) if (rec) out.set(vmIdOf(sid)!, rec);
    return out;
  };
  return {
    profile: o.profile.name,
    reference: o.reference?.name ?? 'recorded',
    eventsReplayed: n,
    vms: [...replayed.keys()].map((s) => vmIdOf(s)!),
    divergenceCount: count,
    divergences,
    replayedStates: final(replayed),
    referenceStates: final(reference),
  };
}
