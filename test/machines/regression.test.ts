// Replay-debugging clock regressions: a recorded log re-executed under another kernel profile
// must point at the first ioctl whose behaviour changed and say what it did to the guest.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getTimeScale, hvclockToHz, NSEC_PER_SEC, scaleTsc, tscScalingRatio } from '../../kvm/arith.js';
import { MSRS } from '../../kvm/uapi.js';
import { storeFor } from '../../handlers/context.js';
import { newLedger, tempDir, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock } from '../helpers/guest-setup.js';
import { join } from 'node:path';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

const big = (x: string) => BigInt(x);

async function guestWithKvmclock(vmId: string, hostId: string, vcpus: number, tscKhz?: number) {
  await l.ok('createVm', { vmId, hostId, vcpus, ...(tscKhz ? { tscKhz } : {}) });
  await l.ok('runVcpu', { vmId });
  await registerKvmclock(l, vmId, vcpus);
}

describe('young-guest TSC snap (linux-6.6 → linux-6.18)', () => {
  const youngGuest =
    'a guest younger than 1 s restored under 6.6 restarts its TSC near 0; under 6.18 ' +
    'the first divergence is the first host IA32_TSC write and the difference is the lost uptime';
  it(youngGuest, async () => {
    await l.ok('createHost', { hostId: 'a', tscKhz: 2_000_000, kernel: 'linux-6.6' });
    await l.ok('createHost', { hostId: 'b', tscKhz: 2_000_000, kernel: 'linux-6.6', initialTsc: '5000000000000' });
    await guestWithKvmclock('young', 'a', 2);
    await l.ok('advanceTime', { ns: 400_000_000 }); // 0.4 s of uptime
    const r = await l.ok('migrate', { vmId: 'young', toHost: 'b', strategy: 'firecracker', blackoutNs: 50_000_000, vmmLatencyNs: 0 });
    const recorded = r.audit;
    // Recorded under 6.6: the by-value write of ~0.4 s of cycles lands within 1 s of the vCPUs'
    // creation generation, so KVM snaps it to that generation: the guest TSC restarts near 0.
    const tscAfter = big(recorded.vcpus[0].tscAfter);
    expect(tscAfter).toBeLessThan(2_000_000n); // < 1 ms of cycles at 2 GHz
    expect(big(recorded.vcpus[0].tscBefore)).toBe(800_000_000n); // 0.4 s × 2 GHz

    const rp = await l.ok('replay', { profile: 'linux-6.18', migrationId: r.migrationId });
    expect(rp.diverged).toBe(true);
    const first = rp.firstDivergence;
    expect(first.ioctl).toBe('KVM_SET_MSRS');
    expect(first.vmId).toBe(r.newVmId);
    expect(first.step).toBe('restore');
    const ev = storeFor({ db: l.db }).read({ fromPosition: first.position, toPosition: first.position })[0]!;
    const entries = (ev.data as { arg: { entries: { index: number }[] } }).arg.entries;
    expect(entries[0]!.index).toBe(MSRS.MSR_IA32_TSC);
    // no earlier host write of IA32_TSC in the destination's log
    const earlier = storeFor({ db: l.db })
      .read({ streamId: `vm-${r.newVmId}`, toPosition: first.position - 1 })
      .filter((e) => e.type === 'IoctlIssued' && (e.data as { ioctl: string }).ioctl === 'KVM_SET_MSRS');
    expect(earlier).toHaveLength(0);
    // what changed: the written offset (tracepoint kvm_write_tsc_offset) with the same ret
    expect(first.recorded.result).toEqual(first.replayed.result);
    const offs = (o: { trace: { tp: string; next_tsc_offset?: string }[] }) =>
      o.trace.filter((t) => t.tp === 'kvm_write_tsc_offset').map((t) => t.next_tsc_offset);
    expect(offs(first.recorded)).not.toEqual(offs(first.replayed));
    // The audit difference is the lost uptime: 0.4 s of guest TSC.
    const mig = rp.byMigration[0];
    const delta = big(mig.difference.tscErrorNs[0].delta);
    expect(delta > 399_000_000n && delta <= 400_000_000n).toBe(true);
    expect(big(mig.audit.replayed.vcpus[0].tscAfter)).toBeGreaterThanOrEqual(800_000_000n);
  });
});

