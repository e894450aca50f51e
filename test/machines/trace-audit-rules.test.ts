// The trace audit's rule table on measurements written by hand (no records, no log): each rule's
// cases, their boundaries, and the order of the findings.
import { describe, expect, it } from 'vitest';
import type { TraceMeasurement, TraceTscWrite } from '../../machines/trace/audit-measure.js';
import { judgeTrace, TRACE_RULES } from '../../machines/trace/audit-rules.js';
import type { TraceImportedData } from '../../machines/trace/state.js';

const E9 = 1_000_000_000n;

/** A VM with nothing to find: no write, no update. */
function quiet(over: Partial<TraceMeasurement> = {}): TraceMeasurement {
  return {
    guestTscHz: null,
    guestTscHzFrom: null,
    vcpus: [],
    tscOffsetSpreadCycles: 0n,
    tscOffsetSpreadNs: null,
    tscOffsetWrites: [],
    tscMsrWrites: [],
    masterClock: { final: null, finalLine: null, finalOffsetMatched: null, updateLines: [], transitions: [], creationLine: null, beforeVcpus: 0 },
    pvclock: { frequencyHz: null, tscToSystemMul: null, tscShift: null, line: null, updates: 0, systemTimeSteps: [], stableBitFlips: [] },
    arm64Timers: null,
    ...over,
  };
}
const judge = (m: TraceMeasurement, lost: TraceImportedData['lost'] = []) => judgeTrace({ m, lost });
const vcpu = (id: number, offset: bigint, line: number) => ({ vcpu: id, tscOffset: offset, tscOffsetSigned: offset, tscOffsetNs: null, writes: 1, line });
const w = (line: number, vcpu: number, value: bigint, withinSyncWindow: boolean | null): TraceTscWrite => ({
  line,
  vcpu,
  task: 'CPU 0/KVM',
  timestamp: '1.0',
  value,
  sincePreviousNs: null,
  withinSyncWindow,
});
const mc = (over: Partial<TraceMeasurement['masterClock']>) => quiet({ masterClock: { ...quiet().masterClock, ...over } });

