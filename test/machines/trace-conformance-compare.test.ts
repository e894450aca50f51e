// The comparison of a capture with its emulation, on hand-written records (no log, no handler):
// the writes in order to the cycle, then the final master clock, then the last pvclock scale.
import { describe, expect, it } from 'vitest';
import { u64 } from '../../kvm/u64.js';
import { compare, tracepointText } from '../../machines/trace/conformance-compare.js';
import { parseTrace, type TraceRecord } from '../../machines/trace/parse.js';
import { masterClock, pvclock, trackTsc, write } from '../helpers/trace-records.js';

const E9 = 1_000_000_000n;
const HZ = 2n * E9;
// a restore as both sides print it: creation (line 1), restore write (2) and its kvm_track_tsc (3),
// the master clock on (4), the pvclock at 2 GHz (5)
const created = write(1, '10.000000', 0, 0n, -20n * E9);
const restored = write(2, '10.250000', 0, -20n * E9, -15_500_000_000n);
const mcOn = masterClock(4, '10.300000', true);
const pv = pvclock(5, '10.300001', 0, { tscTimestamp: 20_600_000_000n, systemTime: 5_300_000_000n });
const capture = [created, restored, trackTsc(3, '10.250001', 0, false), mcOn, pv];
/** the restore's offset as printed */
const R = u64(-15_500_000_000n);

