// The ftrace reader against captures written by hand from the kernel's TP_printk formats
// (arch/x86/kvm/trace.h, arch/arm64/kvm/trace_arm.h): header lines, task names with spaces, the
// flags and TGID columns present and absent, other events counted, malformed known events refused.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toSortedJson } from '../../machines/codec.js';
import { parseTrace, TraceParseError } from '../../machines/trace/parse.js';
import { traceRecordOf, tracepointData } from '../../machines/trace/state.js';

const fixture = (name: string) => readFileSync(join(__dirname, '..', 'fixtures', 'traces', name), 'utf8');

function refusal(text: string): TraceParseError {
  try {
    parseTrace(text);
  } catch (e) {
    if (e instanceof TraceParseError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('parseTrace', () => {
  it('reads a tracefs trace with TGID and flags columns (Cloud Hypervisor restore)', () => {
    const p = parseTrace(fixture('ch-restore-offsets-differ.trace'));
    expect(p.format).toBe('tracefs');
    expect(p.lines.header).toBe(12);
    // lines 22, 23 and 38 are kvm_entry / kvm_exit: counted, not read
    expect(p.ignored).toBe(3);
    expect(p.ignoredByEvent).toEqual({ kvm_entry: 2, kvm_exit: 1 });
    expect(p.records).toHaveLength(23);
    const w = p.records.find((r) => r.line === 26)!;
    expect(w).toMatchObject({ task: 'vcpu1', pid: 7702, tgid: 7700, cpu: 3, flags: '.....', timestamp: '5001.200000', timeNs: 5_001_200_000_000n });
    expect(w.fields).toEqual({ event: 'kvm_write_tsc_offset', vcpu: 1, prev: 18446734074709551616n, next: 18446735071309551616n });
    const mc = p.records.find((r) => r.line === 32)!;
    expect(mc.fields).toEqual({ event: 'kvm_update_master_clock', masterclock: false, hostclock: 'tsc', offsetMatched: false });
    // "offsetmatched" of kvm_track_tsc prints nr_vcpus_matched_tsc
    expect(p.records.find((r) => r.line === 31)!.fields).toEqual({
      event: 'kvm_track_tsc',
      vcpu: 3,
      masterclock: true,
      nrVcpusMatchedTsc: 0,
      nrOnline: 4,
      hostclock: 'tsc',
    });
    expect(p.records.find((r) => r.line === 36)!.fields).toEqual({
      event: 'kvm_pvclock_update',
      vcpu: 3,
      version: 4,
      tscTimestamp: 1_000_400_000_000n,
      systemTime: 503_800_000_000n,
      tscToSystemMul: 0x80000000,
      tscShift: 0,
      flags: 0,
    });
    expect(p.records.find((r) => r.line === 37)!.fields).toEqual({ event: 'kvm_msr', write: false, msr: 0x10, data: 0xeaa5916100n, gp: false });
  });

  it("reads trace-cmd report output: no flags or TGID column, QEMU's 'CPU n/KVM' task names, padded event names", () => {
    const p = parseTrace(fixture('qemu-restore-healthy.report'));
    expect(p.format).toBe('trace-cmd');
    expect(p.lines.header).toBe(4);
    expect(p.ignored).toBe(2);
    expect(p.records).toHaveLength(17);
    const r = p.records.find((x) => x.line === 10)!;
    expect(r).toMatchObject({ task: 'CPU 0/KVM', pid: 31337, tgid: null, cpu: 2, flags: null, timeNs: 8_000_000_101_000n });
    expect(r.fields).toMatchObject({ event: 'kvm_track_tsc', vcpu: 0, nrVcpusMatchedTsc: 0 });
    expect(p.records.find((x) => x.line === 18)!.fields).toMatchObject({ tscToSystemMul: 0xaaaaaaaa, tscShift: -1, flags: 1 });
    expect(p.records[0]!).toMatchObject({ task: 'qemu-system-x86', pid: 31300, line: 5 });
  });

  it('reads the msr_write form with its (#GP) suffix, arm64 timer events and counter-clock timestamps', () => {
    const text = [
      '  vcpu0-9-900 [001] d..1. 123456789012: kvm_msr: msr_write 10 = 0x3b9aca00 (#GP)',
      '  CPU 0/KVM-77 [000] 10.5: kvm_timer_update_irq: VCPU: 0, IRQ 27, level 1',
      '  CPU 0/KVM-77 [000] 10.500001: kvm_timer_save_state:    CTL: 0x000005 CVAL:     0x1f4a3b2c arch_timer_ctx_index: 0',
      '  CPU 0/KVM-77 [000] 10.500002: kvm_timer_restore_state: CTL: 0x000001 CVAL:              0x0 arch_timer_ctx_index: 1',
    ].join('\n');
    const p = parseTrace(text);
    // (a task name with a dash and digits of its own: the pid is the last -N before the CPU column)
    expect(p.records[0]!).toMatchObject({ task: 'vcpu0-9', pid: 900, timestamp: '123456789012', timeNs: null });
    expect(p.records[0]!.fields).toEqual({ event: 'kvm_msr', write: true, msr: 0x10, data: 1_000_000_000n, gp: true });
    expect(p.records[1]!).toMatchObject({ timeNs: 10_500_000_000n });
    expect(p.records[1]!.fields).toEqual({ event: 'kvm_timer_update_irq', vcpu: 0, irq: 27, level: 1 });
    expect(p.records[2]!.fields).toEqual({ event: 'kvm_timer_save_state', ctl: 5n, cval: 0x1f4a3b2cn, timerIndex: 0 });
    expect(p.records[3]!.fields).toEqual({ event: 'kvm_timer_restore_state', ctl: 1n, cval: 0n, timerIndex: 1 });
  });

  it("stores each record in the log's canonical key order (it is appended as canonical)", () => {
    for (const r of parseTrace(fixture('ch-restore-offsets-differ.trace')).records) {
      const d = tracepointData(r, '7700');
      expect(JSON.stringify(d)).toBe(JSON.stringify(toSortedJson(d)));
    }
  });

  it('reads each stored record back as the parser gave it, u64 fields as bigint (every event read, through JSON as the log keeps it)', () => {
    const captures = ['ch-restore-offsets-differ.trace', 'qemu-arm64-timers.trace', 'real-world/lkml-2023-krause-cr0wp-msr.trace'];
    const records = captures.flatMap((name) => parseTrace(fixture(name)).records);
    expect(new Set(records.map((r) => r.fields.event)).size).toBe(11);
    for (const r of records) expect(traceRecordOf(JSON.parse(JSON.stringify(tracepointData(r, '7700'))))).toEqual(r);
  });

  it('refuses a malformed line of a known event with invalid_trace, naming its line', () => {
    const e = refusal(fixture('ch-restore-malformed.trace'));
    expect(e.code).toBe('invalid_trace');
    expect(e.details).toEqual({ line: 26, event: 'kvm_write_tsc_offset' });
    expect(e.message).toMatch(/^line 26: kvm_write_tsc_offset: does not read as the kernel's TP_printk/);
  });

  it('refuses values a field cannot hold, and text with no event line at all', () => {
    // 2^64 does not fit the __u64 next_tsc_offset
    expect(refusal('  a-1 [000] 1.0: kvm_write_tsc_offset: vcpu=0 prev=0 next=18446744073709551616').message).toMatch(
      /^line 1: kvm_write_tsc_offset: next does not fit in 64 bits/,
    );
    // a bool printed with %d is 0 or 1
    expect(refusal('# tracer: nop\n  a-1 [000] 1.0: kvm_update_master_clock: masterclock 2 hostclock tsc offsetmatched 1').details).toEqual({
      line: 2,
      event: 'kvm_update_master_clock',
    });
    // the tsc_shift is an s8
    expect(
      refusal(
        '  a-1 [000] 1.0: kvm_pvclock_update: vcpu_id 0, pvclock { version 2, tsc_timestamp ' +
          '0x1, system_time 0x1, tsc_to_system_mul 0x80000000, tsc_shift 200, flags 0x1 }',
      ).message,
    ).toMatch(/tsc_shift 200 out of range/);
    expect(refusal('hello\nworld\n').message).toMatch(/no trace event lines/);
  });
});
