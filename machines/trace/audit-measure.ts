// The measurement pass of the trace audit (audit.ts): one VM's records, in capture order, turned
// into plain data: the vCPUs' final TSC offsets and their spread, every TSC write with its spacing
// against the kernel's one-second synchronization window, the master clock's updates, the
// pvclock the guest was given, the arm64 timers. Judging it is the rules' job (audit-rules.ts).
import { hvclockToHz, NSEC_PER_SEC, pvclockScaleDelta } from '../../kvm/arith.js';
import { s64 } from '../../kvm/u64.js';
import { MSRS, PVCLOCK_TSC_STABLE_BIT } from '../../kvm/uapi.js';
import { arm64TimersOf, type Arm64Timers } from './arm64-timers.js';
import type { TraceFields, TraceRecord } from './parse.js';

/** The window kvm_synchronize_tsc() matches a TSC write in: one second (of cycles, at the guest rate). */
export const SYNC_WINDOW_NS = NSEC_PER_SEC;

export interface TraceAuditOptions {
  /** the guest TSC frequency, when the trace has no kvm_pvclock_update to read it from */
  guestTscHz?: bigint;
}

export interface TraceVcpu {
  vcpu: number;
  /** the last kvm_write_tsc_offset `next` (u64, as the kernel printed it) */
  tscOffset: bigint;
  /** the same offset read as the s64 it is added as */
  tscOffsetSigned: bigint;
  /** tscOffsetSigned in ns at the guest TSC frequency (null: frequency unknown) */
  tscOffsetNs: bigint | null;
  /** offset writes seen for this vCPU */
  writes: number;
  /** the line of its last write */
  line: number;
}

export interface TraceTscWrite {
  line: number;
  /** the vCPU (kvm_write_tsc_offset) or null (kvm_msr does not print one) */
  vcpu: number | null;
  task: string;
  timestamp: string;
  /** kvm_write_tsc_offset: the new offset; kvm_msr: the value written */
  value: bigint;
  /** ns since the previous write of the same kind in this VM (null: first, or a counter clock) */
  sincePreviousNs: bigint | null;
  /** that spacing is inside the one-second window (null: not known) */
  withinSyncWindow: boolean | null;
}

export interface PvclockMeasure {
  frequencyHz: bigint | null;
  tscToSystemMul: number | null;
  tscShift: number | null;
  line: number | null;
  updates: number;
  systemTimeSteps: { vcpu: number; line: number; previousLine: number; stepNs: bigint }[];
  stableBitFlips: { vcpu: number; line: number; stable: boolean }[];
}

export interface MasterClockMeasure {
  final: boolean | null;
  finalLine: number | null;
  /** offsetmatched of the last update (null: none) */
  finalOffsetMatched: boolean | null;
  /** every update's line, in capture order */
  updateLines: number[];
  transitions: { line: number; from: boolean; to: boolean }[];
  /**
   * the VM's creation, when the trace shows it: kvm_arch_init_vm() evaluates the master clock
   * before any vCPU exists (masterclock 0 offsetmatched 0), and the first vCPU's creation write
   * (kvm_write_tsc_offset prev=0) follows; the line of that update
   */
  creationLine: number | null;
  /** how many updates came before the VM's first vCPU tracepoint: the first ones of updateLines */
  beforeVcpus: number;
}

export interface TraceMeasurement {
  guestTscHz: bigint | null;
  guestTscHzFrom: 'pvclock' | 'request' | null;
  vcpus: TraceVcpu[];
  tscOffsetSpreadCycles: bigint;
  tscOffsetSpreadNs: bigint | null;
  /** every kvm_write_tsc_offset, in trace order */
  tscOffsetWrites: TraceTscWrite[];
  /** guest writes of MSR_IA32_TSC (kvm_msr msr_write 10) */
  tscMsrWrites: TraceTscWrite[];
  masterClock: MasterClockMeasure;
  pvclock: PvclockMeasure;
  arm64Timers: Arm64Timers;
}

type Rec<E extends TraceFields['event']> = TraceRecord & { fields: Extract<TraceFields, { event: E }> };
const only = <E extends TraceFields['event']>(recs: TraceRecord[], event: E) => recs.filter((r): r is Rec<E> => r.fields.event === event);
/** The x86 tracepoints that name a vCPU: the first of them in a VM is its first vCPU. */
const X86_VCPU_EVENTS = new Set(['kvm_write_tsc_offset', 'kvm_track_tsc', 'kvm_pvclock_update']);

