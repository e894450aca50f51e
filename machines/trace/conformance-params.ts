// The parameters a capture of one VM's restore implies for its emulation (conformance.ts):
//   vCPUs            one per vCPU id its x86 clock tracepoints name (the emulated VM creates those
//                    ids, so the work follows the vCPUs present, not the largest id)
//   guest TSC rate   hvclock_to_hz() of the last kvm_pvclock_update's tsc_to_system_mul/tsc_shift
//                    (or the request's guestTscHz); the host runs at the same rate (no scaling)
//   host TSC         each vCPU's creation write (kvm_write_tsc_offset prev=0, from
//                    kvm_synchronize_tsc(vcpu, 0)) printed next = -host TSC at that instant
//   restore gap      the time from that creation write to the first restore write (prev != 0),
//                    which the emulated VMM also spends once it has created the vCPUs
//   source TSC       what the first restore write set, at its own instant: next_r plus the host
//                    TSC then (the creation's, plus the gap at the host rate); the emulated source
//                    runs until its guest TSC reads exactly that
//   write spacing    the time between the first two restore writes (trace timestamps)
// The emulated VMM spends no time per ioctl (vmmLatency 0), so only the gap and that spacing
// separate the writes, as in the capture; the blackout (which the capture cannot show) is 1 ms.
// With counter timestamps (trace-cmd -C x86-tsc) the times are not known in ns: the gap and the
// spacing are 0, and the source TSC is then the restore write's value less the host cycles
// between the two writes (a note says so).
import { hvclockToHz, NSEC_PER_SEC } from '../../kvm/arith.js';
import { u64 } from '../../kvm/u64.js';
import { KVM_MAX_VCPU_IDS, KVM_MAX_VCPUS } from '../../kvm/x86/vm.js';
import { DomainError } from '../session/errors.js';
import type { TraceFields, TraceRecord } from './parse.js';

/** The blackout of the emulated migration (the capture of a restore does not show it). */
export const CONFORMANCE_BLACKOUT_NS = 1_000_000n;

/** The guest TSC rate the emulated hosts run at, in whole kHz as KVM_SET_TSC_KHZ takes it: at least 1 kHz. */
const MIN_EMULATED_HZ = 1000n;

export interface ConformanceParameters {
  /** the vCPUs emulated: one per id in vcpuIds */
  vcpus: number;
  /** the vCPU ids the capture's x86 clock tracepoints name, ascending */
  vcpuIds: number[];
  guestTscHz: bigint;
  guestTscHzFrom: 'pvclock' | 'request';
  /** host TSC at the capture's first creation write, and that line */
  hostTscAtCreation: bigint | null;
  creationLine: number | null;
  /** from the creation write to the first restore write (trace timestamps, ns; 0 with counter timestamps) */
  restoreGapNs: bigint;
  /** host TSC at the first restore write: hostTscAtCreation plus the gap's cycles at the host rate */
  hostTscAtFirstRestore: bigint | null;
  /**
   * the guest TSC the first restore write set, taken at its own instant: its next plus the host
   * TSC then (hostTscAtFirstRestore); the emulated source saves exactly this; and that write's line
   */
  sourceTscAtSave: bigint | null;
  firstRestoreLine: number | null;
  writeSpacingNs: bigint;
  /** the restore writes' spacings in the capture, in order (ns) */
  restoreWriteGapsNs: bigint[];
  blackoutNs: bigint;
  vmmLatencyNs: bigint;
  notes: string[];
}

export type TscWrite = TraceRecord & { fields: Extract<TraceFields, { event: 'kvm_write_tsc_offset' }> };
export const isTscWrite = (r: TraceRecord): r is TscWrite => r.fields.event === 'kvm_write_tsc_offset';

