// The parameters a capture implies for its emulation, read from hand-written records (no log, no
// handler). The capture of every case: a 2 GHz host (pvclock mul 0x80000000 shift 0) whose TSC
// counts from 0 at 0 s; two vCPUs created at 10.0 s (host TSC 2×10^10: next = −2×10^10); the VMM
// then writes guest TSC 5×10^9 to vCPU 0 at 10.25 s (host TSC 2.05×10^10: next = −1.55×10^10) and
// to vCPU 1 10 ms later (kvm_synchronize_tsc matches it: the same offset).
import { describe, expect, it } from 'vitest';
import { conformanceParameters } from '../../machines/trace/conformance-params.js';
import type { TraceRecord } from '../../machines/trace/parse.js';
import { masterClock, pvclock, trackTsc, write } from '../helpers/trace-records.js';

const E9 = 1_000_000_000n;
const creation = [write(1, '10.000000', 0, 0n, -20n * E9), write(2, '10.000000', 1, 0n, -20n * E9)];
const restore = (t0 = '10.250000', t1 = '10.260000') => [write(3, t0, 0, -20n * E9, -15_500_000_000n), write(4, t1, 1, -20n * E9, -15_500_000_000n)];
const pv = pvclock(5, '10.270000', 0, { tscTimestamp: 20_540_000_000n, systemTime: 5_270_000_000n });
const capture = [...creation, ...restore(), pv];

/** The error a call throws: its code, message and details. */
function refusal(f: () => unknown): { code: string; message: string; details: unknown } {
  try {
    f();
  } catch (e) {
    const { code, message, details } = e as { code: string; message: string; details: unknown };
    return { code, message, details };
  }
  throw new Error('not refused');
}

