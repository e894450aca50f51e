// The reader against real captures as they were posted (test/fixtures/traces/real-world, copied
// verbatim, sources in SOURCES.md) and against the layouts met in the wild that they do not cover:
// perf script lines, flags columns of 4 to 7 characters, email quoting, counter timestamps. Every
// line is accounted for; nothing is dropped without being counted.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_BODY_CHARS, parseTrace, TraceParseError, X86_TRACE_MAX_VCPU_IDS } from '../../machines/trace/parse.js';

const real = (name: string) => readFileSync(join(__dirname, '..', 'fixtures', 'traces', 'real-world', name), 'utf8');

function refusal(text: string): TraceParseError {
  try {
    parseTrace(text);
  } catch (e) {
    if (e instanceof TraceParseError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('real captures, as posted', () => {
  it('trace_pipe of a one-vCPU program (4-character flags, no header): the VM creation read, the exits counted by name', () => {
    const p = parseTrace(real('aout-kvm-example.trace'));
    expect(p.format).toBe('unknown');
    expect(p.lines).toEqual({ total: 29, read: 4, ignored: 25, header: 0, blank: 0, lostMarkers: 0, unreadable: 0, quoted: 0 });
    expect(p.readByEvent).toEqual({ kvm_update_master_clock: 2, kvm_write_tsc_offset: 1, kvm_track_tsc: 1 });
    expect(p.ignoredByEvent).toEqual({ kvm_fpu: 2, kvm_entry: 5, kvm_exit: 5, kvm_page_fault: 4, kvm_emulate_insn: 4, kvm_pio: 2, kvm_userspace_exit: 3 });
    expect(p.firstUnreadable).toBeNull();
    expect(p.records.map((r) => [r.line, r.task, r.pid, r.cpu, r.flags])).toEqual([
      [1, 'a.out', 20024, 1, '....'],
      [2, 'a.out', 20024, 1, 'd...'],
      [3, 'a.out', 20024, 1, '....'],
      [4, 'a.out', 20024, 1, '....'],
    ]);
    // the vCPU's creation write: next = −(host TSC) = 2^64 − 6 815 369 687 214 825
    expect(p.records[1]!).toMatchObject({ timestamp: '2323301.154551', timeNs: 2_323_301_154_551_000n });
    expect(p.records[1]!.fields).toEqual({ event: 'kvm_write_tsc_offset', vcpu: 0, prev: 0n, next: (1n << 64n) - 6_815_369_687_214_825n });
    expect(p.records[0]!.fields).toEqual({ event: 'kvm_update_master_clock', masterclock: false, hostclock: 'tsc', offsetMatched: false });
    expect(p.records[3]!.fields).toEqual({ event: 'kvm_update_master_clock', masterclock: true, hostclock: 'tsc', offsetMatched: true });
  });

  it('trace-cmd report -C x86-tsc: the timestamps are TSC counts (kept as printed, no ns), the task "<...>"', () => {
    const p = parseTrace(real('rftrace-merge-comment.trace'));
    expect(p.lines).toEqual({ total: 2, read: 1, ignored: 1, header: 0, blank: 0, lostMarkers: 0, unreadable: 0, quoted: 0 });
    expect(p.records[0]!).toMatchObject({ line: 1, task: '<...>', pid: 105662, tgid: null, cpu: 2, flags: null, timestamp: '117471684343752', timeNs: null });
    // (trace-cmd pads the event name: "kvm_exit:             reason ...")
    expect(p.ignoredByEvent).toEqual({ kvm_exit: 1 });
  });

  it('a tracefs trace file with its header: "CPU 5/KVM" writing IA32_TSC_DEADLINE, 5-character flags', () => {
    const p = parseTrace(real('openeuler-kvm-notes-tsc-deadline.trace'));
    expect(p.format).toBe('tracefs');
    expect(p.lines).toEqual({ total: 21, read: 9, ignored: 0, header: 12, blank: 0, lostMarkers: 0, unreadable: 0, quoted: 0 });
    expect(p.records[0]!).toMatchObject({ line: 13, task: 'CPU 5/KVM', pid: 2137779, cpu: 10, flags: 'd....', timeNs: 798_115_331_413_000n });
    // msr_write 6e0 = 0x81cba98c958c9
    expect(p.records[0]!.fields).toEqual({ event: 'kvm_msr', write: true, msr: 0x6e0, data: 2_283_387_566_512_329n, gp: false });
  });

  it('lines quoted in an email reply ("> "): read without the prefix, the quoted remarks counted as unreadable', () => {
    const p = parseTrace(real('lkml-2020-04-kagan-synic-msr.trace'));
    expect(p.lines).toEqual({ total: 13, read: 4, ignored: 6, header: 0, blank: 0, lostMarkers: 0, unreadable: 3, quoted: 13 });
    expect(p.firstUnreadable).toEqual({ line: 1, text: 'QEMU Default BIOS' });
    expect(p.ignoredByEvent).toEqual({ kvm_hv_synic_set_msr: 6 });
    // the task is QEMU's main thread, not "> qemu-system-x86"
    expect(new Set(p.records.map((r) => r.task))).toEqual(new Set(['qemu-system-x86']));
    expect(p.records.map((r) => [r.line, r.flags, r.fields])).toEqual([
      [8, '....', { event: 'kvm_msr', write: false, msr: 0x40000083, data: 0n, gp: false }],
      [10, '....', { event: 'kvm_msr', write: true, msr: 0x40000083, data: 0xfa1001n, gp: false }],
      [11, '....', { event: 'kvm_msr', write: false, msr: 0x40000083, data: 0xfa1001n, gp: false }],
      [13, '....', { event: 'kvm_msr', write: true, msr: 0x40000083, data: 0xfa1000n, gp: false }],
    ]);
  });

  it("trace lines with the author's prose between them: prose and blank lines counted, every event line read or ignored", () => {
    const p = parseTrace(real('lkml-2023-krause-cr0wp-msr.trace'));
    expect(p.lines).toEqual({ total: 30, read: 3, ignored: 16, header: 0, blank: 7, lostMarkers: 0, unreadable: 4, quoted: 0 });
    expect(p.firstUnreadable).toEqual({ line: 4, text: "Above is L2's init of CR4, still in secondary_startup_64()." });
    expect(p.ignoredByEvent).toEqual({ kvm_exit: 7, kvm_cr: 2, kvm_entry: 6, kvm_cpuid: 1 });
    // EFER read and written (0xd01), then TSC_AUX (MSR 0xc0000103) set to 1
    expect(p.records.map((r) => [r.line, r.fields])).toEqual([
      [11, { event: 'kvm_msr', write: false, msr: 0xc0000080, data: 0xd01n, gp: false }],
      [14, { event: 'kvm_msr', write: true, msr: 0xc0000080, data: 0xd01n, gp: false }],
      [28, { event: 'kvm_msr', write: true, msr: 0xc0000103, data: 1n, gp: false }],
    ]);
  });
});

describe('layouts of the wild', () => {
  const W = 'kvm_write_tsc_offset: vcpu=0 prev=0 next=5';

  it('perf script: TASK TID [CPU] TIME: kvm:EVENT:, TASK PID/TID, the system prefix, other systems counted by their full name', () => {
    const p = parseTrace(
      [
        '       CPU 0/KVM 1821753 [015] 4831258.258053: kvm:kvm_msr: msr_write 6e0 = 0x81cba98c958c9',
        '       CPU 0/KVM 1821700/1821753 [015] 4831258.258054: kvm:kvm_write_tsc_offset: vcpu=0 prev=0 next=5',
        // the same with a dash between task and pid, and perf --ns
        'CPU 0/KVM-1821753 [015] 4831258.258055123: kvm:kvm_msr: msr_read 10 = 0x5',
        ' qemu-system-x86 1821700 [003] 4831258.300000: sched:sched_switch: prev_comm=qemu-system-x86 prev_pid=1821700',
        '       CPU 0/KVM 1821753 [015] 4831258.300001: kvm:kvm_exit: vcpu 0 reason HLT',
        // a kvm event name under another system is not the kvm tracepoint
        '       CPU 0/KVM 1821753 [015] 4831258.300002: probe:kvm_msr: (ffffffffc0a1b2c3)',
      ].join('\n'),
    );
    expect(p.format).toBe('perf-script');
    expect(p.records.map((r) => [r.task, r.pid, r.tgid, r.cpu, r.timestamp, r.fields.event])).toEqual([
      ['CPU 0/KVM', 1821753, null, 15, '4831258.258053', 'kvm_msr'],
      ['CPU 0/KVM', 1821753, 1821700, 15, '4831258.258054', 'kvm_write_tsc_offset'],
      ['CPU 0/KVM', 1821753, null, 15, '4831258.258055123', 'kvm_msr'],
    ]);
    expect(p.records[2]!.timeNs).toBe(4_831_258_258_055_123n);
    expect(p.ignoredByEvent).toEqual({ 'sched:sched_switch': 1, kvm_exit: 1, 'probe:kvm_msr': 1 });
  });

  it('a flags column of 4 to 7 characters is read; 3 or 8 is not a trace line, and a known event in one is refused, naming its line', () => {
    for (const flags of ['d...', 'd..1.', 'dNh1.2', 'Dnh21.a']) {
      const p = parseTrace(`  CPU 0/KVM-77  (     70) [003] ${flags}  12.000001: ${W}`);
      expect(p.records[0]!).toMatchObject({ task: 'CPU 0/KVM', pid: 77, tgid: 70, cpu: 3, flags });
    }
    // an exit in an 8-character column: counted as unreadable, and the error says which line did not read
    const e = refusal('  CPU 0/KVM-77 [003] dNh21.ab  12.000001: kvm_exit: reason HLT');
    expect(e.message).toMatch(/^no trace event lines .*: the first line not read is line 1, " {2}CPU 0\/KVM-77 \[003\] dNh21\.ab/);
    expect(e.message).not.toMatch(/not a tracefs/);
    // a known event there: refused rather than dropped
    const three = refusal(`# tracer: nop\n  CPU 0/KVM-77 [003] d..  12.000001: ${W}`);
    expect(three.details).toEqual({ line: 2, event: 'kvm_write_tsc_offset' });
    expect(three.message).toMatch(/^line 2: kvm_write_tsc_offset: the line names a clock event read here but its columns do not read/);
  });

  it('email quoting of any depth ("> > ", ">>"), TGID dashes; a line without a task does not read', () => {
    const lines = [`> >  vcpu-9 [000] 1.0: ${W}`, `>> vcpu-9 [000] 1.5: ${W}`, `  vcpu-9 (-------) [000] 3.0: ${W}`, ' -9 [000] 4.0: kvm_exit: reason HLT'];
    const p = parseTrace(lines.join('\n'));
    expect(p.records.map((r) => [r.line, r.task, r.tgid])).toEqual([
      [1, 'vcpu', null],
      [2, 'vcpu', null],
      [3, 'vcpu', null],
    ]);
    expect(p.lines).toMatchObject({ read: 3, unreadable: 1, quoted: 2 });
    expect(p.firstUnreadable).toEqual({ line: 4, text: ' -9 [000] 4.0: kvm_exit: reason HLT' });
  });

  it('bounds every column and number before converting it, and refuses a known event past one (invalid_trace, its line)', () => {
    const at = (line: string) => refusal(`# tracer: nop\n${line}`);
    // a timestamp of 5 000 digits (a count of ns within 64 bits has at most 20)
    const t = at(` a-1 [000] ${'9'.repeat(5000)}.0: ${W}`);
    expect(t.details).toEqual({ line: 2, event: 'kvm_write_tsc_offset' });
    expect(t.message).toMatch(/^line 2: kvm_write_tsc_offset: timestamp 9{117}\.\.\. has more digits than a u64 count of ns/);
    expect(at(` a-1 [000] 1.0123456789: ${W}`).message).toMatch(/more digits/);
    // 18 446 744 073.709551616 s is 2^64 ns
    expect(at(` a-1 [000] 18446744073.709551616: ${W}`).message).toMatch(/timestamp is more ns than 64 bits hold/);
    expect(parseTrace(` a-1 [000] 18446744073.709551615: ${W}`).records[0]!.timeNs).toBe((1n << 64n) - 1n);
    // a counter timestamp past 64 bits
    expect(at(` a-1 [000] 18446744073709551616: ${W}`).message).toMatch(/timestamp does not fit in 64 bits/);
    // a million-digit next= is longer than any body the event prints
    const big = at(` a-1 [000] 1.0: kvm_write_tsc_offset: vcpu=0 prev=0 next=${'7'.repeat(1_000_000)}`);
    const bodyWhy = `a body of 1000019 characters, longer than any kvm_write_tsc_offset prints (${MAX_BODY_CHARS})`;
    expect(big.message.startsWith(`line 2: kvm_write_tsc_offset: ${bodyWhy}`)).toBe(true);
    expect(big.message.length).toBeLessThan(400);
    // 21 digits inside the bound: not converted, refused
    expect(at(` a-1 [000] 1.0: kvm_write_tsc_offset: vcpu=0 prev=0 next=${'1'.repeat(21)}`).message).toMatch(/next does not fit in 64 bits/);
    expect(at(` a-12345678901 [000] 1.0: ${W}`).message).toMatch(/pid 12345678901 out of range/);
    expect(at(` ${'t'.repeat(65)}-1 [000] 1.0: ${W}`).message).toMatch(/a task name of 65 characters/);
  });

  it('bounds vCPU ids by KVM_MAX_VCPU_IDS: x86 below 4096 × 4, arm64 below 512', () => {
    expect(X86_TRACE_MAX_VCPU_IDS).toBe(16384);
    const w = (id: string) => ` a-1 [000] 1.0: kvm_write_tsc_offset: vcpu=${id} prev=0 next=5`;
    expect(parseTrace(w('16383')).records[0]!.fields).toMatchObject({ vcpu: 16383 });
    for (const id of ['16384', '4294967295', '10000000']) {
      expect(refusal(w(id)).message).toMatch(new RegExp(`vcpu ${id} is not a vCPU id a host's KVM creates \\(KVM_MAX_VCPU_IDS is at most 16384\\)`));
    }
    const track = ' a-1 [000] 1.0: kvm_track_tsc: vcpu_id 16384 masterclock 1 offsetmatched 0 nr_online 1 hostclock tsc';
    expect(refusal(track).message).toMatch(/vcpu_id 16384 is not/);
    expect(parseTrace(' a-1 [000] 1.0: kvm_timer_update_irq: VCPU: 511, IRQ 27, level 1').records[0]!.fields).toMatchObject({ vcpu: 511 });
    expect(refusal(' a-1 [000] 1.0: kvm_timer_update_irq: VCPU: 512, IRQ 27, level 1').message).toMatch(/VCPU 512 is not a vCPU id .* at most 512/);
  });

  it('a lone "CPU:N [LOST M EVENTS]" marker and blank lines are counted; bounded digits in the marker', () => {
    const p = parseTrace(['', ` a-1 [000] 1.0: ${W}`, 'CPU:3 [LOST 42 EVENTS]', '   ', `CPU:3 [LOST ${'9'.repeat(21)} EVENTS]`].join('\n'));
    expect(p.lines).toEqual({ total: 5, read: 1, ignored: 0, header: 0, blank: 2, lostMarkers: 1, unreadable: 1, quoted: 0 });
    expect(p.lost).toEqual([{ line: 3, cpu: 3, events: 42 }]);
    expect(p.firstUnreadable!.line).toBe(5);
  });
});
