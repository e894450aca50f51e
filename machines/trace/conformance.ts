// Conformance of the model to a real host: an imported capture of a VM restored on a host is
// set beside the emulated restore of the same VM by a strategy (and release) on a kernel profile,
// driven with the parameters the capture implies, and the two are compared tracepoint by
// tracepoint. The emulated side is the ftrace export of the emulated migration's destination VM
// (export/ftrace.ts), read back by the same parser as the capture.
//
// Parameters read from the capture (one VM of it):
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
//
// What "differ" means:
//   1. the kvm_write_tsc_offset tracepoints, the i-th of the capture against the i-th emulated
//      (aligned by order; timestamps are not compared): vcpu, prev and next must be equal, to the
//      cycle. One side having a write the other does not have is a difference.
//   2. then the last kvm_update_master_clock: masterclock must be equal (the state the restore
//      leaves); the number of updates is not compared (it follows when each vCPU enters KVM_RUN).
//   3. then the last kvm_pvclock_update: tsc_to_system_mul and tsc_shift must be equal.
// kvm_track_tsc (printed after each write, and often filtered out of a capture), kvm_msr, the
// pvclock pages' versions and system_time, and tracepoints of other events are not compared.
import { hvclockToHz } from '../../kvm/arith.js';
import { u64 } from '../../kvm/u64.js';
import type { EventStore } from '../../store/types.js';
import { ftraceText } from '../export/ftrace.js';
import { runMigration } from '../migration/run.js';
import { resolveStrategyRelease, strategyNameOf, type StrategyRelease } from '../migration/strategies/releases.js';
import { STRATEGIES } from '../migration/strategies/index.js';
import { readTrace } from './read.js';
import { DomainError, withSession, type Session } from '../session/index.js';
import { KVM_MAX_VCPU_IDS, KVM_MAX_VCPUS } from '../../kvm/x86/vm.js';
import { hostInfoToJson, type VmHostInfo } from '../vm/events.js';
import { parseTrace, type TraceFields, type TraceRecord } from './parse.js';
import type { TraceImportedData, TracepointData } from './state.js';

/** The blackout of the emulated migration (the capture of a restore does not show it). */
export const CONFORMANCE_BLACKOUT_NS = 1_000_000n;
/** The emulated destination VM (exported alone, its lines are the destination's). */
const EMULATED_DESTINATION = 'restored';

export interface ConformanceOptions {
  strategy: string;
  /** the kernel profile of both emulated hosts */
  profile: string;
  /** the VM of the capture (required when it has several) */
  vm?: string;
  /** the guest TSC rate, when the capture has no kvm_pvclock_update */
  guestTscHz?: bigint;
}

/** One tracepoint as compared: where it is, and its text after the timestamp. */
export interface ComparedTracepoint {
  /** the capture's line number (emulated: the line of emulatedTrace, from 1) */
  line: number;
  timestamp: string;
  task: string;
  /** "event: body", as TP_printk prints it */
  text: string;
}

export interface ConformanceDifference {
  /** what was compared: the i-th write, or the final master clock / pvclock */
  check: 'kvm_write_tsc_offset' | 'master_clock_final' | 'pvclock_final';
  /** 1-based index of the write (check kvm_write_tsc_offset) */
  index: number | null;
  /** the fields that differ ('missing': the capture has none here; 'extra': the emulation has none) */
  fields: string[];
  trace: ComparedTracepoint | null;
  emulated: ComparedTracepoint | null;
  /** the capture's last compared line before this point (for a missing tracepoint: where it would be) */
  afterLine: number | null;
  /** a write the capture does not have: what the capture shows next instead (its next clock tracepoint other than that write's kvm_track_tsc) */
  traceNext?: ComparedTracepoint | null;
  /** next differs: emulated − trace, as signed cycles and ns at the guest rate */
  nextDeltaCycles?: bigint;
  nextDeltaNs?: bigint;
  message: string;
}

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

export interface ConformanceResult {
  traceId: string;
  vm: string;
  strategy: StrategyRelease & { spec: string };
  profile: string;
  parameters: ConformanceParameters;
  conforms: boolean;
  compared: { traceWrites: number; emulatedWrites: number; agreedWrites: number; masterClock: boolean; pvclock: boolean };
  firstDifference: ConformanceDifference | null;
  /** the emulated destination's tracepoints, as the ftrace export prints them (the lines emulated line numbers count) */
  emulatedTrace: string[];
}

