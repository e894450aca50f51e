// Software TSC catch-up (KVM_SET_TSC_KHZ above the rate of a host without TSC scaling): what the
// guest's TSC and kvmclock really do afterwards, and what the audit says about their rates.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { pvclockScaleDelta } from '../../kvm/arith.js';
import { GUEST_TICK_NS } from '../../kvm/x86/vm.js';
import { expectReplayEqualsLive, newLedger, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock } from '../helpers/guest-setup.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

const big = (x: string) => BigInt(x);
/** the guest's tick (HZ=250) */
const TICK = GUEST_TICK_NS; // the model's guest tick (HZ=250)

/** A 2995.2 MHz guest (2 vCPUs, kvmclock on) migrated by Firecracker to a 2100 MHz host without TSC scaling. */
async function migrateToSlowHost(dst: Record<string, unknown>) {
  await l.ok('createHost', { hostId: 'src', tscKhz: 2_995_200 });
  await l.ok('createHost', { hostId: 'dst', tscKhz: 2_100_000, tscScaling: false, ...dst });
  await l.ok('createVm', { vmId: 'g', hostId: 'src', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'g' });
  await registerKvmclock(l, 'g', 2);
  await l.ok('advanceTime', { ns: 10_000_000_000 });
  const r = await l.ok('migrate', { vmId: 'g', toHost: 'dst', strategy: 'firecracker', blackoutNs: 300_000_000 });
  expect(r.status).toBe('completed');
  return r;
}

/** The guest reads its TSC and kvmclock on vCPU 0; with the true time of the read. */
async function guestReads(vmId: string) {
  const tsc = await l.ok('guest', { vmId, vcpu: 0, op: 'rdtsc' });
  const kvm = await l.ok('guest', { vmId, vcpu: 0, op: 'kvmclock' });
  const t = storeFor({ db: l.db }).read({ fromPosition: tsc.position, toPosition: tsc.position })[0]!.time;
  return { t: BigInt(t), tsc: big(tsc.value), kvmclock: big(kvm.value) };
}

describe('software TSC catch-up after KVM_SET_TSC_KHZ on a host without scaling', () => {
  it('master clock on (TSC clocksource): catch-up stops at the master reference, the guest TSC runs at the host 2.1 GHz, and the audit says so', async () => {
    const r = await migrateToSlowHost({});
    const vcpu = (await l.ok('stateAt', { vmId: r.newVmId })).state.kvm;
    expect(vcpu.useMasterClock).toBe(true);
    expect(vcpu.vcpus[0].tscAlwaysCatchup).toBe(true);
    await l.ok('advanceTime', { ns: 1_000_000_000 });
    const a = await guestReads(r.newVmId);
    await l.ok('advanceTime', { ns: 100_000_000_000 });
    const b = await guestReads(r.newVmId);
    // kvm_guest_time_update() catches up to compute_guest_tsc(master_kernel_ns): the same target
    // at every exit, so after the first one the offset never moves again. 100 s × 2.1e9 Hz:
    expect(b.tsc - a.tsc).toBe(210_000_000_000n);
    // kvmclock through the page's 2.1 GHz mul/shift: (210e9 >> 1) × 4090445043 / 2^32 = 99,999,999,980.4 ns,
    // each read floored on its own: 980 or 981
    const k = b.kvmclock - a.kvmclock;
    expect(k >= 99_999_999_980n && k <= 99_999_999_981n).toBe(true);
    const audit = r.audit;
    // (2.1e9 − 2.9952e9) × 1e9 / 2.9952e9 = −298,878,205.1 ppb; × 86400 s/day = −25,823,076.9 ms/day
    expect(audit.tscFrequency).toEqual({ nominalHz: '2995200000', actualHz: '2100000000', driftPpb: '-298878205', msPerDay: '-25823076.912' });
    // the pvclock encodes the host's 2.1 GHz, the rate the TSC really has: kvmclock keeps true time
    expect(audit.pvclock).toMatchObject({ frequencyHz: '2100000000', guestTscHz: '2100000000', driftPpb: '0', msPerDay: '0.000' });
    const drift = audit.findings.filter((f: { code: string }) => f.code === 'frequency_drift');
    expect(drift).toHaveLength(1);
    expect(drift[0].message).toMatch(/the guest TSC runs at 2100000000 Hz for a nominal 2995200000 Hz: -298878\.205 ppm/);
    expectReplayEqualsLive(l);
  });

  it('master clock off (HPET clocksource): the guest exits every tick and is caught up to 2995.2 MHz; the audit reports no drift on either clock', async () => {
    const r = await migrateToSlowHost({ clocksource: 'hpet' });
    const state = (await l.ok('stateAt', { vmId: r.newVmId })).state.kvm;
    expect(state.useMasterClock).toBe(false);
    const v0 = state.vcpus[0];
    await l.ok('advanceTime', { ns: 1_000_000_000 });
    const a = await guestReads(r.newVmId);
    await l.ok('advanceTime', { ns: 100_000_000_000 });
    const b = await guestReads(r.newVmId);
    // Each read is preceded by the exit at the last tick T (t − t mod 4 ms), where
    // kvm_guest_time_update() set the TSC to compute_guest_tsc(raw_ns(T)) = this_tsc_write +
    // pvclock_scale_delta(T − this_tsc_nsec, virtual mult 3216071511, shift 2) (HPET: raw_ns = t);
    // since then it ticked at the host's 2.1 GHz. 100 s is a whole number of ticks, so both reads are
    // the same time past their tick and the host part cancels: the advance is the virtual rate's
    // 4 × 3216071511 / 2^32 = 2.99519999977 cycles/ns over 100 s: 299,519,999,977 (±1 for the floors).
    const Ta = a.t - (a.t % TICK);
    const Tb = b.t - (b.t % TICK);
    expect(Tb - Ta).toBe(100_000_000_000n);
    const n = big(v0.thisTscNsec);
    const target = (T: bigint) => big(v0.thisTscWrite) + pvclockScaleDelta(T - n, big(v0.virtualTscMult), v0.virtualTscShift);
    expect(b.tsc - a.tsc).toBe(target(Tb) - target(Ta));
    expect(b.tsc - a.tsc >= 299_519_999_977n && b.tsc - a.tsc <= 299_519_999_978n).toBe(true);
    // at the read: the tick's target plus the host cycles since the tick (2.1 per ns)
    expect(a.tsc).toBe(target(Ta) + ((a.t - Ta) * 21n) / 10n);
    // kvmclock is rebased on raw_ns at every tick (system_time = T + offset), so it advances by exactly T_b − T_a
    expect(b.kvmclock - a.kvmclock).toBe(100_000_000_000n);
    const audit = r.audit;
    expect(audit.tscFrequency).toEqual({ nominalHz: '2995200000', actualHz: '2995200000', driftPpb: '0', msPerDay: '0.000' });
    // the page encodes 2.1 GHz, but it is rewritten every tick from the host clock: kvmclock keeps true time
    expect(audit.pvclock).toMatchObject({ frequencyHz: '2100000000', guestTscHz: '2995200000', driftPpb: '0' });
    expect(audit.findings.filter((f: { code: string }) => f.code === 'frequency_drift')).toEqual([]);
    expectReplayEqualsLive(l);
  });
});
