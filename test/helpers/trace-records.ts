// Trace records written by hand, as the parser gives them: the plain input of the trace audit's
// measurement and rules and of the conformance parameters and comparison (no log, no handler).
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { u64 } from '../../kvm/u64.js';
import type { TraceFields, TraceRecord } from '../../machines/trace/parse.js';

/** A record at a printed timestamp: seconds.fraction gives its ns, a bare count (a counter clock) none. */
export function rec(line: number, timestamp: string, fields: TraceFields, task = 'CPU 0/KVM', pid = 10): TraceRecord {
  const [s, frac] = timestamp.split('.');
  const timeNs = frac === undefined ? null : BigInt(s!) * NSEC_PER_SEC + BigInt(frac.padEnd(9, '0'));
  return { line, task, pid, tgid: null, cpu: 0, flags: null, timestamp, timeNs, fields };
}

/** kvm_write_tsc_offset, its offsets as signed values (printed as the u64 they are). */
export const write = (line: number, ts: string, vcpu: number, prev: bigint, next: bigint) =>
  rec(line, ts, { event: 'kvm_write_tsc_offset', vcpu, prev: u64(prev), next: u64(next) }, `CPU ${vcpu}/KVM`, 10 + vcpu);

export const masterClock = (line: number, ts: string, on: boolean, offsetMatched = on) =>
  rec(line, ts, { event: 'kvm_update_master_clock', masterclock: on, hostclock: 'tsc', offsetMatched });

export const trackTsc = (line: number, ts: string, vcpu: number, on: boolean) =>
  rec(line, ts, { event: 'kvm_track_tsc', vcpu, masterclock: on, nrVcpusMatchedTsc: 0, nrOnline: 1, hostclock: 'tsc' }, `CPU ${vcpu}/KVM`, 10 + vcpu);

export interface Pvclock {
  tscTimestamp: bigint;
  systemTime: bigint;
  mul?: number;
  shift?: number;
  flags?: number;
  version?: number;
}

/** kvm_pvclock_update; the scale defaults to mul 0x80000000 shift 0, 2 GHz (hvclock_to_hz: 2^32 / 2^31 × 10^9). */
export const pvclock = (line: number, ts: string, vcpu: number, p: Pvclock) =>
  rec(
    line,
    ts,
    {
      event: 'kvm_pvclock_update',
      vcpu,
      version: p.version ?? 2,
      tscTimestamp: p.tscTimestamp,
      systemTime: p.systemTime,
      tscToSystemMul: p.mul ?? 0x80000000,
      tscShift: p.shift ?? 0,
      flags: p.flags ?? 1,
    },
    `CPU ${vcpu}/KVM`,
    10 + vcpu,
  );
