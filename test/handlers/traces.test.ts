// Importing host traces and auditing them, through the handlers, on captures written by hand from
// the kernel's TP_printk formats. Every number below is worked by hand in the comments.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { auditTrace, importTrace } from '../../handlers/use-cases/traces.js';
import { clearRebuildCache, rebuildAll } from '../../machines/rebuild.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { tempDir } from '../helpers/ledger.js';

const fixture = (name: string) => join(__dirname, '..', 'fixtures', 'traces', name);
const realWorld = (name: string) => fixture(join('real-world', name));

let db: string;
beforeEach(() => {
  db = join(tempDir(), 'ledger.db');
});

const call = async (h: typeof importTrace, req: Record<string, unknown>) => (await h(req, { db })) as Record<string, any>;
const ok = async (h: typeof importTrace, req: Record<string, unknown>) => {
  const r = await call(h, req);
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r;
};

describe('importTrace', () => {
  it('records every known tracepoint as an observed event of a trace stream, in one commit', async () => {
    const r = await ok(importTrace, { path: fixture('ch-restore-offsets-differ.trace') });
    expect(r).toMatchObject({ ok: true, traceId: 't1', events: 23, ignored: 3, format: 'tracefs' });
    expect(r.vms).toEqual([{ vm: '7700', pids: [7700, 7701, 7702, 7703, 7704], tgid: 7700 }]);
    const store = openEventStore(db);
    try {
      const evs = store.read({ streamId: 'trace-t1' });
      expect(evs).toHaveLength(24);
      expect(evs[0]!.type).toBe('TraceImported');
      const w = evs.find((e) => (e.data as any).line === 30)!;
      expect(w.type).toBe('TracepointObserved');
      expect(w.data).toEqual({
        cpu: 5,
        event: 'kvm_write_tsc_offset',
        fields: { next: '18446735066509551616', prev: '18446734074709551616', vcpu: 3 },
        flags: '.....',
        line: 30,
        pid: 7704,
        task: 'vcpu3',
        tgid: 7700,
        timeNs: '5003600000000',
        timestamp: '5003.600000',
        vm: '7700',
      });
      // one transaction: the trace's events are consecutive positions
      expect(evs.at(-1)!.position - evs[0]!.position).toBe(23);
    } finally {
      store.close();
    }
    // the next import gets the next id
    expect((await ok(importTrace, { path: fixture('qemu-restore-healthy.report') })).traceId).toBe('t2');
  });

  it('refuses a malformed known event with invalid_trace naming its line, and writes nothing', async () => {
    const r = await call(importTrace, { path: fixture('ch-restore-malformed.trace') });
    expect(r.ok).toBe(false);
    expect(r.error.code).toBe('invalid_trace');
    expect(r.error.details).toEqual({ line: 26, event: 'kvm_write_tsc_offset' });
    const store = openEventStore(db);
    try {
      expect(store.lastPosition()).toBe(0);
    } finally {
      store.close();
    }
  });

  it('is idempotent by requestId, and the log stays whole: verified, rebuilt by the full pass', async () => {
    const first = await ok(importTrace, { path: fixture('two-vms.trace'), requestId: 'imp-1' });
    const again = await ok(importTrace, { path: fixture('two-vms.trace'), requestId: 'imp-1' });
    expect(again).toEqual(first);
    const store = openEventStore(db);
    try {
      expect(store.streams('trace-')).toEqual(['trace-t1']);
      expect(store.verify().intact).toBe(true);
      clearRebuildCache();
      const t = rebuildAll(store).get('trace-t1')!;
      // 11 tracepoints after the TraceImported event
      expect(t.version).toBe(12);
      expect(t.state).toMatchObject({ traceId: 't1', format: 'tracefs', observed: 11, ignored: 1, vms: ['4200', '4100'] });
    } finally {
      store.close();
    }
  });

  it('takes the capture as text or as an array of lines, and refuses a trace id taken', async () => {
    const lines = ['# tracer: nop', ' CPU 0/KVM-10 [000] 1.000000: kvm_write_tsc_offset: vcpu=0 prev=0 next=5'];
    expect(await ok(importTrace, { text: lines.join('\n'), traceId: 'a' })).toMatchObject({ traceId: 'a', events: 1, ignored: 0 });
    expect(await ok(importTrace, { text: lines, traceId: 'b' })).toMatchObject({ traceId: 'b', events: 1 });
    const again = await call(importTrace, { text: lines, traceId: 'a' });
    expect(again.error.code).toBe('conflict');
    expect((await call(importTrace, { text: 'x', path: 'y' })).error.code).toBe('invalid_request');
    expect((await call(importTrace, { path: fixture('no-such.trace') })).error.code).toBe('io');
  });
});