describe('the trace rules', () => {
  it('nothing measured, nothing found; one row per finding code', () => {
    expect(judge(quiet())).toEqual([]);
    expect(new Set(TRACE_RULES.map((r) => r.code)).size).toBe(TRACE_RULES.length);
  });

  it('events_lost: the events every lost-event line dropped, citing those lines', () => {
    const lost = [
      { line: 3, cpu: 1, events: 120 },
      { line: 9, cpu: 0, events: 3 },
    ];
    expect(judge(quiet(), lost)).toEqual([
      {
        code: 'events_lost',
        severity: 'warn',
        message: 'the ring buffer dropped 123 event(s): writes or updates may be missing from what follows',
        lines: [3, 9],
      },
    ]);
  });

  it('tsc_offsets_differ: the spread, in ns when the rate is known, citing every final write', () => {
    const m = quiet({ vcpus: [vcpu(0, -E9, 3), vcpu(1, -1_500_000_000n, 4)], tscOffsetSpreadCycles: 500_000_000n });
    const tail = "the kernel keeps its master clock only while every vCPU's offset matches";
    const message = `the vCPUs' final TSC offsets differ by 500000000 cycles: ${tail}`;
    expect(judge(m)).toEqual([{ code: 'tsc_offsets_differ', severity: 'fail', message, lines: [3, 4] }]);
    const known = judge({ ...m, guestTscHz: 2n * E9, tscOffsetSpreadNs: 250_000_000n });
    expect(known[0]!.message).toBe(`the vCPUs' final TSC offsets differ by 500000000 cycles (250000000 ns at 2000000000 Hz): ${tail}`);
  });

  it('tsc_write_outside_sync_window: final writes a second late that set another offset, each with the write before it', () => {
    const writes = [w(1, 0, 5n, null), w(2, 1, 5n, true), w(5, 0, 7n, false), w(6, 1, 9n, false)];
    const m = quiet({ vcpus: [vcpu(0, 7n, 5), vcpu(1, 9n, 6)], tscOffsetSpreadCycles: 2n, tscOffsetWrites: writes });
    const late = judge(m).find((f) => f.code === 'tsc_write_outside_sync_window')!;
    // the pairs (2, 5) and (5, 6): lines cited once
    expect(late).toMatchObject({ severity: 'warn', lines: [2, 5, 6] });
    expect(late.message).toBe(
      '2 vCPU(s) took their final TSC offset in a write that came 1000000000 ns or more after the previous write and set another offset: ' +
        'a VMM writing the same TSC value a second or more later is not matched by kvm_synchronize_tsc()',
    );
    const codes = (x: TraceMeasurement) => judge(x).map((f) => f.code);
    // a late write of the offset the write before it set is no case; inside the window neither
    expect(codes({ ...m, tscOffsetWrites: [w(1, 0, 5n, null), w(2, 1, 5n, true), w(5, 0, 5n, false), w(6, 1, 9n, true)] })).toEqual(['tsc_offsets_differ']);
    // nor a late write that is not a vCPU's last
    expect(codes({ ...m, vcpus: [vcpu(0, 7n, 7), vcpu(1, 9n, 8)], tscOffsetWrites: [...writes, w(7, 0, 7n, true), w(8, 1, 9n, true)] })).toEqual([
      'tsc_offsets_differ',
    ]);
    // offsets that end equal: no finding at all, however late the writes
    expect(judge({ ...m, tscOffsetSpreadCycles: 0n })).toEqual([]);
  });

  it('master_clock_lost: it went from on to off and stayed off, citing each on → off', () => {
    const transitions = [
      { line: 3, from: false, to: true },
      { line: 4, from: true, to: false },
    ];
    const lost = mc({ final: false, finalLine: 4, finalOffsetMatched: true, updateLines: [1, 3, 4], transitions });
    expect(judge(lost)).toEqual([
      {
        code: 'master_clock_lost',
        severity: 'fail',
        message: 'the master clock went off (kvm_update_master_clock masterclock 0, offsetmatched 1) and stayed off to the end of the trace',
        lines: [4],
      },
    ]);
    // on again at the end: nothing
    expect(
      judge(
        mc({
          final: true,
          transitions: [
            { line: 4, from: true, to: false },
            { line: 5, from: false, to: true },
          ],
        }),
      ),
    ).toEqual([]);
  });

  it('never on: info when every update came before the vCPUs, warn citing the later ones otherwise', () => {
    const before = judge(mc({ final: false, finalLine: 1, updateLines: [1], creationLine: 1, beforeVcpus: 1 }));
    expect(before.map((f) => [f.code, f.severity, f.lines])).toEqual([['master_clock_before_vcpus', 'info', [1]]]);
    expect(before[0]!.message).toBe(
      'the master clock is off only in kvm_update_master_clock before any vCPU of this VM (masterclock 0 offsetmatched 0, ' +
        'as KVM evaluates it when it creates a VM, which the trace shows at line 1); ' +
        'the trace has no update once the vCPUs exist, so it does not show whether the master clock came on',
    );
    expect(judge(mc({ final: false, finalLine: 2, updateLines: [1, 2], beforeVcpus: 2 }))[0]!.message).toContain('when it creates a VM); the trace');
    const off = judge(mc({ final: false, finalLine: 7, updateLines: [1, 4, 7], creationLine: 1, beforeVcpus: 1 }));
    expect(off).toEqual([
      {
        code: 'master_clock_off',
        severity: 'warn',
        message:
          'the master clock is off in every kvm_update_master_clock of the trace once the VM has vCPUs ' +
          "(the last at line 7; the VM's creation is at line 1)",
        lines: [4, 7],
      },
    ]);
  });

  it('pvclock_tsc_stable_cleared: the updates that cleared the bit, not those that set it', () => {
    const flips = [
      { vcpu: 0, line: 3, stable: false },
      { vcpu: 0, line: 4, stable: true },
      { vcpu: 1, line: 6, stable: false },
    ];
    expect(judge(quiet({ pvclock: { ...quiet().pvclock, stableBitFlips: flips } }))).toEqual([
      {
        code: 'pvclock_tsc_stable_cleared',
        severity: 'warn',
        message: "PVCLOCK_TSC_STABLE_BIT was cleared in 2 pvclock update(s): the guest's kvmclock stops trusting the TSC and serializes its reads",
        lines: [3, 6],
      },
    ]);
  });

  it('pvclock_time_step: steps of 1 ms or more either way, the largest by size (the first of equals), each with its previous update', () => {
    const step = (line: number, stepNs: bigint) => ({ vcpu: 0, line, previousLine: line - 1, stepNs });
    const steps = [step(2, 999_999n), step(4, 1_000_000n), step(6, -3_000_000n), step(8, 3_000_000n)];
    expect(judge(quiet({ pvclock: { ...quiet().pvclock, systemTimeSteps: steps } }))).toEqual([
      {
        code: 'pvclock_time_step',
        severity: 'warn',
        message: '3 pvclock update(s) stepped system_time by 1000000 ns or more against the guest TSC (largest -3000000 ns)',
        lines: [3, 4, 5, 6, 7, 8],
      },
    ]);
  });

  it('findings come in table order', () => {
    const m = quiet({
      vcpus: [vcpu(0, 1n, 2), vcpu(1, 2n, 3)],
      tscOffsetSpreadCycles: 1n,
      masterClock: { ...quiet().masterClock, final: false, finalLine: 5, updateLines: [4, 5], transitions: [{ line: 5, from: true, to: false }] },
      pvclock: {
        ...quiet().pvclock,
        stableBitFlips: [{ vcpu: 0, line: 6, stable: false }],
        systemTimeSteps: [{ vcpu: 0, line: 6, previousLine: 1, stepNs: E9 }],
      },
    });
    expect(judge(m, [{ line: 9, cpu: 0, events: 1 }]).map((f) => f.code)).toEqual([
      'events_lost',
      'tsc_offsets_differ',
      'master_clock_lost',
      'pvclock_tsc_stable_cleared',
      'pvclock_time_step',
    ]);
  });
});