/** Measure one VM's records (in capture order). */
export function measureTraceVm(recs: TraceRecord[], opts: TraceAuditOptions = {}): TraceMeasurement {
  const pv = only(recs, 'kvm_pvclock_update');
  const last = pv.at(-1)?.fields;
  const pvHz = last ? hvclockToHz(last.tscToSystemMul, last.tscShift) : null;
  const guestTscHz = opts.guestTscHz ?? (pvHz !== null && pvHz > 0n ? pvHz : null);
  const toNs = (cycles: bigint) => (guestTscHz === null ? null : (cycles * NSEC_PER_SEC) / guestTscHz);

  // TSC offsets: the last write per vCPU, and every write's spacing from the one before it
  const offsetWrites = spaced(only(recs, 'kvm_write_tsc_offset'), (e) => ({ vcpu: e.fields.vcpu, value: e.fields.next }));
  const vcpuMap = new Map<number, TraceVcpu>();
  for (const w of offsetWrites) {
    const signed = s64(w.value);
    const writes = (vcpuMap.get(w.vcpu!)?.writes ?? 0) + 1;
    vcpuMap.set(w.vcpu!, { vcpu: w.vcpu!, tscOffset: w.value, tscOffsetSigned: signed, tscOffsetNs: toNs(signed), writes, line: w.line });
  }
  const vcpus = [...vcpuMap.values()].sort((a, b) => a.vcpu - b.vcpu);
  let spread = 0n;
  if (vcpus.length) {
    const vals = vcpus.map((v) => v.tscOffsetSigned);
    spread = vals.reduce((a, b) => (b > a ? b : a)) - vals.reduce((a, b) => (b < a ? b : a));
  }
  const tscMsr = only(recs, 'kvm_msr').filter((e) => e.fields.write && e.fields.msr === MSRS.MSR_IA32_TSC);

  return {
    guestTscHz,
    guestTscHzFrom: opts.guestTscHz !== undefined ? 'request' : guestTscHz !== null ? 'pvclock' : null,
    vcpus,
    tscOffsetSpreadCycles: spread,
    tscOffsetSpreadNs: toNs(spread),
    tscOffsetWrites: offsetWrites,
    tscMsrWrites: spaced(tscMsr, (e) => ({ vcpu: null, value: e.fields.data })),
    masterClock: masterClockOf(recs),
    pvclock: {
      frequencyHz: pvHz,
      tscToSystemMul: last?.tscToSystemMul ?? null,
      tscShift: last?.tscShift ?? null,
      line: pv.at(-1)?.line ?? null,
      ...pvclockSteps(pv),
    },
    arm64Timers: arm64TimersOf(recs),
  };
}

/** Writes in capture order, each with its spacing from the one before it (trace timestamps). */
function spaced<R extends TraceRecord>(recs: R[], read: (e: R) => { vcpu: number | null; value: bigint }): TraceTscWrite[] {
  let prevNs: bigint | null = null;
  return recs.map((e, i) => {
    const t = e.timeNs;
    const since = i > 0 && t !== null && prevNs !== null ? t - prevNs : null;
    prevNs = t;
    const { vcpu, value } = read(e);
    const withinSyncWindow = since === null ? null : since < SYNC_WINDOW_NS;
    return { line: e.line, vcpu, task: e.task, timestamp: e.timestamp, value, sincePreviousNs: since, withinSyncWindow };
  });
}

/** Per vCPU, each pvclock update against the one before it: its system_time step and a PVCLOCK_TSC_STABLE_BIT flip. */
function pvclockSteps(pv: Rec<'kvm_pvclock_update'>[]): Pick<PvclockMeasure, 'updates' | 'systemTimeSteps' | 'stableBitFlips'> {
  const steps: PvclockMeasure['systemTimeSteps'] = [];
  const flips: PvclockMeasure['stableBitFlips'] = [];
  const prevPv = new Map<number, Rec<'kvm_pvclock_update'>>();
  for (const e of pv) {
    const x = e.fields;
    const p = prevPv.get(x.vcpu);
    if (p) {
      const y = p.fields;
      const dSys = s64(x.systemTime - y.systemTime);
      const dTsc = x.tscTimestamp - y.tscTimestamp;
      // the time the earlier pvclock would give at the later tsc_timestamp (pvclock_scale_delta)
      const scaled = (d: bigint) => pvclockScaleDelta(d, y.tscToSystemMul, y.tscShift);
      const expected = dTsc >= 0n ? scaled(dTsc) : -scaled(-dTsc);
      steps.push({ vcpu: x.vcpu, line: e.line, previousLine: p.line, stepNs: dSys - expected });
      const was = (y.flags & PVCLOCK_TSC_STABLE_BIT) !== 0;
      const is = (x.flags & PVCLOCK_TSC_STABLE_BIT) !== 0;
      if (was !== is) flips.push({ vcpu: x.vcpu, line: e.line, stable: is });
    }
    prevPv.set(x.vcpu, e);
  }
  return { updates: pv.length, systemTimeSteps: steps, stableBitFlips: flips };
}

/** The master clock: its final state, every change, and whether the trace shows the VM's creation. */
function masterClockOf(recs: TraceRecord[]): MasterClockMeasure {
  const mc = only(recs, 'kvm_update_master_clock');
  const transitions: MasterClockMeasure['transitions'] = [];
  for (let i = 1; i < mc.length; i++) {
    const from = mc[i - 1]!.fields.masterclock;
    const to = mc[i]!.fields.masterclock;
    if (from !== to) transitions.push({ line: mc[i]!.line, from, to });
  }
  const last = mc.at(-1);
  // (pvclock_update_vm_gtod_copy() with no vCPU online: nr_vcpus_matched_tsc + 1 == online_vcpus is false)
  const firstVcpu = recs.find((e) => X86_VCPU_EVENTS.has(e.fields.event));
  const beforeVcpus = mc.filter((e) => firstVcpu === undefined || e.line < firstVcpu.line);
  // kvm_arch_init_vm() evaluates it before any vCPU exists (masterclock 0 offsetmatched 0); the first
  // vCPU's creation write (prev=0, from kvm_synchronize_tsc(vcpu, 0)) follows
  const atCreation = (e: Rec<'kvm_update_master_clock'>) => !e.fields.masterclock && !e.fields.offsetMatched;
  const createdFirst = firstVcpu?.fields.event === 'kvm_write_tsc_offset' && firstVcpu.fields.prev === 0n;
  const creation = mc[0] && beforeVcpus[0] === mc[0] && atCreation(mc[0]) && createdFirst ? mc[0] : null;
  return {
    final: last ? last.fields.masterclock : null,
    finalLine: last?.line ?? null,
    finalOffsetMatched: last ? last.fields.offsetMatched : null,
    updateLines: mc.map((e) => e.line),
    transitions,
    creationLine: creation?.line ?? null,
    beforeVcpus: beforeVcpus.length,
  };
}
