// arm64 guests through the same log, machines and audit: the QEMU pause modes, Cloud
// Hypervisor's snapshot rule, the pre-6.4 VM-wide last writer, KVM_ARM_SET_COUNTER_OFFSET
// ignoring later writes, and a 6.4+ log replayed as a pre-6.4 kernel. Numbers at 25 MHz.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { expectReplayEqualsLive, newLedger, type Ledger } from '../helpers/ledger.js';

const HZ = 25_000_000n;
const S = 1_000_000_000n;
const big = (x: string) => BigInt(x);
const codes = (a: { findings: { code: string }[] }) => a.findings.map((f) => f.code);

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

async function arm64Host(hostId: string, extra: Record<string, unknown> = {}) {
  await l.ok('createHost', { hostId, arch: 'arm64', cntfrqHz: HZ.toString(), initialTsc: '1000000000', ...extra });
}

async function runningGuest(vmId: string, hostId: string, vcpus = 2, age = 5n * S) {
  await l.ok('createVm', { vmId, hostId, vcpus });
  await l.ok('runVcpu', { vmId });
  await l.ok('advanceTime', { ns: age.toString() });
}

describe('QEMU pausing a 25 MHz guest for 10 s on one host', () => {
  beforeEach(() => arm64Host('h'));

  it('default (adjvtime): the virtual counter stands still and drifts 2.5e8 ticks from the physical one', async () => {
    await runningGuest('g', 'h');
    const r = await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'qemu', blackoutNs: (10n * S).toString(), vmmLatencyNs: 0 });
    const a = r.audit;
    expect(r.status).toBe('completed');
    expect(big(a.trueElapsedNs)).toBe(10n * S);
    for (const v of a.vcpus) {
      expect(big(v.tscAdvance)).toBe(0n); // written back to its value at the stop
      expect(big(v.tscErrorCycles)).toBe(-250_000_000n); // 10 s × 25 MHz
    }
    for (const p of a.arm64.physical) expect(big(p.advance)).toBe(250_000_000n);
    expect(big(a.arm64.virtualMinusPhysical.after) - big(a.arm64.virtualMinusPhysical.before)).toBe(-250_000_000n);
    expect(codes(a)).toEqual(expect.arrayContaining(['counter_lost_time', 'counter_divergence']));
    expect(codes(a)).not.toContain('soft_lockup_risk');
    expectReplayEqualsLive(l);
  });

  it('kvm-no-adjvtime: the counter keeps running and jumps by the pause; past 20 s that is a soft lockup', async () => {
    await runningGuest('g', 'h');
    const r = await l.ok('migrate', {
      vmId: 'g',
      inPlace: true,
      strategy: 'qemu',
      blackoutNs: (10n * S).toString(),
      vmmLatencyNs: 0,
      options: { kvmNoAdjvtime: true },
    });
    for (const v of r.audit.vcpus) {
      expect(big(v.tscAdvance)).toBe(250_000_000n); // the guest sees 10 s pass at once
      expect(big(v.tscErrorCycles)).toBe(0n);
    }
    expect(big(r.audit.arm64.virtualMinusPhysical.after)).toBe(big(r.audit.arm64.virtualMinusPhysical.before));
    expect(codes(r.audit)).not.toContain('soft_lockup_risk');
    // no QEMU ioctl touched the counter during the pause
    const evs = storeFor({ db: l.db })
      .read({ streamId: 'vm-g' })
      .filter((e) => (e.data as { ioctl?: string }).ioctl === 'KVM_SET_ONE_REG');
    expect(evs).toHaveLength(0);
    const long = await l.ok('migrate', {
      vmId: 'g',
      inPlace: true,
      strategy: 'qemu',
      blackoutNs: (30n * S).toString(),
      vmmLatencyNs: 0,
      options: { kvmNoAdjvtime: true },
    });
    expect(long.audit.findings.find((f: { code: string }) => f.code === 'soft_lockup_risk')).toMatchObject({ severity: 'fail' });
  });
});

describe("Cloud Hypervisor's snapshot rule: CNTVCT = saved + elapsed × CNTFRQ", () => {
  it('a 60 s snapshot restore advances the counter by 1.5e9 ticks', async () => {
    await arm64Host('a');
    await arm64Host('b', { initialTsc: '77777777777' });
    await runningGuest('g', 'a');
    const r = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'cloud-hypervisor', blackoutNs: (60n * S).toString(), vmmLatencyNs: 0 });
    expect(r.status).toBe('completed');
    for (const v of r.audit.vcpus) {
      expect(big(v.tscAdvance)).toBe(1_500_000_000n);
      expect(big(v.tscErrorCycles)).toBe(0n);
    }
    // on 6.4+ the VM-wide offset exists: Cloud Hypervisor writes vCPU 0 only
    const writes = storeFor({ db: l.db })
      .read({ streamId: `vm-${r.newVmId}` })
      .filter((e) => (e.data as { ioctl?: string }).ioctl === 'KVM_SET_ONE_REG');
    expect(writes.map((e) => (e.data as { vcpu: number }).vcpu)).toEqual([0]);
    expectReplayEqualsLive(l);
  });

  it('is refused when the destination CNTFRQ differs; the source resumes untouched', async () => {
    await arm64Host('a');
    await l.ok('createHost', { hostId: 'ghz', arch: 'arm64', cntfrqHz: '1000000000' });
    await runningGuest('g', 'a');
    const r = await l.ok('migrate', { vmId: 'g', toHost: 'ghz', strategy: 'cloud-hypervisor', blackoutNs: (60n * S).toString() });
    expect(r.status).toBe('failed');
    expect(r.audit.failure).toMatchObject({ step: 'restore' });
    expect(r.audit.failure.reason).toContain('CNTFRQ (1000000000 Hz) differs');
    expect((await l.ok('stateAt', { vmId: 'g' })).state.lifecycle).toBe('running');
    for (const v of r.audit.vcpus) expect(big(v.tscErrorCycles)).toBe(0n);
  });
});