describe('importTrace: an account of every line', () => {
  it('answers what it read and ignored by event, the other lines by kind, and the first line it could not read; the log keeps it', async () => {
    const r = await ok(importTrace, { path: realWorld('lkml-2023-krause-cr0wp-msr.trace') });
    expect(r).toMatchObject({ traceId: 't1', events: 3, ignored: 16, format: 'unknown' });
    expect(r.readByEvent).toEqual({ kvm_msr: 3 });
    expect(r.ignoredByEvent).toEqual({ kvm_exit: 7, kvm_cr: 2, kvm_entry: 6, kvm_cpuid: 1 });
    expect(r.lines).toEqual({ total: 30, read: 3, ignored: 16, header: 0, blank: 7, lostMarkers: 0, unreadable: 4, quoted: 0 });
    expect(r.firstUnreadable).toEqual({ line: 4, text: "Above is L2's init of CR4, still in secondary_startup_64()." });
    expect(r.lost).toEqual([]);
    const store = openEventStore(db);
    try {
      const head = store.read({ streamId: 'trace-t1' })[0]!.data as Record<string, unknown>;
      expect(head).toMatchObject({ readByEvent: r.readByEvent, lines: r.lines, firstUnreadable: r.firstUnreadable });
    } finally {
      store.close();
    }
  });

  it('imports perf script output with its kvm: prefix, and email-quoted lines without the quote in the task', async () => {
    const perf = [
      '       CPU 0/KVM 1821753 [015] 4831258.258053: kvm:kvm_msr: msr_write 6e0 = 0x81cba98c958c9',
      '       CPU 0/KVM 1821753 [015] 4831258.258060: kvm:kvm_exit: reason HLT',
    ];
    const r = await ok(importTrace, { text: perf });
    expect(r).toMatchObject({ events: 1, ignored: 1, format: 'perf-script', readByEvent: { kvm_msr: 1 }, ignoredByEvent: { kvm_exit: 1 } });
    const q = await ok(importTrace, { path: realWorld('lkml-2020-04-kagan-synic-msr.trace') });
    expect(q).toMatchObject({ events: 4, ignored: 6, lines: { quoted: 13, unreadable: 3 }, firstUnreadable: { line: 1, text: 'QEMU Default BIOS' } });
    const store = openEventStore(db);
    try {
      const tasks = store
        .read({ streamId: `trace-${q.traceId}` })
        .slice(1)
        .map((e) => (e.data as { task: string }).task);
      expect(new Set(tasks)).toEqual(new Set(['qemu-system-x86']));
    } finally {
      store.close();
    }
  });

  it('a capture no line of which reads says which line it could not read (invalid_trace), and writes nothing', async () => {
    const r = await call(importTrace, { text: ['  CPU 0/KVM-77 [003] dNh21.ab  12.000001: kvm_exit: reason HLT'] });
    expect(r.error.code).toBe('invalid_trace');
    expect(r.error.message).toContain('the first line not read is line 1');
    expect(r.error.details).toEqual({ line: 1 });
    const store = openEventStore(db);
    try {
      expect(store.lastPosition()).toBe(0);
    } finally {
      store.close();
    }
  });
});

