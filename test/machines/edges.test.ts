// Edge cases found in review: concurrent writers and time order, the guest clearing
// PVCLOCK_GUEST_STOPPED, guests without kvmclock, bounds on time, VM-wide wall clock, ids.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeStores, storeFor } from '../../handlers/context.js';
import { rmSync } from 'node:fs';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { Session, withSession } from '../../machines/session.js';
import { clearRebuildCache } from '../../machines/rebuild.js';
import { expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock } from '../helpers/guest-setup.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => {
  expectMigrateAuditsFromLog(l);
  l.cleanup();
});

const S = 1_000_000_000n;
const codes = (a: { findings: { code: string; severity: string }[] }) => a.findings.map((f) => `${f.code}:${f.severity}`);

async function guest(vmId: string, vcpus = 1, kvmclock = true) {
  await l.ok('createHost', { hostId: 'h', tscKhz: 2_000_000 });
  await l.ok('createVm', { vmId, hostId: 'h', vcpus });
  await l.ok('runVcpu', { vmId });
  if (kvmclock) await registerKvmclock(l, vmId, vcpus);
  await l.ok('advanceTime', { ns: (2n * S).toString() });
}

describe('time order with two writers', () => {
  it('a session that read the time before another writer moved it is decided again, so times never go back in the log', async () => {
    await guest('a');
    // A second connection to the same file, as another process would have.
    const other = openEventStore(l.db);
    try {
      const a = new Session(storeFor({ db: l.db }), { handler: 'test' });
      a.vmCommand('a', { type: 'guest', vcpu: 0, op: 'rdtsc' }); // at t = 2 s, not committed yet
      clearRebuildCache();
      await withSession(
        other,
        { handler: 'other' },
        (s) => s.advanceTime(10n * S),
        () => ({}),
      );
      expect(() => a.commit()).toThrow(/ledger is at version/);
      clearRebuildCache();
      // Retried as withSession does, it is decided at the new time.
      await withSession(
        storeFor({ db: l.db }),
        { handler: 'test' },
        (s) => s.vmCommand('a', { type: 'guest', vcpu: 0, op: 'rdtsc' }),
        () => ({}),
      );
      const times = storeFor({ db: l.db })
        .read()
        .map((e) => e.time);
      expect(times).toEqual([...times].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
      expect(storeFor({ db: l.db }).read().at(-1)!.time).toBe(12n * S);
    } finally {
      other.close();
    }
  });

  it('refuses to advance time past the last instant the log can hold, writing nothing', async () => {
    await guest('a');
    const before = storeFor({ db: l.db }).lastPosition();
    const r = await l.call('advanceTime', { ns: '18446744073709551615' });
    expect(r.error.code).toBe('invalid_request');
    expect(storeFor({ db: l.db }).lastPosition()).toBe(before);
  });
});

describe('PVCLOCK_GUEST_STOPPED belongs to one resume', () => {
  it('the guest clears it, so a later 30 s pause without KVM_KVMCLOCK_CTRL is a soft-lockup risk again', async () => {
    await guest('a');
    const told = await l.ok('migrate', { vmId: 'a', inPlace: true, strategy: 'crosvm', blackoutNs: (30n * S).toString() });
    expect(codes(told.audit).filter((c: string) => c.startsWith('soft_lockup_risk'))).toEqual([]);
    const flags = (await l.ok('stateAt', { vmId: 'a' })).state.kvm.vcpus[0].pvti.flags;
    expect(flags & 2).toBe(0); // cleared by the guest's watchdog
    const untold = await l.ok('migrate', { vmId: 'a', inPlace: true, strategy: 'offset-documented', blackoutNs: (30n * S).toString() });
    expect(codes(untold.audit)).toContain('soft_lockup_risk:fail');
  });
});

describe('a refused in-place pause', () => {
  it('resumes the VM where it is: the VM is not torn down as if it were a destination', async () => {
    // 5.15's KVM_GET_CLOCK fills no (host_tsc, realtime) pair: the offset procedure stops at 'save'
    await l.ok('createHost', { hostId: 'old', tscKhz: 2_000_000, kernel: 'linux-5.15' });
    await l.ok('createVm', { vmId: 'a', hostId: 'old', vcpus: 2 });
    await l.ok('runVcpu', { vmId: 'a' });
    await l.ok('advanceTime', { ns: S.toString() });
    const r = await l.ok('migrate', { vmId: 'a', inPlace: true, strategy: 'offset-documented', blackoutNs: 300_000_000 });
    expect(r.status).toBe('failed');
    expect(r.audit.failure.step).toBe('save');
    const state = (await l.ok('stateAt', { vmId: 'a' })).state;
    expect(state.lifecycle).toBe('running');
    expect(state.kvm.vcpus.map((v: { running: boolean }) => v.running)).toEqual([true, true]);
    expect((await l.ok('events', { streamId: 'vm-a' })).events.map((e: { type: string }) => e.type)).not.toContain('VmDestroyed');
  });
});

describe('a guest that never enabled kvmclock', () => {
  it('is judged on its TSC alone: no kvmclock step, no watchdog prediction', async () => {
    await guest('a', 1, false);
    const r = await l.ok('migrate', { vmId: 'a', inPlace: true, strategy: 'qemu', blackoutNs: 300_000_000 });
    expect(r.audit.kvmclock).toEqual({ before: null, after: null, advanceNs: null, errorNs: null });
    expect(r.audit.kvmclockMinusTscStepNs).toBeNull();
    const c = codes(r.audit).map((x) => x.split(':')[0]);
    for (const code of ['kvmclock_tsc_step', 'watchdog_tsc_unstable', 'wall_clock_behind', 'kvmclock_lost_time']) expect(c).not.toContain(code);
  });
});

describe('ids and inputs', () => {
  it('automatic migration ids skip ids taken by explicit ones', async () => {
    await guest('a');
    await l.ok('createHost', { hostId: 'h2', tscKhz: 2_000_000 });
    const m2 = await l.ok('migrate', { vmId: 'a', toHost: 'h2', strategy: 'qemu', blackoutNs: 1000, migrationId: 'm2' });
    const next = await l.ok('migrate', { vmId: m2.newVmId, toHost: 'h', strategy: 'qemu', blackoutNs: 1000 });
    const third = await l.ok('migrate', { vmId: next.newVmId, toHost: 'h2', strategy: 'qemu', blackoutNs: 1000 });
    expect([m2.migrationId, next.migrationId, third.migrationId]).toEqual(['m2', 'm3', 'm4']);
  });

  it('automatic migration ids follow explicit ones taken meanwhile, and a log replaced under the same path starts again at m1', async () => {
    await guest('a');
    const first = await l.ok('migrate', { vmId: 'a', inPlace: true, strategy: 'qemu', blackoutNs: 1000 });
    await l.ok('migrate', { vmId: 'a', inPlace: true, strategy: 'qemu', blackoutNs: 1000, migrationId: 'm2' });
    const third = await l.ok('migrate', { vmId: 'a', inPlace: true, strategy: 'qemu', blackoutNs: 1000 });
    expect([first.migrationId, third.migrationId]).toEqual(['m1', 'm3']);
    // the same path, a new log
    closeStores();
    for (const f of [l.db, `${l.db}-wal`, `${l.db}-shm`]) rmSync(f, { force: true });
    clearRebuildCache();
    l.migrateAudits.length = 0;
    await guest('b');
    expect((await l.ok('migrate', { vmId: 'b', inPlace: true, strategy: 'qemu', blackoutNs: 1000 })).migrationId).toBe('m1');
  });

  it('a VM without vCPUs has no clock to migrate', async () => {
    await l.ok('createHost', { hostId: 'h', tscKhz: 2_000_000 });
    await l.ok('createVm', { vmId: 'empty', hostId: 'h', vcpus: 0 });
    const r = await l.call('migrate', { vmId: 'empty', toHost: 'h', strategy: 'qemu', blackoutNs: 1000 });
    expect(r.error.code).toBe('invalid_state');
  });

  it('stateAt: unknown streams and versions are not_found, an instant past 2^63 is invalid', async () => {
    await guest('a');
    expect((await l.call('stateAt', { streamId: 'foo' })).error.code).toBe('not_found');
    expect((await l.call('stateAt', { hostId: 'h', version: 999 })).error.code).toBe('not_found');
    expect((await l.call('stateAt', { vmId: 'a', time: '18446744073709551615' })).error).toMatchObject({ code: 'invalid_request' });
  });

  // kvm_get_wallclock(): a Linux guest writes MSR_KVM_WALL_CLOCK_NEW and reads the struct once, at
  // boot; its CLOCK_REALTIME runs on with kvmclock. KVM rewrites the struct at every write of the
  // MSR (kvm_write_wall_clock()), a VMM's host-initiated restore included: a same-host
  // cloud-hypervisor restore writes it on the new VM while that VM's kvmclock is still near 0
  // (before KVM_SET_CLOCK), so the struct then says the guest booted 670 s later than it did.
  it("wallclock is the guest's CLOCK_REALTIME across a same-host cloud-hypervisor restore, not the struct the restore wrote", async () => {
    await l.ok('createHost', { hostId: 'h', tscKhz: 2_400_000 });
    await l.ok('createVm', { vmId: 'g', hostId: 'h', vcpus: 2 });
    await l.ok('runVcpu', { vmId: 'g' });
    for (let v = 0; v < 2; v++) await l.ok('guest', { vmId: 'g', vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
    await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_WALL_CLOCK_NEW', value: 0x20000 });
    await l.ok('advanceTime', { ns: String(600n * S) });
    const m = await l.ok('migrate', { vmId: 'g', toHost: 'h', strategy: 'cloud-hypervisor', blackoutNs: String(70n * S) });
    // the audit's guest: CLOCK_REALTIME within a few ns of true time at the resume (kvmclock restored with KVM_CLOCK_REALTIME)
    expect(Math.abs(Number(m.audit.guest.wallClock.curve[1].errorNs))).toBeLessThan(10);
    // the restore rewrote the struct on the new VM: KVM_SET_MSRS with MSR_KVM_WALL_CLOCK_NEW, a host write
    const ev = (await l.ok('events', { streamId: `vm-${m.newVmId}` })).events;
    expect(ev.some((e: any) => e.data.ioctl === 'KVM_SET_MSRS' && e.data.arg.entries.some((x: any) => x.index === 0x4b564d00))).toBe(true);
    const now = BigInt((await l.ok('advanceTime', { ns: 0 })).now);
    const w = await l.ok('guest', { vmId: m.newVmId, vcpu: 0, op: 'wallclock' });
    // true time is 2026-01-01 (the hosts' realtime base) + now; the guest reads it to within what
    // kvmclock lost to pvclock's truncation since its boot read (tens of ns over 670 s), not 670 s ahead
    expect(Math.abs(Number(BigInt(w.value) - (1_767_225_600n * S + now)))).toBeLessThan(1000);
    // a host write of the MSR on the running VM changes the struct, not the guest's clock
    await l.ok('ioctl', { vmId: m.newVmId, vcpu: 0, ioctl: 'KVM_SET_MSRS', arg: { entries: [{ index: 'MSR_KVM_WALL_CLOCK_NEW', data: 0x20000 }] } });
    expect((await l.ok('guest', { vmId: m.newVmId, vcpu: 0, op: 'wallclock' })).value).toBe(w.value);
  });

  it('the KVM wall clock is one per VM: written through vCPU 0, read on vCPU 1', async () => {
    await guest('a', 2);
    await l.ok('guest', { vmId: 'a', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_WALL_CLOCK_NEW', value: 0x20000 });
    const w = await l.ok('guest', { vmId: 'a', vcpu: 1, op: 'wallclock' });
    // host realtime (2026-01-01 + 2 s) and the guest's wall clock agree
    expect(BigInt(w.value) - (1_767_225_600n * S + 2n * S)).toBeLessThanOrEqual(2n);
    const msrs = await l.ok('ioctl', { vmId: 'a', vcpu: 1, ioctl: 'KVM_GET_MSRS', arg: { indices: ['MSR_KVM_WALL_CLOCK_NEW'] } });
    expect(msrs.out.entries[0].data).toBe(String(0x20000));
  });
});

describe('arm64 counter drift', () => {
  it('a host counter 4 ppm fast is reported as frequency drift', async () => {
    await l.ok('createHost', { hostId: 'a', arch: 'arm64', cntfrqHz: '25000000', actualTscHz: '25000100' });
    await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'g' });
    const r = await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'qemu', blackoutNs: 1000, options: { kvmNoAdjvtime: true } });
    expect(r.audit.tscFrequency.driftPpb).toBe('4000');
    expect(codes(r.audit)).toContain('frequency_drift:warn');
  });
});

describe('profiles', () => {
  it('arm64-offset-v8 is a 5.15 kernel on x86 (the series was arm64-only)', async () => {
    await l.ok('createHost', { hostId: 'x', tscKhz: 2_000_000, kernel: 'arm64-offset-v8' });
    await l.ok('createVm', { vmId: 'v', hostId: 'x', vcpus: 1 });
    expect((await l.ok('ioctl', { vmId: 'v', ioctl: 'KVM_CHECK_EXTENSION', arg: 'KVM_CAP_ADJUST_CLOCK' })).ret).toBe(2);
  });
});