/** The parameters a VM's capture implies (its records in capture order; guestTscHz: the request's). */
export function conformanceParameters(recs: TraceRecord[], guestTscHz?: bigint): ConformanceParameters {
  const notes: string[] = [];
  const vcpuIds = vcpuIdsOf(recs);
  const { hz, from } = guestRateOf(recs, guestTscHz);
  if (hz % 1000n !== 0n) notes.push(`the guest TSC rate ${hz} Hz is not a whole number of kHz: the emulated hosts run at ${hz / 1000n} kHz`);
  const writes = recs.filter(isTscWrite);
  const creation = writes.find((w) => w.fields.prev === 0n) ?? null;
  const restores = writes.filter((w) => w.fields.prev !== 0n);
  const placed = placeRestore(creation, restores[0] ?? null, hz, notes);
  const gaps: bigint[] = [];
  for (let i = 1; i < restores.length; i++) {
    const a = restores[i - 1]!.timeNs;
    const b = restores[i]!.timeNs;
    if (a !== null && b !== null) gaps.push(b - a);
  }
  const spacing = gaps[0] ?? 0n;
  if (gaps.some((g) => g !== spacing)) {
    notes.push(`the restore writes are not evenly spaced (${gaps.join(', ')} ns): the emulation spaces every write by the first gap, ${spacing} ns`);
  }
  if (restores.length > 1 && gaps.length === 0) notes.push('the trace timestamps are counter ticks, not seconds: the writes are emulated without spacing');
  return {
    vcpus: vcpuIds.length,
    vcpuIds,
    guestTscHz: hz,
    guestTscHzFrom: from,
    hostTscAtCreation: creation ? u64(-creation.fields.next) : null,
    creationLine: creation?.line ?? null,
    ...placed,
    firstRestoreLine: restores[0]?.line ?? null,
    writeSpacingNs: spacing,
    restoreWriteGapsNs: gaps,
    blackoutNs: CONFORMANCE_BLACKOUT_NS,
    vmmLatencyNs: 0n,
    notes,
  };
}

/** The vCPU ids the x86 clock tracepoints name, ascending; refused when the emulated kernel cannot create them. */
function vcpuIdsOf(recs: TraceRecord[]): number[] {
  const ids = new Set<number>();
  for (const r of recs) {
    const f = r.fields;
    if (f.event === 'kvm_write_tsc_offset' || f.event === 'kvm_track_tsc' || f.event === 'kvm_pvclock_update') ids.add(f.vcpu);
  }
  if (!ids.size) {
    const what = 'the trace has no x86 clock tracepoint of this VM (kvm_write_tsc_offset, kvm_track_tsc, kvm_pvclock_update): nothing to emulate';
    throw new DomainError('invalid_request', what);
  }
  const vcpuIds = [...ids].sort((a, b) => a - b);
  // (the emulated kernel is built with CONFIG_KVM_MAX_NR_VCPUS at its default: kvm/x86/vm.ts)
  if (vcpuIds.length > KVM_MAX_VCPUS) {
    throw new DomainError('invalid_request', `the trace names ${vcpuIds.length} vCPUs: the emulated kernel creates at most ${KVM_MAX_VCPUS} (KVM_MAX_VCPUS)`, {
      vcpus: vcpuIds.length,
      max: KVM_MAX_VCPUS,
    });
  }
  const top = vcpuIds.at(-1)!;
  if (top >= KVM_MAX_VCPU_IDS) {
    throw new DomainError('invalid_request', `the trace names vCPU id ${top}: the emulated kernel creates ids below ${KVM_MAX_VCPU_IDS} (KVM_MAX_VCPU_IDS)`, {
      vcpu: top,
      max: KVM_MAX_VCPU_IDS,
    });
  }
  return vcpuIds;
}

