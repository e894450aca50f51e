// Confidential guests with a protected TSC (createVm secureTsc: TDX always, SEV-SNP with Secure
// TSC). arch/x86/kvm/x86.c with guest_tsc_protected: kvm_vcpu_write_tsc_offset() and
// __kvm_synchronize_tsc() return early, so a host write of IA32_TSC and KVM_VCPU_TSC_OFFSET
// succeed and change nothing; a guest IA32_TSC write is skipped; the vCPU KVM_SET_TSC_KHZ is EINVAL
// and the frequency is the VM's (VM KVM_SET_TSC_KHZ before any vCPU). The offset is the
// platform's: here fixed at the first vCPU so the guest TSC reads 0 then. Numbers at 3 GHz.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectReplayEqualsLive, newLedger, type Ledger } from '../helpers/ledger.js';

const S = 1_000_000_000;
const EINVAL = { ret: -1, errno: 'EINVAL' };
let l: Ledger;
beforeEach(async () => {
  l = newLedger();
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
});
afterEach(() => l.cleanup());

const ioctl = async (vcpu: number | null, name: string, arg?: unknown) => {
  const r = await l.ok('ioctl', { vmId: 'g', ...(vcpu === null ? {} : { vcpu }), ioctl: name, ...(arg === undefined ? {} : { arg }) });
  return { ret: r.ret, ...(r.errno ? { errno: r.errno } : {}), ...(r.out ? { out: r.out } : {}) };
};
const rdtsc = async (vcpu = 0) => BigInt((await l.ok('guest', { vmId: 'g', vcpu, op: 'rdtsc' })).value);

describe('createVm secureTsc: the kernel side', () => {
  it('refused on arm64 (x86 only)', async () => {
    await l.ok('createHost', { hostId: 'arm', arch: 'arm64', cntfrqHz: '25000000' });
    const r = await l.call('createVm', { vmId: 'g', hostId: 'arm', secureTsc: true });
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
  });

  it('the VM-wide kHz before the vCPUs; then vCPU KVM_SET_TSC_KHZ is EINVAL, and the VM ioctl too (vCPUs exist)', async () => {
    await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 2, secureTsc: true, tscKhz: 2_500_000 });
    expect(await ioctl(0, 'KVM_GET_TSC_KHZ')).toEqual({ ret: 2_500_000 });
    expect(await ioctl(0, 'KVM_SET_TSC_KHZ', 3_000_000)).toEqual(EINVAL);
    expect(await ioctl(null, 'KVM_SET_TSC_KHZ', 3_000_000)).toEqual(EINVAL);
    expect(await ioctl(0, 'KVM_GET_TSC_KHZ')).toEqual({ ret: 2_500_000 });
  });

  it('IA32_TSC and KVM_VCPU_TSC_OFFSET writes succeed and leave the guest TSC alone: 2 s × 3 GHz = 6e9 after them', async () => {
    await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 1, secureTsc: true });
    await l.ok('runVcpu', { vmId: 'g' });
    await l.ok('advanceTime', { ns: 2 * S });
    expect(await rdtsc()).toBe(6_000_000_000n);
    await l.ok('pauseVcpu', { vmId: 'g' });
    const offset = (await ioctl(0, 'KVM_GET_DEVICE_ATTR', { group: 0, attr: 0 })).out!.value;
    // host write of IA32_TSC: kvm_synchronize_tsc() → __kvm_synchronize_tsc() returns early; ret = 1 MSR processed
    expect(await ioctl(0, 'KVM_SET_MSRS', { entries: [{ index: 'MSR_IA32_TSC', data: '42' }] })).toEqual({ ret: 1 });
    // KVM_VCPU_TSC_OFFSET: kvm_arch_tsc_set_attr() → __kvm_synchronize_tsc() returns early; ret 0
    expect(await ioctl(0, 'KVM_SET_DEVICE_ATTR', { group: 0, attr: 0, value: '12345' })).toEqual({ ret: 0 });
    // a guest write of IA32_TSC is skipped too (kvm_set_msr_common: !guest_tsc_protected)
    await l.ok('runVcpu', { vmId: 'g' });
    await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC', value: 7 });
    expect(await rdtsc()).toBe(6_000_000_000n);
    expect((await ioctl(0, 'KVM_GET_DEVICE_ATTR', { group: 0, attr: 0 })).out!.value).toBe(offset);
    expect((await ioctl(0, 'KVM_GET_MSRS', { indices: ['MSR_IA32_TSC_ADJUST'] })).out).toEqual({ entries: [{ index: 0x3b, data: '0' }] });
    expectReplayEqualsLive(l);
  });

  it('without secureTsc the same writes take effect (the baseline): IA32_TSC 42 is read back as 42', async () => {
    await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 1 });
    await l.ok('advanceTime', { ns: 2 * S });
    expect(await ioctl(0, 'KVM_SET_MSRS', { entries: [{ index: 'MSR_IA32_TSC', data: '42' }] })).toEqual({ ret: 1 });
    await l.ok('runVcpu', { vmId: 'g' });
    expect(await rdtsc()).toBe(42n);
  });
});

