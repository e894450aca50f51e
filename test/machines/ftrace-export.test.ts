// The emulated tracepoints exported as `trace-cmd report` text: every line reads back through the
// importer (never an invalid_trace), and the trace audit of the export finds what the emulator
// holds: each destination vCPU's final TSC offset, and the master clock.
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores, storeFor } from '../../handlers/context.js';
import { rebuildStream } from '../../machines/rebuild.js';
import type { VmRecord } from '../../machines/vm/evolve.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(() => {
  closeStores();
  l?.cleanup();
});

describe('export --format ftrace', () => {
  it('a migration exported as trace-cmd report text imports and audits to the emulated offsets and master clock', async () => {
    l = newLedger();
    await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'web', hostId: 'src', vcpus: 2 });
    await l.ok('runVcpu', { vmId: 'web' });
    for (const vcpu of [0, 1]) await l.ok('guest', { vmId: 'web', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
    await l.ok('advanceTime', { ns: '5000000000' });
    await l.ok('migrate', { vmId: 'web', toHost: 'dst', strategy: 'cloud-hypervisor@52', blackoutNs: '300000000', writeSpacingNs: '1500000000' });
    const exported = await l.ok('exportTrace', { id: 'm1', format: 'ftrace' });
    const text = exported.trace as string;
    const lines = text.split('\n').filter((x) => x.includes(': kvm_'));
    expect(lines.length).toBeGreaterThan(10);
    // the kernel's TP_printk shapes, with QEMU-style thread names
    expect(text).toMatch(/^ +CPU 0\/KVM-\d+ \( +2000\) \[\d{3}\] +\d+\.\d{6}: kvm_write_tsc_offset: vcpu=0 prev=\d+ next=\d+$/m);

    const imported = await l.ok('importTrace', { text: text.split('\n'), vms: { '2000': 'web.m1' } });
    expect(imported.events).toBe(lines.length);
    const report = (await l.ok('auditTrace', { traceId: imported.traceId })).report;
    const dst = report.vms.find((v: any) => v.vm === 'web.m1');
    const rec = rebuildStream(storeFor({ db: l.db }), 'vm-web.m1').state as VmRecord;
    expect(dst.vcpus.map((v: any) => [v.vcpu, v.tscOffset])).toEqual(rec.x86!.vcpus.map((v) => [v.id, v.l1TscOffset.toString()]));
    // writes 1.5 s apart leave the offsets apart and the master clock off (Cloud Hypervisor before PR #8437)
    expect(rec.x86!.useMasterClock).toBe(false);
    expect(dst.masterClock.final).toBe(false);
    const [a, b] = rec.x86!.vcpus.map((v) => BigInt.asIntN(64, v.l1TscOffset));
    expect(BigInt(dst.tscOffsetSpreadCycles)).toBe(a! > b! ? a! - b! : b! - a!);
    expect(BigInt(dst.tscOffsetSpreadCycles)).toBeGreaterThan(0n);
  });

  it('exports a migration of any size: a 600-vCPU restore, over 150 000 tracepoint lines, as one file', { timeout: 120_000 }, async () => {
    // kvmclock on every vCPU: each destination vCPU's first KVM_RUN refreshes the pvclock of the
    // vCPUs running by then, so the destination's lines grow as n²/2; at 600 vCPUs they are beyond
    // what spreading them into push() could pass as arguments (the export answered internal before)
    const n = 600;
    l = newLedger();
    await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'big', hostId: 'src', vcpus: n });
    await l.ok('runVcpu', { vmId: 'big' });
    for (let vcpu = 0; vcpu < n; vcpu++) await l.ok('guest', { vmId: 'big', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
    await l.ok('advanceTime', { ns: '2000000000' });
    const m = await l.ok('migrate', { vmId: 'big', toHost: 'dst', strategy: 'qemu', blackoutNs: '1000000' });
    const r = await l.call('exportTrace', { id: m.migrationId, format: 'ftrace' });
    expect(r.error).toBeUndefined();
    const lines = (r.trace as string).split('\n').filter((x) => x.includes(': kvm_'));
    expect(lines.length).toBeGreaterThan(150_000);
    // every destination vCPU is written twice, in time order: at its creation (prev=0), then by QEMU's IA32_TSC restore
    const writes = lines.filter((x) => x.includes('(   2000)') && x.includes(': kvm_write_tsc_offset: '));
    expect(writes).toHaveLength(2 * n);
    const created = new Set(writes.filter((x) => / prev=0 /.test(x)).map((x) => /vcpu=(\d+)/.exec(x)![1]));
    expect(created.size).toBe(n);
    const stamps = lines.map((x) => Number(/ (\d+\.\d{6}): /.exec(x)![1]));
    expect(stamps.every((t, i) => i === 0 || t >= stamps[i - 1]!)).toBe(true);
  });
});
