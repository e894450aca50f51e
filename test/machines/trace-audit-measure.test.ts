// The trace audit's measurement pass on hand-written records (no log, no handler): TSC offsets and
// their spacing, the guest's TSC MSR writes, the pvclock's steps and stable-bit flips, the master
// clock. The host runs at 2 GHz (pvclock mul 0x80000000 shift 0: a cycle is half a ns).
import { describe, expect, it } from 'vitest';
import { measureTraceVm } from '../../machines/trace/audit-measure.js';
import { masterClock, pvclock, rec, trackTsc, write } from '../helpers/trace-records.js';

const E9 = 1_000_000_000n;
const msr = (line: number, ts: string, write: boolean, index: number, data: bigint) => rec(line, ts, { event: 'kvm_msr', write, msr: index, data, gp: false });

describe('measureTraceVm', () => {
  it("the vCPUs' final offsets, their spread, and every write's spacing against the one-second window", () => {
    const m = measureTraceVm(
      [
        write(1, '1.000000', 0, 0n, -2n * E9),
        write(2, '1.000000', 1, 0n, -2n * E9),
        write(3, '2.000000', 0, -2n * E9, -E9),
        write(4, '2.999999999', 1, -2n * E9, -1_500_000_000n),
        pvclock(5, '3.000000', 0, { tscTimestamp: 6n * E9, systemTime: 3n * E9 }),
      ],
      {},
    );
    expect([m.guestTscHz, m.guestTscHzFrom]).toEqual([2n * E9, 'pvclock']);
    // −10^9 − (−1.5×10^9) = 5×10^8 cycles: 250 ms at 2 GHz
    expect([m.tscOffsetSpreadCycles, m.tscOffsetSpreadNs]).toEqual([500_000_000n, 250_000_000n]);
    expect(m.vcpus).toEqual([
      { vcpu: 0, tscOffset: 2n ** 64n - E9, tscOffsetSigned: -E9, tscOffsetNs: -500_000_000n, writes: 2, line: 3 },
      { vcpu: 1, tscOffset: 2n ** 64n - 1_500_000_000n, tscOffsetSigned: -1_500_000_000n, tscOffsetNs: -750_000_000n, writes: 2, line: 4 },
    ]);
    // 1 s exactly is outside the window (kvm_synchronize_tsc() matches within less than a second); 1 ns less is inside
    expect(m.tscOffsetWrites.map((w) => [w.line, w.vcpu, w.sincePreviousNs, w.withinSyncWindow])).toEqual([
      [1, 0, null, null],
      [2, 1, 0n, true],
      [3, 0, E9, false],
      [4, 1, 999_999_999n, true],
    ]);
  });

  it("the guest's writes of MSR_IA32_TSC (0x10) only, spaced; with counter timestamps, no spacing", () => {
    const m = measureTraceVm([
      msr(1, '1.000000', true, 0x10, E9),
      msr(2, '1.100000', false, 0x10, E9),
      msr(3, '1.200000', true, 0x6e0, E9),
      msr(4, '2.500000', true, 0x10, 2n * E9),
    ]);
    expect(m.tscMsrWrites).toEqual([
      { line: 1, vcpu: null, task: 'CPU 0/KVM', timestamp: '1.000000', value: E9, sincePreviousNs: null, withinSyncWindow: null },
      { line: 4, vcpu: null, task: 'CPU 0/KVM', timestamp: '2.500000', value: 2n * E9, sincePreviousNs: 1_500_000_000n, withinSyncWindow: false },
    ]);
    const counted = measureTraceVm([msr(1, '1000', true, 0x10, E9), msr(2, '9000', true, 0x10, E9)]);
    expect(counted.tscMsrWrites.map((w) => [w.sincePreviousNs, w.withinSyncWindow])).toEqual([
      [null, null],
      [null, null],
    ]);
  });

  it("each vCPU's pvclock against its previous one: the system_time step at the new tsc_timestamp, and PVCLOCK_TSC_STABLE_BIT flips", () => {
    const m = measureTraceVm([
      pvclock(1, '1.000000', 0, { tscTimestamp: 2n * E9, systemTime: E9 }),
      pvclock(2, '1.000000', 1, { tscTimestamp: 2n * E9, systemTime: E9 }),
      // 2×10^9 cycles later the earlier pvclock gives 10^9 ns more; system_time moved 1.002×10^9: +2 ms
      pvclock(3, '2.000000', 0, { tscTimestamp: 4n * E9, systemTime: 2_002_000_000n, flags: 0 }),
      // tsc_timestamp back by 10^9 cycles (−0.5 s), system_time back by 0.502 s: −2 ms
      pvclock(4, '3.000000', 0, { tscTimestamp: 3n * E9, systemTime: 1_500_000_000n, flags: 1 }),
    ]);
    expect(m.pvclock).toEqual({
      frequencyHz: 2n * E9,
      tscToSystemMul: 0x80000000,
      tscShift: 0,
      line: 4,
      updates: 4,
      systemTimeSteps: [
        { vcpu: 0, line: 3, previousLine: 1, stepNs: 2_000_000n },
        { vcpu: 0, line: 4, previousLine: 3, stepNs: -2_000_000n },
      ],
      stableBitFlips: [
        { vcpu: 0, line: 3, stable: false },
        { vcpu: 0, line: 4, stable: true },
      ],
    });
  });

  it("the guest rate: the request's first, else the pvclock's unless it scales to 0 Hz, else none", () => {
    const pv = (shift: number) => [write(1, '1.000000', 0, 0n, -2n * E9), pvclock(2, '1.000000', 0, { tscTimestamp: 1n, systemTime: 1n, shift })];
    // −2×10^9 cycles at 3 GHz: −666 666 666.6 ns, truncated
    const asked = measureTraceVm(pv(0), { guestTscHz: 3n * E9 });
    expect(asked).toMatchObject({ guestTscHz: 3n * E9, guestTscHzFrom: 'request', vcpus: [{ tscOffsetNs: -666_666_666n }] });
    // hvclock_to_hz() of a shift past 63 is 0 Hz: reported as the pvclock's frequency, not used
    expect(measureTraceVm(pv(100))).toMatchObject({ guestTscHz: null, guestTscHzFrom: null, pvclock: { frequencyHz: 0n }, vcpus: [{ tscOffsetNs: null }] });
    const none = measureTraceVm([write(1, '1.000000', 0, 0n, 5n)]);
    expect(none).toMatchObject({ guestTscHz: null, tscOffsetSpreadNs: null, pvclock: { frequencyHz: null, line: null } });
  });

  it("the master clock: its changes, its last state, and the VM's creation when the first vCPU tracepoint is a creation write", () => {
    const created = [
      masterClock(1, '0.500000', false, false),
      write(2, '1.000000', 0, 0n, -2n * E9),
      masterClock(3, '1.100000', true),
      masterClock(4, '1.200000', false, true),
    ];
    expect(measureTraceVm(created).masterClock).toEqual({
      final: false,
      finalLine: 4,
      finalOffsetMatched: true,
      updateLines: [1, 3, 4],
      transitions: [
        { line: 3, from: false, to: true },
        { line: 4, from: true, to: false },
      ],
      creationLine: 1,
      beforeVcpus: 1,
    });
    // the first vCPU tracepoint is not a creation write: the update before it is not told as the creation
    const tracked = measureTraceVm([created[0]!, trackTsc(2, '1.000000', 0, false), ...created.slice(2)]);
    expect(tracked.masterClock).toMatchObject({ creationLine: null, beforeVcpus: 1 });
    // an update on before the vCPUs is not the creation's (kvm_arch_init_vm() finds no vCPU to match)
    expect(measureTraceVm([masterClock(1, '0.500000', true), ...created.slice(1)]).masterClock).toMatchObject({ creationLine: null, beforeVcpus: 1 });
    // no vCPU at all: every update is before the vCPUs
    expect(measureTraceVm([masterClock(1, '0.500000', false, false), masterClock(2, '0.600000', false, false)]).masterClock).toMatchObject({
      final: false,
      transitions: [],
      creationLine: null,
      beforeVcpus: 2,
    });
    expect(measureTraceVm([]).masterClock).toEqual({
      final: null,
      finalLine: null,
      finalOffsetMatched: null,
      updateLines: [],
      transitions: [],
      creationLine: null,
      beforeVcpus: 0,
    });
  });
});