describe('conformanceParameters', () => {
  it('reads the vCPUs, the rate from the pvclock, the host TSC at creation and the guest TSC the first restore write set', () => {
    expect(conformanceParameters(capture)).toEqual({
      vcpus: 2,
      vcpuIds: [0, 1],
      guestTscHz: 2n * E9,
      guestTscHzFrom: 'pvclock',
      hostTscAtCreation: 20n * E9,
      creationLine: 1,
      // 10.25 s − 10.0 s
      restoreGapNs: 250_000_000n,
      // 2×10^10 + 0.25 s × 2 GHz
      hostTscAtFirstRestore: 20_500_000_000n,
      // next(3) + 2.05×10^10: the value the VMM wrote
      sourceTscAtSave: 5n * E9,
      firstRestoreLine: 3,
      writeSpacingNs: 10_000_000n,
      restoreWriteGapsNs: [10_000_000n],
      blackoutNs: 1_000_000n,
      vmmLatencyNs: 0n,
      notes: [],
    });
  });

  it("the request's rate wins over the pvclock's, and places the restore with it", () => {
    const p = conformanceParameters(capture, 2_500_000_000n);
    // 2×10^10 + 0.25 s × 2.5 GHz = 2.0625×10^10; guest TSC −1.55×10^10 + that
    expect(p).toMatchObject({ guestTscHz: 2_500_000_000n, guestTscHzFrom: 'request', hostTscAtFirstRestore: 20_625_000_000n, sourceTscAtSave: 5_125_000_000n });
  });

  it('says so when the rate is not whole kHz (KVM_SET_TSC_KHZ takes kHz), yet places the restore at the exact rate', () => {
    const p = conformanceParameters(capture, 2_000_000_500n);
    expect(p.notes).toEqual(['the guest TSC rate 2000000500 Hz is not a whole number of kHz: the emulated hosts run at 2000000 kHz']);
    // 0.25 s × 2 000 000 500 Hz = 500 000 125 cycles
    expect(p.hostTscAtFirstRestore).toBe(20_500_000_125n);
  });

  it('counter timestamps (trace-cmd -C x86-tsc): no gap, no spacing, the source TSC low by the cycles between the writes', () => {
    const counted = [write(1, '1000', 0, 0n, -20n * E9), write(3, '5000', 0, -20n * E9, -15_500_000_000n), write(4, '7000', 1, -20n * E9, -15_500_000_000n)];
    const p = conformanceParameters(counted, 2n * E9);
    // host TSC at the restore taken as the creation's: −1.55×10^10 + 2×10^10
    expect(p).toMatchObject({ restoreGapNs: 0n, hostTscAtFirstRestore: 20n * E9, sourceTscAtSave: 4_500_000_000n, writeSpacingNs: 0n, restoreWriteGapsNs: [] });
    expect(p.notes).toEqual([
      'the trace timestamps are counter ticks, not seconds: the host time between the creation write (line 1) and the first restore write (line 3) ' +
        'is not known, so the emulation writes it at the creation and the source TSC is low by the host cycles between them',
      'the trace timestamps are counter ticks, not seconds: the writes are emulated without spacing',
    ]);
  });

  it('spaces every write by the first gap, and says so when the capture does not', () => {
    const p = conformanceParameters([...creation, ...restore(), write(6, '10.280000', 0, -15_500_000_000n, -15_500_000_000n), pv]);
    expect(p.restoreWriteGapsNs).toEqual([10_000_000n, 20_000_000n]);
    expect(p.writeSpacingNs).toBe(10_000_000n);
    expect(p.notes).toEqual([
      'the restore writes are not evenly spaced (10000000, 20000000 ns): the emulation spaces every write by the first gap, 10000000 ns',
    ]);
  });

  it('a restore write timestamped before the creation is written at the creation', () => {
    const p = conformanceParameters([...creation, ...restore('9.500000', '9.510000'), pv]);
    expect(p).toMatchObject({ restoreGapNs: 0n, hostTscAtFirstRestore: 20n * E9, sourceTscAtSave: 4_500_000_000n });
    expect(p.notes).toEqual([
      'the first restore write (line 3) is timestamped 500000000 ns before the creation write (line 1): the emulation writes it at the creation',
    ]);
  });

  it('without a creation write the host TSC is not placed; without a restore write the source runs 1 s', () => {
    const noCreation = conformanceParameters([...restore(), pv]);
    expect(noCreation).toMatchObject({ hostTscAtCreation: null, creationLine: null, hostTscAtFirstRestore: null, sourceTscAtSave: null, firstRestoreLine: 3 });
    expect(noCreation.notes).toEqual([
      'no creation write (kvm_write_tsc_offset prev=0): the emulated host TSC is not placed, so its offsets cannot agree to the cycle',
    ]);
    const noRestore = conformanceParameters([...creation, pv]);
    expect(noRestore).toMatchObject({ hostTscAtCreation: 20n * E9, hostTscAtFirstRestore: null, sourceTscAtSave: null, firstRestoreLine: null });
    expect(noRestore.notes).toEqual(['no restore write (kvm_write_tsc_offset with prev != 0): the emulated source runs 1 s']);
  });

  it('counts the vCPUs the clock tracepoints name, whichever they are', () => {
    const recs = [trackTsc(1, '1.000000', 7, true), pvclock(2, '1.000001', 3, { tscTimestamp: 1n, systemTime: 1n }), masterClock(3, '1.000002', true)];
    const p = conformanceParameters(recs);
    expect([p.vcpus, p.vcpuIds]).toEqual([2, [3, 7]]);
  });

  it('refuses what cannot be emulated, with invalid_request', () => {
    expect(refusal(() => conformanceParameters([masterClock(1, '1.000000', true)]))).toMatchObject({
      code: 'invalid_request',
      message: 'the trace has no x86 clock tracepoint of this VM (kvm_write_tsc_offset, kvm_track_tsc, kvm_pvclock_update): nothing to emulate',
    });
    // KVM_MAX_VCPUS 1024 vCPUs, ids below KVM_MAX_VCPU_IDS 4096 (arch/x86/include/asm/kvm_host.h)
    const many = (n: number) => Array.from({ length: n }, (_, i) => trackTsc(i + 1, '1.000000', i, true));
    expect(conformanceParameters(many(1024), 2n * E9).vcpus).toBe(1024);
    expect(refusal(() => conformanceParameters(many(1025), 2n * E9)).details).toEqual({ vcpus: 1025, max: 1024 });
    expect(conformanceParameters([trackTsc(1, '1.000000', 4095, true)], 2n * E9).vcpuIds).toEqual([4095]);
    expect(refusal(() => conformanceParameters([trackTsc(1, '1.000000', 4096, true)], 2n * E9)).details).toEqual({ vcpu: 4096, max: 4096 });
    // no rate
    expect(refusal(() => conformanceParameters(creation))).toMatchObject({ code: 'invalid_request', details: { field: 'guestTscHz' } });
    // below 1 kHz
    expect(conformanceParameters(creation, 1000n).guestTscHz).toBe(1000n);
    expect(refusal(() => conformanceParameters(creation, 999n)).message).toBe(
      'guestTscHz 999 Hz: the emulated hosts need at least 1000 Hz (KVM_SET_TSC_KHZ takes whole kHz); give guestTscHz',
    );
  });

  it('refuses a restore write that set a negative guest TSC, naming its line', () => {
    // created at 1.0 s (host TSC 2×10^9); at 2.0 s (host TSC 4×10^9) offset −5×10^9: guest TSC −10^9
    const recs: TraceRecord[] = [write(1, '1.000000', 0, 0n, -2n * E9), write(2, '2.000000', 0, -2n * E9, -5n * E9)];
    expect(refusal(() => conformanceParameters(recs, 2n * E9))).toEqual({
      code: 'invalid_request',
      message:
        'line 2: the restore write sets guest TSC -1000000000 (offset -5000000000 at host TSC 4000000000, ' +
        '1000000000 ns after the creation write of line 1): the emulated source cannot save a negative guest TSC',
      details: { line: 2 },
    });
  });
});