describe('before 6.4: a counter write on any vCPU sets the whole VM (last writer wins)', () => {
  it('QEMU restoring per-vCPU values read 1 ms apart ends with every vCPU on the last value', async () => {
    await arm64Host('a', { kernel: 'linux-6.1' });
    await arm64Host('b', { kernel: 'linux-6.1' });
    await runningGuest('g', 'a');
    const r = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'qemu', blackoutNs: (1n * S).toString(), vmmLatencyNs: 0, readSpacingNs: 1_000_000 });
    const store = storeFor({ db: l.db });
    // the values QEMU read at the stop: vCPU 1's is 1 ms (25,000 ticks) later
    const reads = store
      .read({ streamId: 'vm-g' })
      .filter((e) => (e.data as { ioctl?: string }).ioctl === 'KVM_GET_ONE_REG')
      .map((e) => big((e.data as { out: { value: string } }).out.value));
    expect(reads[1]! - reads[0]!).toBe(25_000n);
    const a = r.audit;
    // At the stop both vCPUs read the one VM-wide counter (reads[0]); after the restore both read
    // the value written last, vCPU 1's, which was read 1 ms later.
    expect(a.vcpus.map((v: { tscBefore: string }) => big(v.tscBefore))).toEqual([reads[0]!, reads[0]!]);
    expect(a.vcpus.map((v: { tscAfter: string }) => big(v.tscAfter))).toEqual([reads[1]!, reads[1]!]);
    expectReplayEqualsLive(l);
  });
});

describe('6.4+: KVM_ARM_SET_COUNTER_OFFSET and the writes that come after it', () => {
  beforeEach(async () => {
    await arm64Host('a');
    await arm64Host('b', { ecv: false });
  });

  it('crosvm sets the VM-wide offset; a later QEMU pause writes TIMER_CNT, silently ignored, and the audit flags it', async () => {
    await runningGuest('g', 'a');
    const m = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'crosvm', blackoutNs: (2n * S).toString(), vmmLatencyNs: 0 });
    expect(m.status).toBe('completed');
    // the counter resumes where it stopped: crosvm excludes the suspension
    for (const v of m.audit.vcpus) expect(big(v.tscAdvance)).toBe(0n);
    // without ECV the now-offset physical counter traps on every guest read
    expect(m.audit.arm64.physTrapping).toBe(true);
    expect(m.audit.arm64.trappedPhysReads).toBe(2); // the verification read on each vCPU
    expect(big(m.audit.arm64.trapOverheadNs)).toBe(190n); // 2 × 95 ns
    expect(codes(m.audit)).toContain('physical_counter_traps');
    const p = await l.ok('migrate', { vmId: m.newVmId, inPlace: true, strategy: 'qemu', blackoutNs: (3n * S).toString(), vmmLatencyNs: 0 });
    const f = p.audit.findings.find((x: { code: string }) => x.code === 'counter_writes_ignored');
    expect(f.severity).toBe('warn');
    const evs = storeFor({ db: l.db }).read({ streamId: `vm-${m.newVmId}` });
    const setRegs = evs.filter((e) => (e.data as { ioctl?: string }).ioctl === 'KVM_SET_ONE_REG' && e.position > p.audit.findings[0].positions[0] - 10);
    expect(f.positions).toEqual(setRegs.map((e) => e.position));
    for (const e of setRegs) expect((e.data as { ret: number }).ret).toBe(0); // accepted...
    // ...and ignored: the counter ran through the 3 s pause instead of being set back
    for (const v of p.audit.vcpus) expect(big(v.tscAdvance)).toBe(75_000_000n);
    expectReplayEqualsLive(l);
  });

  it('a 6.4+ log replayed as a pre-6.4 kernel diverges first at KVM_ARM_SET_COUNTER_OFFSET', async () => {
    await runningGuest('g', 'a');
    const m = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'counter-offset', blackoutNs: (2n * S).toString() });
    expect(m.status).toBe('completed');
    for (const v of m.audit.vcpus) expect(big(v.tscErrorCycles)).toBe(0n);
    const rp = await l.ok('replay', { profile: 'linux-6.1' });
    expect(rp.firstDivergence).toMatchObject({ ioctl: 'KVM_ARM_SET_COUNTER_OFFSET', vmId: m.newVmId, step: 'restore' });
    expect(rp.firstDivergence.recorded.result).toEqual({ ret: 0 });
    expect(rp.firstDivergence.replayed.result).toEqual({ ret: -1, errno: 'EINVAL' });
    expect(rp.byMigration[0].failingStep).toMatchObject({ step: 'restore', ioctl: 'KVM_ARM_SET_COUNTER_OFFSET', errno: 'EINVAL' });
  });
});