describe('compare', () => {
  it('agrees write by write, then on the master clock and the pvclock scale (timestamps are not compared)', () => {
    const emulated = [write(1, '2.501000', 0, 0n, -20n * E9), write(2, '2.751000', 0, -20n * E9, -15_500_000_000n), masterClock(3, '3.0', true), pv];
    expect(compare(capture, emulated, HZ)).toEqual({ first: null, agreedWrites: 2, masterClock: true, pvclock: true });
    // a capture without master clock or pvclock update agrees on neither, and still conforms
    expect(compare([created, restored], [created, restored], HZ)).toEqual({ first: null, agreedWrites: 2, masterClock: false, pvclock: false });
  });

  it('an emulated write the capture does not have: where it would be, and what the capture shows there instead', () => {
    const extra = write(3, '2.751001', 0, -15_500_000_000n, -15_500_000_000n);
    const r = compare(capture, [created, restored, extra, mcOn, pv], HZ);
    expect(r).toMatchObject({ agreedWrites: 2, masterClock: false, pvclock: false });
    expect(r.first).toEqual({
      check: 'kvm_write_tsc_offset',
      index: 3,
      fields: ['missing'],
      trace: null,
      emulated: { line: 3, timestamp: '2.751001', task: 'CPU 0/KVM', text: `kvm_write_tsc_offset: vcpu=0 prev=${R} next=${R}` },
      afterLine: 2,
      // line 3 is the kvm_track_tsc of write 2: the capture's next is the master clock
      traceNext: { line: 4, timestamp: '10.300000', task: 'CPU 0/KVM', text: 'kvm_update_master_clock: masterclock 1 hostclock tsc offsetmatched 1' },
      message: 'the emulation writes a TSC offset (its write 3) that the trace does not have after line 2: the trace has 2 write(s), the emulation 3',
    });
  });

  it("a capture's write the emulation does not make", () => {
    const r = compare(capture, [created], HZ);
    expect(r.first).toMatchObject({ index: 2, fields: ['extra'], emulated: null, afterLine: 1, trace: { line: 2 } });
    expect(r.first).not.toHaveProperty('traceNext');
    expect(r.first!.message).toBe("the trace's write 2 (line 2) has no emulated counterpart: the emulation wrote 1 TSC offset(s), the trace 2");
    expect(r.agreedWrites).toBe(1);
  });

  it('a write that differs in next: emulated − trace as signed cycles and ns at the guest rate', () => {
    // 10^8 cycles less at 2 GHz: −50 ms
    const low = compare(capture, [created, write(2, '2.751000', 0, -20n * E9, -15_600_000_000n)], HZ);
    expect(low.first).toMatchObject({ index: 2, fields: ['next'], afterLine: 1, nextDeltaCycles: -100_000_000n, nextDeltaNs: -50_000_000n });
    expect(low.first!.message).toBe(
      `write 2 differs in next: the trace's line 2 has next=${R}, the emulation next=${u64(-15_600_000_000n)} (next -100000000 cycles, -50000000 ns)`,
    );
    const high = compare(capture, [created, write(2, '2.751000', 0, -20n * E9, -15_499_999_999n)], HZ);
    // one cycle at 2 GHz is half a ns: 0 ns whole
    expect(high.first).toMatchObject({ nextDeltaCycles: 1n, nextDeltaNs: 0n });
    expect(high.first!.message).toMatch(/\(next \+1 cycles, 0 ns\)$/);
  });

  it('a write to another vCPU from another offset names those fields, with no delta', () => {
    const r = compare(capture, [created, write(2, '2.751000', 1, -19n * E9, -15_500_000_000n)], HZ);
    expect(r.first).toMatchObject({ fields: ['vcpu', 'prev'] });
    expect(r.first).not.toHaveProperty('nextDeltaCycles');
    expect(r.first!.message).toBe(
      `write 2 differs in vcpu, prev: the trace's line 2 has vcpu=0 prev=${u64(-20n * E9)}, the emulation vcpu=1 prev=${u64(-19n * E9)}`,
    );
  });

  it('the final master clock: on in the capture, off or never updated in the emulation', () => {
    const off = compare(capture, [created, restored, masterClock(3, '3.0', true), masterClock(4, '3.1', false, false), pv], HZ);
    expect(off).toMatchObject({ agreedWrites: 2, masterClock: false, pvclock: false });
    expect(off.first).toMatchObject({ check: 'master_clock_final', index: null, fields: ['masterclock'], afterLine: null });
    expect([off.first!.trace!.line, off.first!.emulated!.line]).toEqual([4, 4]);
    expect(off.first!.message).toBe('the master clock ends on in the trace (line 4) and off in the emulation');
    const never = compare(capture, [created, restored, pv], HZ);
    expect(never.first).toMatchObject({ emulated: null, message: 'the master clock ends on in the trace (line 4) and is never updated in the emulation' });
  });

  it('the last pvclock scale: a difference keeps the master clock agreed; none in the emulation is missing', () => {
    // mul 0xaaaaaaab shift -1 is 3 GHz: (0xaaaaaaab / 2^32) / 2 = 1/3 ns a cycle
    const other = pvclock(4, '3.0', 0, { tscTimestamp: 1n, systemTime: 1n, mul: 0xaaaaaaab, shift: -1 });
    const r = compare(capture, [created, restored, mcOn, other], HZ);
    expect(r).toMatchObject({ agreedWrites: 2, masterClock: true, pvclock: false });
    expect(r.first).toMatchObject({ check: 'pvclock_final', fields: ['tscToSystemMul', 'tscShift'], trace: { line: 5 }, emulated: { line: 4 } });
    expect(r.first!.message).toBe("the last pvclock scale differs: the trace's line 5 has mul 0x80000000 shift 0, the emulation mul 0xaaaaaaab shift -1");
    const none = compare(capture, [created, restored, mcOn], HZ);
    expect(none.first).toMatchObject({ fields: ['missing'], emulated: null, message: 'the trace updates the pvclock (line 5), the emulation never does' });
  });
});

describe('tracepointText', () => {
  it('prints the clock events as their TP_printk does: the parser reads each back to the same fields', () => {
    const pv3 = pvclock(5, '1.0', 3, { tscTimestamp: 0xabcdefn, systemTime: 0x1234n, mul: 0x9c4b2c3a, shift: -1, flags: 3, version: 7 });
    const recs: TraceRecord[] = [restored, mcOn, pv3];
    for (const r of recs) {
      const back = parseTrace(` CPU 0/KVM-10 [000] 1.000000: ${tracepointText(r.fields)}`).records;
      expect(back.map((b) => b.fields)).toEqual([r.fields]);
    }
    expect(tracepointText(recs[2]!.fields)).toBe(
      'kvm_pvclock_update: vcpu_id 3, pvclock { version 7, tsc_timestamp 0xabcdef, system_time 0x1234, tsc_to_system_mul 0x9c4b2c3a, tsc_shift -1, flags 0x3 }',
    );
    expect(tracepointText(trackTsc(1, '1.0', 0, true).fields)).toBe('kvm_track_tsc');
  });
});
