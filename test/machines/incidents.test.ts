// Real guest-clock incidents, each reproduced with the VMM release before its fix and the release
// with it (strategy "name@X.Y"), the numbers worked by hand from the ioctls the release issues.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => {
  expectMigrateAuditsFromLog(l);
  l.cleanup();
});

const S = 1_000_000_000;

/** Two 3 GHz hosts (linux-6.18), a 2-vCPU guest with kvmclock on both vCPUs, 2 s of uptime. */
async function guest(): Promise<void> {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
  await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'g' });
  for (const v of [0, 1]) await l.ok('guest', { vmId: 'g', vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
  await l.ok('advanceTime', { ns: 2 * S });
}

async function restore(strategy: string, blackoutNs: number): Promise<Record<string, any>> {
  return (await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs, vmmLatencyNs: 0 })).audit;
}

const finding = (a: Record<string, any>, code: string) => a.findings.find((f: { code: string }) => f.code === code);

const FC_SWITCHES = (ctrl: boolean, optIn: boolean) => ({ zeroDeadlineFilled: true, deadlineAfterTsc: true, kvmclockCtrl: ctrl, clockRealtimeOptIn: optIn });

describe('Firecracker issue #5322: KVM_KVMCLOCK_CTRL missing at restore before 1.14.0 (PR #5494)', () => {
  // A 30 s old snapshot restored by a release before 1.16.0: KVM_SET_CLOCK passes the saved
  // KVM_CLOCK_REALTIME, so kvmclock = saved + (realtime now − realtime saved) = 1 999 999 999 +
  // 30 000 000 000 = 31 999 999 999 ns (2 s of uptime, pvclock's truncation: 1 ns short): the
  // guest's clock jumps 30 s > the 20 s soft-lockup threshold at resume. The TSC, by value, is
  // 6 000 000 000 cycles (2 s × 3 GHz) before and after: it lost 30 s = 90 000 000 000 cycles.
  it('1.13 (resolves to 1.8.0): the jump arrives without PVCLOCK_GUEST_STOPPED, soft_lockup_risk fails', async () => {
    await guest();
    const a = await restore('firecracker@1.13', 30 * S);
    expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.8.0', switches: FC_SWITCHES(false, false) });
    expect(a.kvmclock).toEqual({ before: '1999999999', after: '31999999999', advanceNs: '30000000000', errorNs: '0' });
    expect(a.vcpus[0]).toMatchObject({ tscBefore: '6000000000', tscAfter: '6000000000', tscErrorCycles: '-90000000000', tscErrorNs: '-30000000000' });
    expect(finding(a, 'soft_lockup_risk')).toMatchObject({ severity: 'fail' });
    expect(finding(a, 'soft_lockup_risk').message).toContain('30.000 s at resume without PVCLOCK_GUEST_STOPPED');
    expect(a.verdict).toBe('fail');
  });

  it('1.14: KVM_KVMCLOCK_CTRL on the restored vCPUs, the guest finds PVCLOCK_GUEST_STOPPED: the same 30 s jump is only told (info)', async () => {
    await guest();
    const a = await restore('firecracker@1.14', 30 * S);
    expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.14.0', switches: FC_SWITCHES(true, false) });
    expect(a.kvmclock.advanceNs).toBe('30000000000');
    expect(finding(a, 'soft_lockup_risk')).toMatchObject({ severity: 'info' });
    expect(finding(a, 'soft_lockup_risk').message).toContain('with PVCLOCK_GUEST_STOPPED set');
    expect(a.verdict).toBe('warn');
  });

  it('the fix alone, flipped on the old release (1.13+kvmclockCtrl=true), makes the same difference', async () => {
    await guest();
    const a = await restore('firecracker@1.13+kvmclockCtrl=true', 30 * S);
    expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.8.0', switches: FC_SWITCHES(true, false) });
    expect(finding(a, 'soft_lockup_risk').severity).toBe('info');
  });
});

describe('Firecracker PR #5809: KVM_CLOCK_REALTIME by default before 1.16.0, the `clock_realtime` opt-in from it', () => {
  // A 60 s old snapshot. Before 1.16.0 kvmclock (the guest's CLOCK_MONOTONIC) jumps by the age:
  // 1 999 999 999 + 60 000 000 000 = 61 999 999 999 ns. From 1.16.0 (flags 0) it continues from
  // the saved 1 999 999 999: it lost the 60 s, and the wall clock it carries is 60 s behind.
  it('1.15 (resolves to 1.14.0): CLOCK_MONOTONIC jumps forward by the snapshot age, 60 s', async () => {
    await guest();
    const a = await restore('firecracker@1.15', 60 * S);
    expect(a.vmm.release).toBe('1.14.0');
    expect(a.kvmclock).toEqual({ before: '1999999999', after: '61999999999', advanceNs: '60000000000', errorNs: '0' });
    expect(a.kvmclockMinusTscStepNs).toBe('60000000000');
    expect(finding(a, 'kvmclock_tsc_step')).toBeDefined();
    expect(finding(a, 'wall_clock_behind')).toBeUndefined();
  });

  it('1.16: kvmclock continues from the snapshot, the wall clock is 60 s behind', async () => {
    await guest();
    const a = await restore('firecracker@1.16', 60 * S);
    expect(a.vmm).toEqual({ strategy: 'firecracker', release: '1.16.0', switches: FC_SWITCHES(true, true) });
    expect(a.kvmclock).toEqual({ before: '1999999999', after: '1999999999', advanceNs: '0', errorNs: '-60000000000' });
    expect(a.kvmclockMinusTscStepNs).toBe('0');
    expect(finding(a, 'wall_clock_behind').message).toContain('60.000 s behind');
    expect(finding(a, 'soft_lockup_risk')).toBeUndefined();
  });

  it('1.16 with the opt-in (options.clockRealtime) behaves as before 1.16 did by default', async () => {
    await guest();
    const a = (await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'firecracker@1.16', blackoutNs: 60 * S, vmmLatencyNs: 0, options: { clockRealtime: true } })).audit;
    expect(a.kvmclock.advanceNs).toBe('60000000000');
  });
});
