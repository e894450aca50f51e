// Conformance of the model to hand-written host captures (test/fixtures/traces, written from the
// kernel's TP_printk formats, not by the exporter): the emulated restore driven by the parameters
// each capture implies, compared write by write. The numbers are worked by hand in the comments.
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { renderConformance } from '../../handlers/cli/render/traces.js';
import { conformance, importTrace } from '../../handlers/use-cases/traces.js';
import { tempDir } from '../helpers/ledger.js';

const fixture = (name: string) => join(__dirname, '..', 'fixtures', 'traces', name);

let db: string;
beforeEach(() => {
  db = join(tempDir(), 'ledger.db');
});

const call = async (h: typeof conformance, req: Record<string, unknown>): Promise<any> => h(req, { db });
const ok = async (h: typeof conformance, req: Record<string, unknown>) => {
  const r = await call(h, req);
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r;
};

// ch-restore-offsets-differ.trace: the host TSC runs at 2 GHz from 0 (pvclock mul 0x80000000,
// shift 0); the four vCPUs are created at 4999.5 s (next = 2^64 − 9 999 000 000 000, lines
// 13-16); the VMM then writes guest TSC 10^12 to vCPU k at 5000.0 + 1.2k s (lines 24, 26, 28, 30):
// offset_k = 10^12 − (10^13 + 2.4×10^9·k).
const U64 = 1n << 64n;
const offsetOf = (signed: bigint) => (U64 + signed).toString();

