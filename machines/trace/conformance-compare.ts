// The comparison of a capture with its emulation (conformance.ts), and what "differ" means:
//   0. the emulated restore must complete, as the capture's did: an emulated migration that failed
//      (the strategy refused a step on the kernel profile) is the difference, whatever it left;
//   1. the kvm_write_tsc_offset tracepoints, the i-th of the capture against the i-th emulated
//      (aligned by order; timestamps are not compared): vcpu, prev and next must be equal, to the
//      cycle. One side having a write the other does not have is a difference.
//   2. then the last kvm_update_master_clock: masterclock must be equal (the state the restore
//      leaves); the number of updates is not compared (it follows when each vCPU enters KVM_RUN).
//   3. then the last kvm_pvclock_update: tsc_to_system_mul and tsc_shift must be equal.
// kvm_track_tsc (printed after each write, and often filtered out of a capture), kvm_msr, the
// pvclock pages' versions and system_time, and tracepoints of other events are not compared.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import type { EmulationFailure } from './conformance-emulate.js';
import { isTscWrite, type TscWrite } from './conformance-params.js';
import type { TraceFields, TraceRecord } from './parse.js';

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
  /** what was compared: whether the emulated restore completed, the i-th write, or the final master clock / pvclock */
  check: 'emulation_failed' | 'kvm_write_tsc_offset' | 'master_clock_final' | 'pvclock_final';
  /** 1-based index of the write (check kvm_write_tsc_offset) */
  index: number | null;
  /** the fields that differ ('missing': the capture has none here; 'extra': the emulation has none; 'status': the emulated restore failed) */
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

export interface Comparison {
  /** the first difference (null: the two agree) */
  first: ConformanceDifference | null;
  /** the writes that agreed before it */
  agreedWrites: number;
  /** the final master clock / pvclock scale agreed (false also when not reached) */
  masterClock: boolean;
  pvclock: boolean;
}

/** A tracepoint's body as its TP_printk prints it (the clock events compared here). */
export function tracepointText(f: TraceFields): string {
  switch (f.event) {
    case 'kvm_write_tsc_offset':
      return `${f.event}: vcpu=${f.vcpu} prev=${f.prev} next=${f.next}`;
    case 'kvm_update_master_clock':
      return `${f.event}: masterclock ${f.masterclock ? 1 : 0} hostclock ${f.hostclock} offsetmatched ${f.offsetMatched ? 1 : 0}`;
    case 'kvm_pvclock_update': {
      const scale = `tsc_to_system_mul 0x${f.tscToSystemMul.toString(16)}, tsc_shift ${f.tscShift}`;
      const page = `version ${f.version}, tsc_timestamp 0x${f.tscTimestamp.toString(16)}, system_time 0x${f.systemTime.toString(16)}, ${scale}`;
      return `${f.event}: vcpu_id ${f.vcpu}, pvclock { ${page}, flags 0x${f.flags.toString(16)} }`;
    }
    default:
      return f.event;
  }
}

const shown = (r: TraceRecord): ComparedTracepoint => ({ line: r.line, timestamp: r.timestamp, task: r.task, text: tracepointText(r.fields) });

/** The capture's first clock tracepoint after a line, other than kvm_track_tsc (which reports the write before it). */
function nextAfter(trace: TraceRecord[], line: number | null): ComparedTracepoint | null {
  const r = trace.find((x) => (line === null || x.line > line) && x.fields.event !== 'kvm_track_tsc');
  return r ? shown(r) : null;
}

const lastOf = (rs: TraceRecord[], ev: TraceFields['event']) => [...rs].reverse().find((r) => r.fields.event === ev);

/** The comparison (see the head of this file) of the capture's records with the emulation's; guestTscHz turns cycles to ns. */
export function compare(trace: TraceRecord[], emulated: TraceRecord[], guestTscHz: bigint): Comparison {
  const writes = compareWrites(trace, emulated, guestTscHz);
  if (writes.first) return { first: writes.first, agreedWrites: writes.agreed, masterClock: false, pvclock: false };
  const agreedWrites = writes.agreed;
  const mc = compareMasterClock(trace, emulated);
  if (mc.first) return { first: mc.first, agreedWrites, masterClock: false, pvclock: false };
  const pv = comparePvclock(trace, emulated);
  return { first: pv.first, agreedWrites, masterClock: mc.agreed, pvclock: pv.agreed };
}

/**
 * 0. the emulated migration failed: the host restored the VM (its first restore write, `line`, when
 * the capture has one) where the strategy's emulated VMM could not, on this kernel profile.
 */
export function emulationFailed(
  trace: TraceRecord[],
  failure: EmulationFailure,
  line: number | null,
  strategy: string,
  profile: string,
): ConformanceDifference {
  const restore = line === null ? null : (trace.find((r) => r.line === line) ?? null);
  const where = restore ? `, where the host restored the VM (line ${restore.line})` : '';
  return {
    check: 'emulation_failed',
    index: null,
    fields: ['status'],
    trace: restore ? shown(restore) : null,
    emulated: null,
    afterLine: null,
    message:
      `the emulated restore failed at its ${failure.step} step${where}: ${failure.reason}. ` + `${strategy}, as modelled, cannot restore this VM on ${profile}`,
  };
}