/** A store opened on a fresh scratch path, and how to dispose of it. */
export type ConformanceScratch = () => { open(): EventStore; dispose(): void };

type Rec = { line: number; timestamp: string; timeNs: bigint | null; task: string; fields: TraceFields };

/** The capture's records of one VM, as stored (null: no such trace). */
function traceRecords(store: EventStore, traceId: string): { head: TraceImportedData; byVm: Map<string, Rec[]> } | null {
  const trace = readTrace(store, traceId);
  if (!trace) return null;
  const rec = (d: TracepointData): Rec => ({ line: d.line, timestamp: d.timestamp, timeNs: d.timeNs === null ? null : BigInt(d.timeNs), task: d.task, fields: fieldsOf(d) });
  return { head: trace.head, byVm: new Map([...trace.byVm].map(([vm, ds]) => [vm, ds.map(rec)])) };
}

/** The stored fields back as the parser's typed fields (u64 values as bigint). */
function fieldsOf(d: TracepointData): TraceFields {
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

/** A tracepoint's body as its TP_printk prints it (the clock events compared here). */
export function tracepointText(f: TraceFields): string {
  switch (f.event) {
    case 'kvm_write_tsc_offset':
      return `${f.event}: vcpu=${f.vcpu} prev=${f.prev} next=${f.next}`;
    case 'kvm_update_master_clock':
      return `${f.event}: masterclock ${f.masterclock ? 1 : 0} hostclock ${f.hostclock} offsetmatched ${f.offsetMatched ? 1 : 0}`;
    case 'kvm_pvclock_update':
      return `${f.event}: vcpu_id ${f.vcpu}, pvclock { version ${f.version}, tsc_timestamp 0x${f.tscTimestamp.toString(16)}, system_time 0x${f.systemTime.toString(16)}, tsc_to_system_mul 0x${f.tscToSystemMul.toString(16)}, tsc_shift ${f.tscShift}, flags 0x${f.flags.toString(16)} }`;
    default:
      return f.event;
  }
}

const shown = (r: Rec | TraceRecord): ComparedTracepoint => ({ line: r.line, timestamp: r.timestamp, task: r.task, text: tracepointText(r.fields) });

type Write = Rec & { fields: Extract<TraceFields, { event: 'kvm_write_tsc_offset' }> };
const isWrite = (r: Rec): r is Write => r.fields.event === 'kvm_write_tsc_offset';

/** The guest TSC rate the emulated hosts run at, in whole kHz as KVM_SET_TSC_KHZ takes it: at least 1 kHz. */
const MIN_EMULATED_HZ = 1000n;

/** The parameters a VM's capture implies. */
export function conformanceParameters(recs: Rec[], guestTscHz?: bigint): ConformanceParameters {
  const notes: string[] = [];
  const writes = recs.filter(isWrite);
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
  if (hz % 1000n !== 0n) notes.push(`the guest TSC rate ${hz} Hz is not a whole number of kHz: the emulated hosts run at ${hz / 1000n} kHz`);

  const creation = writes.find((w) => w.fields.prev === 0n) ?? null;
  const restores = writes.filter((w) => w.fields.prev !== 0n);
  const firstRestore = restores[0] ?? null;
  const hostTscAtCreation = creation ? u64(-creation.fields.next) : null;
  let restoreGapNs = 0n;
  let hostTscAtFirstRestore: bigint | null = null;
  let sourceTscAtSave: bigint | null = null;
  if (!creation) notes.push('no creation write (kvm_write_tsc_offset prev=0): the emulated host TSC is not placed, so its offsets cannot agree to the cycle');
  else if (firstRestore) {
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
    hostTscAtFirstRestore = u64(hostTscAtCreation! + (restoreGapNs * hz) / 1_000_000_000n);
    sourceTscAtSave = u64(firstRestore.fields.next + hostTscAtFirstRestore);
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
  } else notes.push('no restore write (kvm_write_tsc_offset with prev != 0): the emulated source runs 1 s');
  const gaps: bigint[] = [];
  for (let i = 1; i < restores.length; i++) {
    const a = restores[i - 1]!.timeNs;
    const b = restores[i]!.timeNs;
    if (a !== null && b !== null) gaps.push(b - a);
  }
  const spacing = gaps[0] ?? 0n;
  if (gaps.some((g) => g !== spacing)) notes.push(`the restore writes are not evenly spaced (${gaps.join(', ')} ns): the emulation spaces every write by the first gap, ${spacing} ns`);
  if (restores.length > 1 && gaps.length === 0) notes.push('the trace timestamps are counter ticks, not seconds: the writes are emulated without spacing');
  return {
    vcpus: vcpuIds.length,
    vcpuIds,
    guestTscHz: hz,
    guestTscHzFrom: from,
    hostTscAtCreation,
    creationLine: creation?.line ?? null,
    restoreGapNs,
    hostTscAtFirstRestore,
    sourceTscAtSave,
    firstRestoreLine: firstRestore?.line ?? null,
    writeSpacingNs: spacing,
    restoreWriteGapsNs: gaps,
    blackoutNs: CONFORMANCE_BLACKOUT_NS,
    vmmLatencyNs: 0n,
    notes,
  };
}

/**
 * The emulated VMM spends the capture's creation-to-restore time once it has created the
 * destination's vCPUs: before its next command to that VM. (The strategies issue their restore
 * ioctls back to back; the port has no pause there, so the scratch session's command is wrapped.)
 */
function spendAfterCreation(session: Session, vmId: string, vcpus: number, gapNs: bigint): void {
  if (gapNs <= 0n) return;
  const vmCommand = session.vmCommand.bind(session);
  let created = 0;
  let spent = false;
  session.vmCommand = (id, cmd) => {
    if (id === vmId && !spent && created === vcpus) {
      spent = true;
      session.advanceTime(gapNs);
    }
    const r = vmCommand(id, cmd);
    if (id === vmId && cmd.type === 'ioctl' && cmd.ioctl === 'KVM_CREATE_VCPU') created++;
    return r;
  };
}

/** Run the emulated restore the parameters describe on a scratch log; its destination's tracepoints (export text, parsed). */
async function emulate(scratch: ConformanceScratch, p: ConformanceParameters, spec: string, profile: string): Promise<{ lines: string[]; records: TraceRecord[] }> {
  const khz = Number(p.guestTscHz / 1000n);
  const hz = BigInt(khz) * 1000n;
  // the source runs until its guest TSC (0 at its creation, at true time 0) reads the restored value
  const target = p.sourceTscAtSave ?? hz;
  const runNs = (target * 1_000_000_000n + hz - 1n) / hz;
  if ((runNs * hz) / 1_000_000_000n !== target) p.notes.push(`the guest TSC ${target} to save is not reachable at ${hz} Hz in whole ns: the source ran ${runNs} ns (guest TSC ${(runNs * hz) / 1_000_000_000n})`);
  // the destination's vCPUs are created as the blackout ends: its TSC then reads the capture's creation value
  const createdAt = runNs + p.blackoutNs;
  const dstInitial = p.hostTscAtCreation === null ? 0n : u64(p.hostTscAtCreation - (createdAt * hz) / 1_000_000_000n);
  const s = scratch();
  try {
    const store = s.open();
    try {
      await withSession(store, { handler: 'conformance' }, (session) => {
        session.createHost({ id: 'src', arch: 'x86', profile, tscKhz: khz, initialCounter: 0n, clocksource: 'tsc' });
        session.createHost({ id: 'dst', arch: 'x86', profile, tscKhz: khz, initialCounter: dstInitial, clocksource: 'tsc' });
        const src = session.requireHost('src');
        const info: VmHostInfo = { counterHz: src.counterHz, counterClocksource: src.counterClocksource, x86: src.x86, arm64: src.arm64 };
        session.vmCommand('vm', { type: 'create', data: { vmId: 'vm', hostId: 'src', arch: 'x86', profile: src.profile, host: hostInfoToJson(info) } });
        for (const id of p.vcpuIds) session.vmCommand('vm', { type: 'ioctl', vcpu: null, ioctl: 'KVM_CREATE_VCPU', arg: id });
        for (const id of p.vcpuIds) session.vmCommand('vm', { type: 'ioctl', vcpu: id, ioctl: 'KVM_RUN', arg: undefined });
        // the guest uses kvmclock, so the restored VM gets pvclock updates
        for (const id of p.vcpuIds) session.vmCommand('vm', { type: 'guest', vcpu: id, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
        session.advanceTime(runNs);
        spendAfterCreation(session, EMULATED_DESTINATION, p.vcpuIds.length, p.restoreGapNs);
        return runMigration(session, {
          migrationId: 'm1',
          vmId: 'vm',
          newVmId: EMULATED_DESTINATION,
          fromHost: 'src',
          toHost: 'dst',
          strategy: spec,
          blackoutNs: p.blackoutNs,
          vmmLatencyNs: p.vmmLatencyNs,
          readSpacingNs: 0n,
          writeSpacingNs: p.writeSpacingNs,
          preSaveGapNs: 0n,
          options: {},
        });
      }, () => null);
      // the destination VM alone: an emulated line number is its place among its lines
      const lines = ftraceText(store, EMULATED_DESTINATION)!.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
      return { lines, records: lines.length ? parseTrace(lines.join('\n')).records : [] };
    } finally {
      store.close();
    }
  } finally {
    s.dispose();
  }
}

/** Compare an imported trace's VM with the emulated restore of it by a strategy on a kernel profile. */
export async function conformance(store: EventStore, traceId: string, opts: ConformanceOptions, scratch: ConformanceScratch): Promise<ConformanceResult> {
  const t = traceRecords(store, traceId);
  if (!t) throw new DomainError('not_found', `no trace '${traceId}'`, { traceId });
  const vms = [...t.byVm.keys()];
  let vm = opts.vm;
  if (vm === undefined) {
    if (vms.length !== 1) throw new DomainError('invalid_request', `trace '${traceId}' has ${vms.length} VMs (${vms.join(', ')}): name one with vm`, { field: 'vm', vms });
    vm = vms[0]!;
  } else if (!t.byVm.has(vm)) throw new DomainError('not_found', `trace '${traceId}' has no VM '${vm}' (it has ${vms.join(', ')})`, { traceId, vm });
  const name = strategyNameOf(opts.strategy);
  if (!STRATEGIES[name]?.x86) throw new DomainError('invalid_request', `strategy '${name}' has no x86 model (strategies: ${Object.keys(STRATEGIES).filter((n) => STRATEGIES[n]!.x86).join(', ')})`, { field: 'strategy' });
  const release = resolveStrategyRelease(opts.strategy);
  const recs = t.byVm.get(vm)!;
  const params = conformanceParameters(recs, opts.guestTscHz);
  const emu = await emulate(scratch, params, opts.strategy, opts.profile);
  const diff = compare(recs, emu.records, params.guestTscHz);
  const traceWrites = recs.filter(isWrite).length;
  const emulatedWrites = emu.records.filter((r) => r.fields.event === 'kvm_write_tsc_offset').length;
  return {
    traceId,
    vm,
    strategy: { spec: opts.strategy, ...release },
    profile: opts.profile,
    parameters: params,
    conforms: diff.first === null,
    compared: { traceWrites, emulatedWrites, agreedWrites: diff.agreedWrites, masterClock: diff.masterClock, pvclock: diff.pvclock },
    firstDifference: diff.first,
    emulatedTrace: emu.lines,
  };
}

/** The capture's first clock tracepoint after a line, other than kvm_track_tsc (which reports the write before it). */
function nextAfter(trace: Rec[], line: number | null): ComparedTracepoint | null {
  const r = trace.find((x) => (line === null || x.line > line) && x.fields.event !== 'kvm_track_tsc');
  return r ? shown(r) : null;
}

/** The comparison (see the head of this file): the first difference, or null. */
export function compare(trace: Rec[], emulated: Rec[], guestTscHz: bigint): { first: ConformanceDifference | null; agreedWrites: number; masterClock: boolean; pvclock: boolean } {
  const tw = trace.filter(isWrite);
  const ew = emulated.filter(isWrite);
  let agreed = 0;
  for (let i = 0; i < Math.max(tw.length, ew.length); i++) {
    const a = tw[i];
    const b = ew[i];
    const afterLine = i > 0 ? tw[Math.min(i, tw.length) - 1]!.line : null;
    if (!a || !b) {
      const first: ConformanceDifference = {
        check: 'kvm_write_tsc_offset',
        index: i + 1,
        fields: [a ? 'extra' : 'missing'],
        trace: a ? shown(a) : null,
        emulated: b ? shown(b) : null,
        afterLine,
        ...(a ? {} : { traceNext: nextAfter(trace, afterLine) }),
        message: a
          ? `the trace's write ${i + 1} (line ${a.line}) has no emulated counterpart: the emulation wrote ${ew.length} TSC offset(s), the trace ${tw.length}`
          : `the emulation writes a TSC offset (its write ${i + 1}) that the trace does not have${afterLine === null ? '' : ` after line ${afterLine}`}: the trace has ${tw.length} write(s), the emulation ${ew.length}`,
      };
      return { first, agreedWrites: agreed, masterClock: false, pvclock: false };
    }
    const fields = (['vcpu', 'prev', 'next'] as const).filter((k) => a.fields[k] !== b.fields[k]);
    if (fields.length) {
      const first: ConformanceDifference = { check: 'kvm_write_tsc_offset', index: i + 1, fields, trace: shown(a), emulated: shown(b), afterLine, message: '' };
      if (fields.includes('next')) {
        first.nextDeltaCycles = BigInt.asIntN(64, b.fields.next - a.fields.next);
        first.nextDeltaNs = (first.nextDeltaCycles * 1_000_000_000n) / guestTscHz;
      }
      first.message = `write ${i + 1} differs in ${fields.join(', ')}: the trace's line ${a.line} has ${fields.map((k) => `${k}=${a.fields[k]}`).join(' ')}, the emulation ${fields.map((k) => `${k}=${b.fields[k]}`).join(' ')}${first.nextDeltaNs !== undefined ? ` (next ${first.nextDeltaCycles! > 0n ? '+' : ''}${first.nextDeltaCycles} cycles, ${first.nextDeltaNs} ns)` : ''}`;
      return { first, agreedWrites: agreed, masterClock: false, pvclock: false };
    }
    agreed++;
  }
  const lastOf = (rs: Rec[], ev: TraceFields['event']) => [...rs].reverse().find((r) => r.fields.event === ev);
  let masterClock = false;
  const tm = lastOf(trace, 'kvm_update_master_clock');
  if (tm) {
    const em = lastOf(emulated, 'kvm_update_master_clock');
    const want = tm.fields.event === 'kvm_update_master_clock' && tm.fields.masterclock;
    const got = em?.fields.event === 'kvm_update_master_clock' ? em.fields.masterclock : null;
    if (got !== want) {
      return {
        first: {
          check: 'master_clock_final',
          index: null,
          fields: ['masterclock'],
          trace: shown(tm),
          emulated: em ? shown(em) : null,
          afterLine: null,
          message: `the master clock ends ${want ? 'on' : 'off'} in the trace (line ${tm.line}) and ${got === null ? 'is never updated' : got ? 'on' : 'off'} in the emulation`,
        },
        agreedWrites: agreed,
        masterClock: false,
        pvclock: false,
      };
    }
    masterClock = true;
  }
  let pvclock = false;
  const tp = lastOf(trace, 'kvm_pvclock_update');
  if (tp && tp.fields.event === 'kvm_pvclock_update') {
    const ep = lastOf(emulated, 'kvm_pvclock_update');
    const e = ep?.fields.event === 'kvm_pvclock_update' ? ep.fields : null;
    const fields = e === null ? ['missing'] : (['tscToSystemMul', 'tscShift'] as const).filter((k) => (tp.fields as Record<string, unknown>)[k] !== e[k]);
    if (fields.length) {
      return {
        first: {
          check: 'pvclock_final',
          index: null,
          fields,
          trace: shown(tp),
          emulated: ep ? shown(ep) : null,
          afterLine: null,
          message: e === null ? `the trace updates the pvclock (line ${tp.line}), the emulation never does` : `the last pvclock scale differs: the trace's line ${tp.line} has mul 0x${tp.fields.tscToSystemMul.toString(16)} shift ${tp.fields.tscShift}, the emulation mul 0x${e.tscToSystemMul.toString(16)} shift ${e.tscShift}`,
        },
        agreedWrites: agreed,
        masterClock,
        pvclock: false,
      };
    }
    pvclock = true;
  }
  return { first: null, agreedWrites: agreed, masterClock, pvclock };
}