describe('kvmclock frequency under TSC scaling (linux-6.18 → clock-cleanup-v6)', () => {
  it('a 2.5 GHz guest on a 3 GHz VMX host: 2,499,999,000 vs 2,499,999,999 Hz, and the drift in ppm and ms/day', async () => {
    await l.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    await guestWithKvmclock('g', 'h', 1, 2_500_000);
    await l.ok('advanceTime', { ns: 1_000_000_000 });
    await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'kvmclock' });
    const rp = await l.ok('replay', { profile: 'clock-cleanup-v6', vmId: 'g' });
    expect(rp.diverged).toBe(true);
    const vm = rp.byVm.find((v: { vmId: string }) => v.vmId === 'g');
    // The guest TSC really ticks at scale(3e9 Hz) = 2,499,999,999 Hz (the ratio is floored).
    const ratio = tscScalingRatio(2_500_000n, 3_000_000n, 48);
    const tscHz = scaleTsc(3_000_000_000n, ratio, 48);
    expect(tscHz).toBe(2_499_999_999n);
    expect(big(vm.pvclock.recorded.guestTscHz)).toBe(tscHz);
    // mainline encodes the kHz-scaled 2,499,999 kHz; the proposal the Hz-scaled value
    const enc = (hz: bigint) => {
      const s = getTimeScale(NSEC_PER_SEC, hz);
      return hvclockToHz(s.mul, s.shift);
    };
    expect(big(vm.pvclock.recorded.frequencyHz)).toBe(enc(2_499_999_000n));
    expect(big(vm.pvclock.replayed.frequencyHz)).toBe(enc(2_499_999_999n));
    expect(Math.abs(Number(big(vm.pvclock.recorded.frequencyHz) - 2_499_999_000n))).toBeLessThanOrEqual(2);
    // kvmclock runs (2,499,999,999 − 2,499,999,000) / 2,499,999,000 ≈ 0.3996 ppm fast against the TSC: ~34.5 ms/day
    const ppb = Number(big(vm.pvclock.recorded.driftPpb));
    expect(ppb).toBeGreaterThan(398);
    expect(ppb).toBeLessThan(401);
    expect(Number(vm.pvclock.recorded.msPerDay)).toBeCloseTo(34.5, 0);
    expect(Math.abs(Number(big(vm.pvclock.replayed.driftPpb)))).toBeLessThanOrEqual(1);
  });
});

describe('KVM_VCPU_TSC_OFFSET under linux-5.15', () => {
  it('an offset-based migration diverges at the first attribute access and names the strategy step', async () => {
    await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
    await guestWithKvmclock('v', 'a', 2);
    await l.ok('advanceTime', { ns: 5_000_000_000 });
    const r = await l.ok('migrate', { vmId: 'v', toHost: 'b', strategy: 'offset-corrected', blackoutNs: 200_000_000 });
    expect(r.status).toBe('completed');
    const rp = await l.ok('replay', { profile: 'linux-5.15', migrationId: r.migrationId });
    // The procedure's first call already differs: 5.15's KVM_GET_CLOCK fills no realtime/host_tsc.
    const first = rp.firstDivergence;
    expect(first.ioctl).toBe('KVM_GET_CLOCK');
    expect(first.phase).toBe('saving');
    expect(first.recorded.result.out.flags).toBe(14);
    expect(first.replayed.result.out).toMatchObject({ flags: 2, realtime: '0', host_tsc: '0' });
    // The first call that fails outright is the first attribute access. 5.15 has no vCPU attribute
    // ioctls on x86: kvm_arch_vcpu_ioctl()'s default answers EINVAL.
    const attr = rp.divergences.find((d: { ioctl?: string }) => d.ioctl === 'KVM_GET_DEVICE_ATTR');
    expect(attr.recorded.result.ret).toBe(0);
    expect(attr.replayed.result).toEqual({ ret: -1, errno: 'EINVAL' });
    expect(rp.byMigration[0].failingStep).toMatchObject({ step: 'save', ioctl: 'KVM_GET_DEVICE_ATTR', vcpu: 0, errno: 'EINVAL' });
  });
});