/** 1. the writes in order: the first that differs or that one side lacks, and how many agreed before it. */
function compareWrites(trace: TraceRecord[], emulated: TraceRecord[], guestTscHz: bigint): { first: ConformanceDifference | null; agreed: number } {
  const tw = trace.filter(isTscWrite);
  const ew = emulated.filter(isTscWrite);
  for (let i = 0; i < Math.max(tw.length, ew.length); i++) {
    const a = tw[i];
    const b = ew[i];
    const afterLine = i > 0 ? tw[Math.min(i, tw.length) - 1]!.line : null;
    if (!a || !b) {
      const theirs = `the trace has ${tw.length} write(s), the emulation ${ew.length}`;
      const where = afterLine === null ? '' : ` after line ${afterLine}`;
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
          : `the emulation writes a TSC offset (its write ${i + 1}) that the trace does not have${where}: ${theirs}`,
      };
      return { first, agreed: i };
    }
    const fields = (['vcpu', 'prev', 'next'] as const).filter((k) => a.fields[k] !== b.fields[k]);
    if (fields.length) {
      const first: ConformanceDifference = { check: 'kvm_write_tsc_offset', index: i + 1, fields, trace: shown(a), emulated: shown(b), afterLine, message: '' };
      let delta = '';
      if (fields.includes('next')) {
        first.nextDeltaCycles = BigInt.asIntN(64, b.fields.next - a.fields.next);
        first.nextDeltaNs = (first.nextDeltaCycles * NSEC_PER_SEC) / guestTscHz;
        delta = ` (next ${first.nextDeltaCycles > 0n ? '+' : ''}${first.nextDeltaCycles} cycles, ${first.nextDeltaNs} ns)`;
      }
      const values = (w: TscWrite) => fields.map((k) => `${k}=${w.fields[k]}`).join(' ');
      first.message = `write ${i + 1} differs in ${fields.join(', ')}: the trace's line ${a.line} has ${values(a)}, the emulation ${values(b)}${delta}`;
      return { first, agreed: i };
    }
  }
  return { first: null, agreed: Math.max(tw.length, ew.length) };
}

/** 2. the master clock the restore leaves, when the capture shows one. */
function compareMasterClock(trace: TraceRecord[], emulated: TraceRecord[]): { first: ConformanceDifference | null; agreed: boolean } {
  const tm = lastOf(trace, 'kvm_update_master_clock');
  if (!tm) return { first: null, agreed: false };
  const em = lastOf(emulated, 'kvm_update_master_clock');
  const want = tm.fields.event === 'kvm_update_master_clock' && tm.fields.masterclock;
  const got = em?.fields.event === 'kvm_update_master_clock' ? em.fields.masterclock : null;
  if (got === want) return { first: null, agreed: true };
  const emulatedEnd = got === null ? 'is never updated' : got ? 'on' : 'off';
  return {
    first: {
      check: 'master_clock_final',
      index: null,
      fields: ['masterclock'],
      trace: shown(tm),
      emulated: em ? shown(em) : null,
      afterLine: null,
      message: `the master clock ends ${want ? 'on' : 'off'} in the trace (line ${tm.line}) and ${emulatedEnd} in the emulation`,
    },
    agreed: false,
  };
}

/** 3. the last pvclock scale, when the capture shows one. */
function comparePvclock(trace: TraceRecord[], emulated: TraceRecord[]): { first: ConformanceDifference | null; agreed: boolean } {
  const tp = lastOf(trace, 'kvm_pvclock_update');
  if (tp?.fields.event !== 'kvm_pvclock_update') return { first: null, agreed: false };
  const t = tp.fields;
  const ep = lastOf(emulated, 'kvm_pvclock_update');
  const e = ep?.fields.event === 'kvm_pvclock_update' ? ep.fields : null;
  const fields = e === null ? ['missing'] : (['tscToSystemMul', 'tscShift'] as const).filter((k) => t[k] !== e[k]);
  if (!fields.length) return { first: null, agreed: true };
  const scale = (f: typeof t) => `mul 0x${f.tscToSystemMul.toString(16)} shift ${f.tscShift}`;
  return {
    first: {
      check: 'pvclock_final',
      index: null,
      fields,
      trace: shown(tp),
      emulated: ep ? shown(ep) : null,
      afterLine: null,
      message:
        e === null
          ? `the trace updates the pvclock (line ${tp.line}), the emulation never does`
          : `the last pvclock scale differs: the trace's line ${tp.line} has ${scale(t)}, the emulation ${scale(e)}`,
    },
    agreed: false,
  };
}