/** The guest TSC rate: the request's, else the last pvclock scale's; refused below what KVM_SET_TSC_KHZ can set. */
function guestRateOf(recs: TraceRecord[], guestTscHz: bigint | undefined): { hz: bigint; from: 'pvclock' | 'request' } {
  const lastPv = [...recs].reverse().find((r) => r.fields.event === 'kvm_pvclock_update');
  let hz = guestTscHz ?? null;
  let from: 'pvclock' | 'request' = 'request';
  if (hz === null && lastPv && lastPv.fields.event === 'kvm_pvclock_update') {
    hz = hvclockToHz(lastPv.fields.tscToSystemMul, lastPv.fields.tscShift);
    from = 'pvclock';
  }
  if (hz === null) {
    throw new DomainError('invalid_request', 'the trace has no kvm_pvclock_update to read the guest TSC rate from: give guestTscHz', { field: 'guestTscHz' });
  }
  if (hz < MIN_EMULATED_HZ) {
    const why = from === 'pvclock' ? `the last kvm_pvclock_update (line ${lastPv!.line}) gives a guest TSC rate of ${hz} Hz` : `guestTscHz ${hz} Hz`;
    const need = `the emulated hosts need at least ${MIN_EMULATED_HZ} Hz (KVM_SET_TSC_KHZ takes whole kHz); give guestTscHz`;
    throw new DomainError('invalid_request', `${why}: ${need}`, { field: 'guestTscHz' });
  }
  return { hz, from };
}

type Placed = Pick<ConformanceParameters, 'restoreGapNs' | 'hostTscAtFirstRestore' | 'sourceTscAtSave'>;

/** The first restore write placed on the host TSC: the gap from the creation write, the host TSC then, the guest TSC it set. */
function placeRestore(creation: TscWrite | null, firstRestore: TscWrite | null, hz: bigint, notes: string[]): Placed {
  const none: Placed = { restoreGapNs: 0n, hostTscAtFirstRestore: null, sourceTscAtSave: null };
  if (!creation) {
    notes.push('no creation write (kvm_write_tsc_offset prev=0): the emulated host TSC is not placed, so its offsets cannot agree to the cycle');
    return none;
  }
  if (!firstRestore) {
    notes.push('no restore write (kvm_write_tsc_offset with prev != 0): the emulated source runs 1 s');
    return none;
  }
  let restoreGapNs = 0n;
  if (creation.timeNs !== null && firstRestore.timeNs !== null) {
    restoreGapNs = firstRestore.timeNs - creation.timeNs;
    if (restoreGapNs < 0n) {
      notes.push(
        `the first restore write (line ${firstRestore.line}) is timestamped ${-restoreGapNs} ns before the creation write (line ${creation.line}): ` +
          'the emulation writes it at the creation',
      );
      restoreGapNs = 0n;
    }
  } else {
    notes.push(
      `the trace timestamps are counter ticks, not seconds: the host time between the creation write (line ${creation.line}) ` +
        `and the first restore write (line ${firstRestore.line}) is not known, so the emulation writes it at the creation ` +
        'and the source TSC is low by the host cycles between them',
    );
  }
  // the host TSC at the restore write's own instant, and the guest TSC the write set then
  const hostTscAtFirstRestore = u64(u64(-creation.fields.next) + (restoreGapNs * hz) / NSEC_PER_SEC);
  const sourceTscAtSave = u64(firstRestore.fields.next + hostTscAtFirstRestore);
  // (a guest TSC above 2^63: the VMM wrote a negative one; no source run reaches it)
  if (sourceTscAtSave >= 1n << 63n) {
    throw new DomainError(
      'invalid_request',
      `line ${firstRestore.line}: the restore write sets guest TSC ${BigInt.asIntN(64, sourceTscAtSave)} ` +
        `(offset ${BigInt.asIntN(64, firstRestore.fields.next)} at host TSC ${hostTscAtFirstRestore}, ` +
        `${restoreGapNs} ns after the creation write of line ${creation.line}): the emulated source cannot save a negative guest TSC`,
      { line: firstRestore.line },
    );
  }
  return { restoreGapNs, hostTscAtFirstRestore, sourceTscAtSave };
}