describe('conformance', () => {
  // the capture (PR #8383, 2026-06-13) is of main between v52.0 and v53.0: with #8256, before #8437
  const PRE_SYNC = 'cloud-hypervisor@53+syncTscOffsets=false';

  it('the Cloud Hypervisor capture conforms to cloud-hypervisor@53 without the offset sync (offsets left per vCPU): every write to the cycle', async () => {
    await ok(importTrace, { path: fixture('ch-restore-offsets-differ.trace') });
    const r = await ok(conformance, { traceId: 't1', strategy: PRE_SYNC, profile: 'linux-6.18' });
    expect(r.conforms).toBe(true);
    expect(r.firstDifference).toBeNull();
    expect(r.strategy).toMatchObject({ spec: PRE_SYNC, release: '53.0', switches: { syncTscOffsets: false } });
    expect(r.parameters).toEqual({
      vcpus: 4,
      vcpuIds: [0, 1, 2, 3],
      guestTscHz: '2000000000',
      guestTscHzFrom: 'pvclock',
      // -next of line 13: 4999.5 s × 2×10^9
      hostTscAtCreation: '9999000000000',
      creationLine: 13,
      // line 24 at 5000.0 s, line 13 at 4999.5 s
      restoreGapNs: '500000000',
      // 9 999×10^9 + 0.5 s × 2×10^9 = 10^13 (5000.0 s × 2 GHz)
      hostTscAtFirstRestore: '10000000000000',
      // taken at line 24's own instant: next(24) + 10^13 = −9×10^12 + 10^13 = 10^12, the value the VMM
      // wrote (subtracting next(13) instead gave 999×10^9: low by the 0.5 s × 2 GHz between the writes)
      sourceTscAtSave: '1000000000000',
      firstRestoreLine: 24,
      writeSpacingNs: '1200000000',
      restoreWriteGapsNs: ['1200000000', '1200000000', '1200000000'],
      blackoutNs: '1000000',
      vmmLatencyNs: '0',
      notes: [],
    });
    expect(r.compared).toEqual({ traceWrites: 8, emulatedWrites: 8, agreedWrites: 8, masterClock: true, pvclock: true });
    // the emulated restore writes: the same offsets as lines 24-30, 1.2 s apart
    const writes = r.emulatedTrace.filter((l: string) => l.includes('kvm_write_tsc_offset') && !l.includes('prev=0 '));
    expect(writes.map((l: string) => /next=(\d+)/.exec(l)![1])).toEqual([0n, 1n, 2n, 3n].map((k) => offsetOf(-9_000_000_000_000n - 2_400_000_000n * k)));
    expect(renderConformance(r)).toMatch(/conforms: +yes/);
  });

  it('the bare cloud-hypervisor is 53.0: it does not conform either, at the same write as cloud-hypervisor@53', async () => {
    await ok(importTrace, { path: fixture('ch-restore-offsets-differ.trace') });
    const bare = await ok(conformance, { traceId: 't1', strategy: 'cloud-hypervisor', profile: 'linux-6.18' });
    const v53 = await ok(conformance, { traceId: 't1', strategy: 'cloud-hypervisor@53', profile: 'linux-6.18' });
    expect(bare.strategy).toEqual({
      spec: 'cloud-hypervisor',
      strategy: 'cloud-hypervisor',
      release: '53.0',
      switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true },
    });
    expect(bare.conforms).toBe(false);
    expect(bare.compared).toEqual({ traceWrites: 8, emulatedWrites: 12, agreedWrites: 8, masterClock: false, pvclock: false });
    expect(bare.firstDifference).toEqual(v53.firstDifference);
    expect(bare.emulatedTrace).toEqual(v53.emulatedTrace);
  });

  it("against cloud-hypervisor@53 (every vCPU set to vCPU 0's offset) it names the emulated write the host never made", async () => {
    await ok(importTrace, { path: fixture('ch-restore-offsets-differ.trace') });
    const r = await ok(conformance, { traceId: 't1', strategy: 'cloud-hypervisor@53', profile: 'linux-6.18' });
    expect(r.conforms).toBe(false);
    // the eight traced writes agree; the release then writes vCPU 0's offset (−9×10^12) to every vCPU,
    // starting with vCPU 0 itself (prev = next), where the host's master clock went off instead (line 32)
    expect(r.compared).toEqual({ traceWrites: 8, emulatedWrites: 12, agreedWrites: 8, masterClock: false, pvclock: false });
    const d = r.firstDifference;
    expect(d).toMatchObject({ check: 'kvm_write_tsc_offset', index: 9, fields: ['missing'], trace: null, afterLine: 30 });
    expect(d.emulated.text).toBe(`kvm_write_tsc_offset: vcpu=0 prev=${offsetOf(-9_000_000_000_000n)} next=${offsetOf(-9_000_000_000_000n)}`);
    // its line counts the emulated destination's lines (emulatedTrace): after the creation's master clock
    // update (1), the creation and restore writes with their kvm_track_tsc (16), the 9th write is line 18
    expect(d.emulated.line).toBe(18);
    expect(r.emulatedTrace[d.emulated.line - 1]).toContain(d.emulated.text);
    expect(d.traceNext).toEqual({
      line: 32,
      timestamp: '5003.700000',
      task: 'vcpu0',
      text: 'kvm_update_master_clock: masterclock 0 hostclock tsc offsetmatched 0',
    });
    const text = renderConformance(r);
    expect(text).toMatch(/conforms: +NO/);
    expect(text).toContain('first difference: TSC offset write 9 (missing)');
    expect(text).toMatch(/trace next +line 32 +5003\.700000 +vcpu0: kvm_update_master_clock: masterclock 0/);
    expect(text).toMatch(/emulated +line \d+ .*kvm_write_tsc_offset: vcpu=0 prev=18446735073709551616 next=18446735073709551616/);
  });

  it('a wrong guest TSC rate shows at the first write that depends on it: line 26, side by side', async () => {
    await ok(importTrace, { path: fixture('ch-restore-offsets-differ.trace') });
    const r = await ok(conformance, { traceId: 't1', strategy: PRE_SYNC, profile: 'linux-6.18', guestTscHz: '2500000000' });
    // creation and vCPU 0's restore are placed from the trace itself (lines 13 and 24), so they agree;
    // vCPU 1's write 1.2 s later moves the offset by 1.2 × 2.5×10^9 = 3×10^9 instead of 2.4×10^9:
    // emulated − trace = −600 000 000 cycles = −240 ms at 2.5 GHz
    expect(r.conforms).toBe(false);
    expect(r.compared.agreedWrites).toBe(5);
    expect(r.firstDifference).toMatchObject({
      check: 'kvm_write_tsc_offset',
      index: 6,
      fields: ['next'],
      afterLine: 24,
      nextDeltaCycles: '-600000000',
      nextDeltaNs: '-240000000',
      trace: {
        line: 26,
        timestamp: '5001.200000',
        task: 'vcpu1',
        text: `kvm_write_tsc_offset: vcpu=1 prev=${offsetOf(-9_999_000_000_000n)} next=${offsetOf(-9_002_400_000_000n)}`,
      },
      emulated: { text: `kvm_write_tsc_offset: vcpu=1 prev=${offsetOf(-9_999_000_000_000n)} next=${offsetOf(-9_003_000_000_000n)}` },
    });
    expect(renderConformance(r)).toMatch(/trace +line 26 +5001\.200000 +vcpu1: kvm_write_tsc_offset: vcpu=1/);
  });

  it('the healthy QEMU restore conforms to qemu: matched offsets, master clock on, the 3 GHz pvclock scale', async () => {
    await ok(importTrace, { path: fixture('qemu-restore-healthy.report') });
    const r = await ok(conformance, { traceId: 't1', strategy: 'qemu', profile: 'linux-6.18' });
    expect(r.conforms).toBe(true);
    // created at 7999.0 s at 3 GHz: host TSC 23 997×10^9 (line 5); the restore writes (lines 9-15, 20 µs
    // apart) all print next = 2^64 − 22 200 000 300 000; the first, 1.0001 s after the creation, at host
    // TSC 23 997×10^9 + 1.0001 × 3×10^9 = 24 000 000 300 000: it set guest TSC 1.8×10^12
    expect(r.parameters).toMatchObject({
      vcpus: 4,
      guestTscHz: '3000000000',
      hostTscAtCreation: '23997000000000',
      creationLine: 5,
      restoreGapNs: '1000100000',
      hostTscAtFirstRestore: '24000000300000',
      sourceTscAtSave: '1800000000000',
      firstRestoreLine: 9,
      writeSpacingNs: '20000',
    });
    expect(r.compared).toEqual({ traceWrites: 8, emulatedWrites: 8, agreedWrites: 8, masterClock: true, pvclock: true });
  });

  it('refuses what it cannot compare, with stable codes', async () => {
    expect((await call(conformance, { traceId: 't9', strategy: 'qemu', profile: 'linux-6.18' })).error.code).toBe('not_found');
    await ok(importTrace, { path: fixture('two-vms.trace') });
    const many = await call(conformance, { traceId: 't1', strategy: 'qemu', profile: 'linux-6.18' });
    expect(many.error).toMatchObject({ code: 'invalid_request', details: { field: 'vm', vms: ['4200', '4100'] } });
    expect((await call(conformance, { traceId: 't1', vm: 'nope', strategy: 'qemu', profile: 'linux-6.18' })).error.code).toBe('not_found');
    expect((await call(conformance, { traceId: 't1', vm: '4100', strategy: 'qemu@1.0', profile: 'linux-6.18' })).error.code).toBe('invalid_request');
    expect((await call(conformance, { traceId: 't1', vm: '4100', strategy: 'counter-offset', profile: 'linux-6.18' })).error.code).toBe('invalid_request');
    expect((await call(conformance, { traceId: 't1', vm: '4100', strategy: 'qemu', profile: 'linux-0.1' })).error.code).toBe('invalid_request');
    // a restore write that set a negative guest TSC: created at 1.0 s with host TSC 2×10^9 (next = −2×10^9),
    // the write at 2.0 s (host TSC 4×10^9) sets offset −5×10^9: guest TSC −10^9, no source reaches it
    const below = [
      '# tracer: nop',
      ' CPU 0/KVM-10 [000] 1.000000: kvm_write_tsc_offset: vcpu=0 prev=0 next=18446744071709551616',
      ' CPU 0/KVM-10 [000] 2.000000: kvm_write_tsc_offset: vcpu=0 prev=18446744071709551616 next=18446744068709551616',
    ];
    await ok(importTrace, { text: below, traceId: 'below' });
    const r = await call(conformance, { traceId: 'below', strategy: 'qemu', profile: 'linux-6.18', guestTscHz: '2000000000' });
    expect(r.error).toMatchObject({ code: 'invalid_request', details: { line: 3 } });
    expect(r.error.message).toBe(
      'line 3: the restore write sets guest TSC -1000000000 (offset -5000000000 at host TSC 4000000000, ' +
        '1000000000 ns after the creation write of line 2): the emulated source cannot save a negative guest TSC',
    );
  });

  it('emulates the vCPU ids present, not every id up to the largest: a two-line trace of vCPU 1023 (it exhausted the stack)', async () => {
    // created at 1.0 s with host TSC 2×10^9 (next = −2×10^9); at 2.0 s (host TSC 4×10^9) the VMM set
    // offset −10^9: guest TSC 3×10^9
    const lines = (id: number) => [
      ` CPU 0/KVM-10 [000] 1.000000: kvm_write_tsc_offset: vcpu=${id} prev=0 next=${offsetOf(-2_000_000_000n)}`,
      ` CPU 0/KVM-10 [000] 2.000000: kvm_write_tsc_offset: vcpu=${id} prev=${offsetOf(-2_000_000_000n)} next=${offsetOf(-1_000_000_000n)}`,
    ];
    await ok(importTrace, { text: lines(1023), traceId: 'v1023' });
    const r = await ok(conformance, { traceId: 'v1023', strategy: 'qemu', profile: 'linux-6.18', guestTscHz: '2000000000' });
    expect(r.parameters).toMatchObject({
      vcpus: 1,
      vcpuIds: [1023],
      restoreGapNs: '1000000000',
      hostTscAtFirstRestore: '4000000000',
      sourceTscAtSave: '3000000000',
    });
    expect(r.conforms).toBe(true);
    expect(r.compared).toMatchObject({ traceWrites: 2, emulatedWrites: 2, agreedWrites: 2 });
    expect(r.emulatedTrace.filter((l: string) => l.includes('kvm_write_tsc_offset')).every((l: string) => l.includes('vcpu=1023 '))).toBe(true);
    // an id the emulated kernel cannot create (KVM_MAX_VCPU_IDS 4096 at the default 1024 vCPUs) is refused up front
    await ok(importTrace, { text: lines(4096), traceId: 'v4096' });
    const e = (await call(conformance, { traceId: 'v4096', strategy: 'qemu', profile: 'linux-6.18', guestTscHz: '2000000000' })).error;
    expect(e).toMatchObject({ code: 'invalid_request', details: { vcpu: 4096, max: 4096 } });
    // and one no host's KVM creates is refused at import
    expect((await call(importTrace, { text: lines(4294967295) })).error.code).toBe('invalid_trace');
  });

  it('refuses guest TSC rates that divided by zero: 1 Hz asked, 0 Hz from a pvclock scale', async () => {
    await ok(importTrace, { path: fixture('ch-restore-offsets-differ.trace') });
    const one = (await call(conformance, { traceId: 't1', strategy: 'qemu', profile: 'linux-6.18', guestTscHz: 1 })).error;
    expect(one).toMatchObject({ code: 'invalid_request' });
    expect(one.message).toMatch(/1 Hz is not a plausible TSC rate/);
    // hvclock_to_hz() of mul 0x80000000, shift 100: a shift past 63 scales to 0 Hz
    const pv = [
      ' CPU 0/KVM-10 [000] 1.000000: kvm_write_tsc_offset: vcpu=0 prev=0 next=5',
      ' CPU 0/KVM-10 [000] 1.000001: kvm_pvclock_update: vcpu_id 0, pvclock { version 2, tsc_timestamp 0x1, system_time 0x1, ' +
        'tsc_to_system_mul 0x80000000, tsc_shift 100, flags 0x1 }',
    ];
    await ok(importTrace, { text: pv, traceId: 'pv0' });
    const zero = (await call(conformance, { traceId: 'pv0', strategy: 'qemu', profile: 'linux-6.18' })).error;
    expect(zero).toMatchObject({ code: 'invalid_request', details: { field: 'guestTscHz' } });
    expect(zero.message).toBe(
      'the last kvm_pvclock_update (line 2) gives a guest TSC rate of 0 Hz: ' +
        'the emulated hosts need at least 1000 Hz (KVM_SET_TSC_KHZ takes whole kHz); give guestTscHz',
    );
  });

  it('with counter timestamps (trace-cmd -C x86-tsc) the restore time is not known: written at the creation, and a note says so', async () => {
    const text = [
      ` CPU 0/KVM-10 [000] 1000: kvm_write_tsc_offset: vcpu=0 prev=0 next=${offsetOf(-2_000_000_000n)}`,
      ` CPU 0/KVM-10 [000] 5000: kvm_write_tsc_offset: vcpu=0 prev=${offsetOf(-2_000_000_000n)} next=${offsetOf(-1_000_000_000n)}`,
    ];
    await ok(importTrace, { text, traceId: 'tsc' });
    const r = await ok(conformance, { traceId: 'tsc', strategy: 'qemu', profile: 'linux-6.18', guestTscHz: '2000000000' });
    // the host TSC at the restore is taken as the creation's (2×10^9): guest TSC −10^9 + 2×10^9
    expect(r.parameters).toMatchObject({ restoreGapNs: '0', hostTscAtFirstRestore: '2000000000', sourceTscAtSave: '1000000000' });
    expect(r.parameters.notes).toHaveLength(1);
    expect(r.parameters.notes[0]).toMatch(/^the trace timestamps are counter ticks, not seconds: the host time between the creation write \(line 1\)/);
    expect(r.conforms).toBe(true);
  });

  it('a strategy that cannot run on the kernel answers conforms: false, naming the step and why (it answered internal)', async () => {
    // linux-5.15's KVM_GET_CLOCK gives flags 2 (KVM_CLOCK_TSC_STABLE) and never host_tsc/realtime
    // (KVM_CLOCK_HOST_TSC|KVM_CLOCK_REALTIME came with 5.16): every offset procedure stops at the
    // source's save, so the emulated destination never exists
    await ok(importTrace, { path: fixture('qemu-restore-healthy.report') });
    for (const strategy of ['offset-documented', 'offset-corrected', 'guest-wide-offset', 'clock-guest']) {
      const r = await call(conformance, { traceId: 't1', strategy, profile: 'linux-5.15' });
      expect(r.error, strategy).toBeUndefined();
      expect(r.conforms).toBe(false);
      expect(r.emulation.status).toBe('failed');
      expect(r.emulation.failure).toMatchObject({ step: 'save', ioctl: { name: 'KVM_GET_CLOCK', vm: 'source', vcpu: null, ret: 0, out: { flags: 2 } } });
      expect(r.emulation.failure.reason).toBe(
        'KVM_GET_CLOCK on the source gave flags 2 (KVM_CLOCK_TSC_STABLE: a master clock) without KVM_CLOCK_HOST_TSC|KVM_CLOCK_REALTIME, ' +
          'which the kernel reports only from Linux 5.16 and on a TSC clocksource: the offset procedure cannot pair the host TSC with realtime',
      );
      // nothing was emulated to compare: no write agreed, no final clock reached
      expect(r.compared).toEqual({ traceWrites: 8, emulatedWrites: 0, agreedWrites: 0, masterClock: false, pvclock: false });
      expect(r.emulatedTrace).toEqual([]);
      // the difference: the host restored the VM at line 9 (its first restore write), the emulated VMM failed
      const d = r.firstDifference;
      expect(d).toMatchObject({ check: 'emulation_failed', index: null, fields: ['status'], emulated: null, afterLine: null });
      expect(d.trace).toMatchObject({ line: 9, task: 'CPU 0/KVM' });
      const head = 'the emulated restore failed at its save step, where the host restored the VM \\(line 9\\): KVM_GET_CLOCK ';
      expect(d.message).toMatch(new RegExp(`^${head}.*\\. ${strategy}, as modelled, cannot restore this VM on linux-5\\.15$`));
      // for a person: the failure in words (it was labelled as a pvclock difference), the step and the ioctl it stood on
      const text = renderConformance(r);
      expect(text).toMatch(/^emulation: +FAILED at the save step on KVM_GET_CLOCK \(source, ret 0\)$/m);
      expect(text).toMatch(
        new RegExp(
          String.raw`^first difference: the emulated migration failed \(the strategy could not restore the VM on this kernel\)\n` +
            ' {2}the emulated restore failed at its save step',
          'm',
        ),
      );
      expect(text).toMatch(/^ +emulated +- +- +\(failed at its save step\)$/m);
      expect(text).not.toMatch(/pvclock scale \(status\)/);
    }
    // a strategy that runs there still conforms, and says its emulation completed
    const qemu = await ok(conformance, { traceId: 't1', strategy: 'qemu', profile: 'linux-5.15' });
    expect(qemu.conforms).toBe(true);
    expect(qemu.emulation).toEqual({ status: 'completed', failure: null });
    expect(renderConformance(qemu)).toMatch(/^emulation: +completed$/m);
  });
});