describe('what each strategy family can do to a secureTsc guest (2 vCPUs, 2 s up, 1 s blackout, a → b at 3 GHz)', () => {
  const migrate = async (strategy: string) => {
    await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 2, secureTsc: true });
    await l.ok('runVcpu', { vmId: 'g' });
    for (const v of [0, 1]) await l.ok('guest', { vmId: 'g', vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
    await l.ok('advanceTime', { ns: 2 * S });
    return l.ok('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs: S, vmmLatencyNs: 0 });
  };
  const codes = (a: { findings: { code: string }[] }) => a.findings.map((f) => f.code);

  it.each(['qemu', 'firecracker', 'crosvm'])(
    'by value (%s): completes, its IA32_TSC writes are ignored, the guest TSC restarts at 0 on the new VM: 6e9 → 0, 3 s lost',
    async (strategy) => {
      const r = await migrate(strategy);
      expect(r.status).toBe('completed');
      expect(r.audit.vcpus.map((v: { tscBefore: string; tscAfter: string; tscErrorNs: string }) => [v.tscBefore, v.tscAfter, v.tscErrorNs])).toEqual([
        ['6000000000', '0', '-3000000000'],
        ['6000000000', '0', '-3000000000'],
      ]);
      expect(codes(r.audit)).toEqual(expect.arrayContaining(['tsc_writes_ignored', 'time_backwards', 'tsc_lost_time']));
      const f = r.audit.findings.find((x: { code: string }) => x.code === 'tsc_writes_ignored');
      expect(f.message).toContain('2 TSC write(s)');
      expect(f.positions).toHaveLength(2);
      expectReplayEqualsLive(l);
    },
  );

  it('cloud-hypervisor (kHz per vCPU): refused at restore, KVM_SET_TSC_KHZ on vCPU 0 is EINVAL; the source resumes, its TSC intact (9e9 at 3 s)', async () => {
    const r = await migrate('cloud-hypervisor');
    expect(r.status).toBe('failed');
    expect(r.audit.failure.reason).toBe('KVM_SET_TSC_KHZ on vCPU 0 failed with EINVAL');
    expect(r.audit.vcpus[0]).toMatchObject({ tscBefore: '6000000000', tscAfter: '9000000000', tscErrorNs: '0' });
    expect(codes(r.audit)).toEqual(['migration_failed']);
  });

  it.each(['offset-documented', 'offset-corrected', 'guest-wide-offset', 'clock-guest'])(
    'offset procedures (%s): refused at save, no master clock (the protected TSC never joins a generation), nothing written',
    async (strategy) => {
      const r = await migrate(strategy);
      expect(r.status).toBe('failed');
      expect(r.audit.failure.step).toBe('save');
      expect(r.audit.failure.reason).toContain('no master clock');
      expect(r.audit.masterClock.before).toBe(false);
    },
  );
});