describe('auditTrace', () => {
  it('Cloud Hypervisor restore: four offsets 1.2 s of writes apart, master clock lost, kvmclock stepped', async () => {
    await ok(importTrace, { path: fixture('ch-restore-offsets-differ.trace') });
    const { report } = await ok(auditTrace, { traceId: 't1' });
    expect(report.vms).toHaveLength(1);
    const vm = report.vms[0];
    // pvclock mul 0x80000000, shift 0: hvclock_to_hz: ctz(mul) = 31, mul >> 31 = 1, shift 0 + 2 + 31 = 33,
    // (10^9 << 34) / 1 >> 33 = 2 * 10^9 Hz
    expect(vm.pvclock).toMatchObject({ frequencyHz: '2000000000', tscToSystemMul: 0x80000000, tscShift: 0, line: 36, updates: 8 });
    expect(vm.guestTscHz).toBe('2000000000');
    expect(vm.guestTscHzFrom).toBe('pvclock');
    // The VMM wrote guest TSC 10^12 to vCPU k at 5000.0 + 1.2k s; host TSC = t × 2×10^9, so
    // offset_k = 10^12 − (10^13 + 2.4×10^9·k): −9 000 000 000 000 − 2 400 000 000·k (u64: 2^64 + that).
    expect(vm.vcpus).toEqual([
      { vcpu: 0, tscOffset: '18446735073709551616', tscOffsetSigned: '-9000000000000', tscOffsetNs: '-4500000000000', writes: 2, line: 24 },
      { vcpu: 1, tscOffset: '18446735071309551616', tscOffsetSigned: '-9002400000000', tscOffsetNs: '-4501200000000', writes: 2, line: 26 },
      { vcpu: 2, tscOffset: '18446735068909551616', tscOffsetSigned: '-9004800000000', tscOffsetNs: '-4502400000000', writes: 2, line: 28 },
      { vcpu: 3, tscOffset: '18446735066509551616', tscOffsetSigned: '-9007200000000', tscOffsetNs: '-4503600000000', writes: 2, line: 30 },
    ]);
    // max − min = −9.0000e12 − (−9.0072e12) = 7 200 000 000 cycles = 3.6 s at 2 GHz
    expect(vm.tscOffsetSpreadCycles).toBe('7200000000');
    expect(vm.tscOffsetSpreadNs).toBe('3600000000');
    // spacing: creation writes 10 µs apart; vCPU 0's restore write 5000.0 − 4999.50003 = 0.49997 s after
    // the last (inside the window); the next three 1.2 s apart (outside)
    expect(vm.tscOffsetWrites.map((w: any) => [w.line, w.sincePreviousNs, w.withinSyncWindow])).toEqual([
      [13, null, null],
      [14, '10000', true],
      [15, '10000', true],
      [16, '10000', true],
      [24, '499970000', true],
      [26, '1200000000', false],
      [28, '1200000000', false],
      [30, '1200000000', false],
    ]);
    expect(vm.tscMsrWrites).toEqual([]);
    const transitions = [{ line: 32, from: true, to: false }];
    expect(vm.masterClock).toEqual({ final: false, finalLine: 32, updates: 2, transitions, creationLine: null, beforeVcpus: 0 });
    // steps against the guest TSC, from the 4999.7 updates (tsc 4×10^8, system_time 2×10^8 ns) to the
    // 5003.8 ones (system_time 503.8 s for all): vCPU k's TSC reads 1 007 600 000 000 − 2.4×10^9·k,
    // so Δsystem_time − Δtsc/2 = 503 600 000 000 − (503 600 000 000 − 1.2×10^9·k) = 1.2 s × k
    expect(vm.pvclock.systemTimeSteps).toEqual([
      { vcpu: 0, line: 33, previousLine: 18, stepNs: '0' },
      { vcpu: 1, line: 34, previousLine: 19, stepNs: '1200000000' },
      { vcpu: 2, line: 35, previousLine: 20, stepNs: '2400000000' },
      { vcpu: 3, line: 36, previousLine: 21, stepNs: '3600000000' },
    ]);
    expect(vm.pvclock.stableBitFlips).toEqual([33, 34, 35, 36].map((line, vcpu) => ({ vcpu, line, stable: false })));
    expect(vm.findings.map((f: any) => [f.code, f.severity, f.lines])).toEqual([
      ['tsc_offsets_differ', 'fail', [24, 26, 28, 30]],
      ['tsc_write_outside_sync_window', 'warn', [24, 26, 28, 30]],
      ['master_clock_lost', 'fail', [32]],
      ['pvclock_tsc_stable_cleared', 'warn', [33, 34, 35, 36]],
      ['pvclock_time_step', 'warn', [19, 34, 20, 35, 21, 36]],
    ]);
    expect(vm.findings[0].message).toContain('differ by 7200000000 cycles (3600000000 ns at 2000000000 Hz)');
  });

  it('healthy QEMU restore (trace-cmd report): matched offsets, master clock on, no findings', async () => {
    await ok(importTrace, { path: fixture('qemu-restore-healthy.report'), traceId: 'qemu' });
    const { report } = await ok(auditTrace, { traceId: 'qemu' });
    expect(report).toMatchObject({ traceId: 'qemu', format: 'trace-cmd', events: 17 });
    const vm = report.vms[0];
    expect(vm.vm).toBe('vm');
    // mul 0xaaaaaaaa, shift −1: ctz = 1, mul >> 1 = 0x55555555 = 1 431 655 765, shift −1 + 2 + 1 = 2;
    // (10^9 << 34) / 1 431 655 765 = 12 000 000 002 (1 431 655 765 × 12 = 17 179 869 180, rest 4×10^9),
    // >> 2 = 3 000 000 000 Hz
    expect(vm.pvclock.frequencyHz).toBe('3000000000');
    // every restore write took the offset of the first: 1.8×10^12 − 8000.0001 s × 3×10^9 = −22 200 000 300 000
    expect(vm.vcpus.map((v: any) => [v.vcpu, v.tscOffset, v.tscOffsetNs])).toEqual(
      // −22 200 000 300 000 cycles / 3 GHz = −7 400 000 100 000 ns
      [0, 1, 2, 3].map((k) => [k, '18446721873709251616', '-7400000100000']),
    );
    expect(vm.tscOffsetSpreadCycles).toBe('0');
    expect(vm.tscOffsetSpreadNs).toBe('0');
    // restore writes 20 µs apart
    expect(vm.tscOffsetWrites.slice(5).map((w: any) => w.sincePreviousNs)).toEqual(['20000', '20000', '20000']);
    expect(vm.masterClock).toEqual({ final: true, finalLine: 17, updates: 1, transitions: [], creationLine: null, beforeVcpus: 0 });
    expect(vm.pvclock.systemTimeSteps).toEqual([]);
    expect(vm.findings).toEqual([]);
  });

  it('two VMs in one capture: told apart by the VMM pid, or named by the user', async () => {
    const r = await ok(importTrace, { path: fixture('two-vms.trace'), vms: { '4100': 'web', '4200': 'db' } });
    expect(r).toMatchObject({ events: 11, ignored: 1 });
    expect(r.vms).toEqual([
      { vm: 'db', pids: [4201, 4202], tgid: 4200 },
      { vm: 'web', pids: [4101, 4102], tgid: 4100 },
    ]);
    // db has no pvclock update: its frequency comes from the request
    const { report } = await ok(auditTrace, { traceId: r.traceId, guestTscHz: '2000000000' });
    const db = report.vms.find((v: any) => v.vm === 'db');
    const web = report.vms.find((v: any) => v.vm === 'web');
    expect(db.guestTscHzFrom).toBe('request');
    // −200×10^9 and −203×10^9: 3×10^9 cycles apart, 1.5 s at 2 GHz
    expect(db.vcpus.map((v: any) => v.tscOffsetSigned)).toEqual(['-200000000000', '-203000000000']);
    expect(db.tscOffsetSpreadCycles).toBe('3000000000');
    expect(db.tscOffsetSpreadNs).toBe('1500000000');
    // the guest's MSR_IA32_TSC writes (value 10^9), 101.500001 − 100.000001 = 1.5 s apart
    expect(db.tscMsrWrites.map((w: any) => [w.line, w.value, w.sincePreviousNs, w.withinSyncWindow])).toEqual([
      [9, '1000000000', null, null],
      [16, '1000000000', '1500000000', false],
    ]);
    expect(db.masterClock.transitions).toEqual([{ line: 17, from: true, to: false }]);
    expect(db.findings.map((f: any) => [f.code, f.lines])).toEqual([
      ['tsc_offsets_differ', [8, 15]],
      ['tsc_write_outside_sync_window', [8, 15]],
      ['master_clock_lost', [17]],
    ]);
    expect(web.vcpus.map((v: any) => v.tscOffset)).toEqual(['18446744063709551616', '18446744063709551616']);
    expect(web.pvclock.frequencyHz).toBe('2000000000');
    expect(web.masterClock.final).toBe(true);
    expect(web.findings).toEqual([]);

    // without a map, each VM is named after its VMM's pid
    const plain = await ok(importTrace, { path: fixture('two-vms.trace') });
    expect(plain.vms.map((v: any) => v.vm)).toEqual(['4200', '4100']);
    // without a frequency, offsets stay in cycles
    const a = (await ok(auditTrace, { traceId: plain.traceId })).report.vms[0];
    expect(a).toMatchObject({ vm: '4200', guestTscHz: null, tscOffsetSpreadCycles: '3000000000', tscOffsetSpreadNs: null });
  });

  it('a capture that dropped events says so in every VM it audits, citing the lost-event line', async () => {
    const text = [
      '# tracer: nop',
      ' CPU 0/KVM-10 [000] 1.000000: kvm_write_tsc_offset: vcpu=0 prev=0 next=5',
      'CPU:1 [LOST 120 EVENTS]',
      ' CPU 1/KVM-11 [001] 1.000001: kvm_write_tsc_offset: vcpu=1 prev=0 next=5',
    ];
    const r = await ok(importTrace, { text });
    expect(r).toMatchObject({ events: 2, ignored: 0 });
    const { report } = await ok(auditTrace, { traceId: r.traceId });
    expect(report.lost).toEqual([{ line: 3, cpu: 1, events: 120 }]);
    expect(report.vms[0].findings).toEqual([{ code: 'events_lost', severity: 'warn', message: expect.stringContaining('dropped 120 event(s)'), lines: [3] }]);
  });

  it("the VM's creation (masterclock 0 offsetmatched 0 before any vCPU) then masterclock 1: on at the end, the creation shown, no finding", async () => {
    const r = await ok(importTrace, { path: realWorld('aout-kvm-example.trace') });
    const vm = (await ok(auditTrace, { traceId: r.traceId })).report.vms[0];
    // line 1: the creation's update; line 2: vCPU 0's creation write (prev=0); line 4: masterclock 1
    const transitions = [{ line: 4, from: false, to: true }];
    expect(vm.masterClock).toEqual({ final: true, finalLine: 4, updates: 2, transitions, creationLine: 1, beforeVcpus: 1 });
    // 2^64 − 18 439 928 704 022 336 791 = 6 815 369 687 214 825 cycles of host TSC at the creation
    expect(vm.vcpus).toEqual([{ vcpu: 0, tscOffset: '18439928704022336791', tscOffsetSigned: '-6815369687214825', tscOffsetNs: null, writes: 1, line: 2 }]);
    expect(vm.findings).toEqual([]);
  });

  it('a trace that ends before the master clock is evaluated with vCPUs says so (info), not that it is off', async () => {
    // the first three lines of the same capture: created, vCPU 0 created, no update after
    const aout = await ok(importTrace, { text: readFileSync(realWorld('aout-kvm-example.trace'), 'utf8').split('\n').slice(0, 3) });
    const vm = (await ok(auditTrace, { traceId: aout.traceId })).report.vms[0];
    expect(vm.masterClock).toMatchObject({ final: false, finalLine: 1, creationLine: 1, beforeVcpus: 1 });
    expect(vm.findings.map((f: any) => [f.code, f.severity, f.lines])).toEqual([['master_clock_before_vcpus', 'info', [1]]]);
    expect(vm.findings[0].message).toContain('which the trace shows at line 1');
    // trace-cmd -C x86-tsc: a lone update, no vCPU at all: the creation cannot be told
    const rf = await ok(importTrace, { path: realWorld('rftrace-merge-comment.trace') });
    const v2 = (await ok(auditTrace, { traceId: rf.traceId })).report.vms[0];
    expect(v2.masterClock).toMatchObject({ final: false, creationLine: null, beforeVcpus: 1 });
    expect(v2.findings.map((f: any) => f.code)).toEqual(['master_clock_before_vcpus']);
    // off again once the vCPUs exist, and never on: master_clock_off, citing that update, not the creation
    const off = await ok(importTrace, {
      text: [
        ' a-1 [000] 1.000000: kvm_update_master_clock: masterclock 0 hostclock tsc offsetmatched 0',
        ' a-1 [000] 1.000100: kvm_write_tsc_offset: vcpu=0 prev=0 next=5',
        ' a-1 [000] 1.000200: kvm_write_tsc_offset: vcpu=1 prev=0 next=9',
        ' a-1 [000] 1.000300: kvm_update_master_clock: masterclock 0 hostclock tsc offsetmatched 0',
      ],
    });
    const v3 = (await ok(auditTrace, { traceId: off.traceId })).report.vms[0];
    expect(v3.masterClock).toMatchObject({ final: false, creationLine: 1, beforeVcpus: 1 });
    expect(v3.findings.find((f: any) => f.code === 'master_clock_off')).toMatchObject({ severity: 'warn', lines: [4] });
  });

  it('refuses a guest TSC rate of 0 or 1 Hz as a request error (it divided by zero)', async () => {
    const r = await ok(importTrace, { path: fixture('two-vms.trace') });
    for (const guestTscHz of ['0', 1]) {
      const e = (await call(auditTrace, { traceId: r.traceId, guestTscHz })).error;
      expect(e.code).toBe('invalid_request');
      expect(e.message).toMatch(/Hz is not a plausible TSC rate/);
    }
  });

  it('answers not_found for a trace the log does not hold', async () => {
    await ok(importTrace, { text: ' a-1 [000] 1.0: kvm_write_tsc_offset: vcpu=0 prev=0 next=1' });
    const r = await call(auditTrace, { traceId: 'nope' });
    expect(r.error.code).toBe('not_found');
  });
});