describe('replay, diff and bisect', () => {
  async function recordSnapRestore(kernel: string) {
    await l.ok('createHost', { hostId: 'a', tscKhz: 2_000_000, kernel });
    await l.ok('createHost', { hostId: 'b', tscKhz: 2_000_000, kernel });
    await guestWithKvmclock('young', 'a', 2);
    await l.ok('advanceTime', { ns: 300_000_000 });
    return l.ok('migrate', { vmId: 'young', toHost: 'b', strategy: 'qemu', blackoutNs: 50_000_000 });
  }

  it('replaying under the recorded profile reports no divergence', async () => {
    await recordSnapRestore('linux-6.6');
    const rp = await l.ok('replay', { profile: 'linux-6.6' });
    expect(rp.divergenceCount).toBe(0);
    expect(rp.eventsReplayed).toBeGreaterThan(20);
  });

  it('bisect finds the first profile in order that diverges, and the behaviour switch responsible', async () => {
    await recordSnapRestore('linux-6.6');
    const b = await l.ok('bisect', { profiles: ['linux-6.6', 'linux-6.18', 'clock-cleanup-v6'], exhaustive: true });
    const diverged = b.probes.filter((p: { diverged: boolean }) => p.diverged).map((p: { profile: string }) => p.profile);
    expect(diverged).toEqual(['linux-6.18', 'clock-cleanup-v6']);
    expect(b.firstDivergent.profile).toBe('linux-6.18');
    // bisecting (not exhaustive) replays fewer profiles and finds the same one
    const fast = await l.ok('bisect', { profiles: ['linux-6.6', 'linux-6.18', 'clock-cleanup-v6'] });
    expect(fast.firstDivergent.profile).toBe('linux-6.18');
    const sw = await l.ok('bisect', { switches: true, profile: 'linux-6.18', base: 'linux-6.6' });
    expect(sw.culprits).toContain('x86.userSetTscGate');
  });

  it('diff of a log and its fork replayed elsewhere: same inputs, different results', async () => {
    const r = await recordSnapRestore('linux-6.6');
    // A second log with the same inputs recorded under linux-6.18.
    const other = newLedger();
    try {
      await other.ok('createHost', { hostId: 'a', tscKhz: 2_000_000, kernel: 'linux-6.18' });
      await other.ok('createHost', { hostId: 'b', tscKhz: 2_000_000, kernel: 'linux-6.18' });
      const o = other;
      await o.ok('createVm', { vmId: 'young', hostId: 'a', vcpus: 2 });
      await o.ok('runVcpu', { vmId: 'young' });
      for (let v = 0; v < 2; v++) await o.ok('guest', { vmId: 'young', vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10000 + 0x1000 * v + 1 });
      await o.ok('advanceTime', { ns: 300_000_000 });
      await o.ok('migrate', { vmId: 'young', toHost: 'b', strategy: 'qemu', blackoutNs: 50_000_000 });
      const d = await l.ok('diff', { otherDb: other.db });
      expect(d.onlyInA).toEqual([]);
      expect(d.differenceCount).toBeGreaterThan(0);
      // the kernel profile is not an input: every stream's inputs agree
      expect(d.inputsDiverge).toEqual([]);
      expect(d.firstDifference.streamId).toBe(`vm-${r.newVmId}`);
      expect(d.firstDifference.ioctl).toBe('KVM_SET_MSRS');
      // a fork of a log has the same results: no difference
      const forkDb = join(tempDir(), 'fork.db');
      await l.ok('fork', { position: storeFor({ db: l.db }).lastPosition(), targetDb: forkDb });
      const same = await l.ok('diff', { otherDb: forkDb });
      expect(same.differenceCount).toBe(0);
      expect(same.inputsDiverge).toEqual([]);
    } finally {
      other.cleanup();
    }
  });
});
