// QEMU's kvmclock and TSC handling release by release (strategy "qemu@X.Y"), on the LTS host kernels
// the stacks incidents ran on. Each switch is shown against the release before it, with the numbers
// worked from the ioctls that release issues.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveStrategyRelease } from '../../machines/migration/strategies/releases.js';
import { expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(async () => {
  await expectMigrateAuditsFromLog(l);
  l.cleanup();
});

const S = 1_000_000_000;

/** Two 3 GHz hosts, a 2-vCPU guest with kvmclock on the given vCPUs, 2 s of uptime. */
async function guest(kernel: string, kvmclockOn: number[] = [0, 1]): Promise<void> {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000, kernel });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000, kernel });
  await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'g' });
  for (const v of kvmclockOn) await l.ok('guest', { vmId: 'g', vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
  await l.ok('advanceTime', { ns: 2 * S });
}

async function migrate(strategy: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  return l.ok('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs: 10 * S, vmmLatencyNs: 0, ...extra });
}

describe('qemu release table', () => {
  it('resolves the modelled releases and their switches', () => {
    const sw = (v: string) => resolveStrategyRelease(`qemu@${v}`);
    expect(sw('2.11').release).toBe('2.11.0');
    expect(sw('3.0.1')).toMatchObject({ release: '2.11.0', switches: { kvmclockCtrlEveryVcpu: false, adjustClockStableMask: false } });
    expect(sw('3.1').switches).toMatchObject({ kvmclockCtrlEveryVcpu: true, pausedNoPreSaveRead: false });
    expect(sw('4.2').switches).toMatchObject({ pausedNoPreSaveRead: true, tscKhzWithinTolerance: false });
    expect(sw('5.1').switches).toMatchObject({ tscKhzWithinTolerance: true, adjustClockStableMask: false });
    expect(sw('7.1.0').release).toBe('5.1.0');
    expect(sw('7.2').switches).toMatchObject({ adjustClockStableMask: true, downtimeAccounting: false });
    expect(() => resolveStrategyRelease('qemu@2.10')).toThrow(/older than every modelled release/);
  });
});

// kvm_has_adjust_clock_stable() compared KVM_CAP_ADJUST_CLOCK with == KVM_CLOCK_TSC_STABLE (2) until
// 7.2.0. A 5.16+ kernel answers 0xE: the source's KVM_GET_CLOCK counts as unreliable and the resume
// replaces it by kvmclock_current_nsec(), vCPU 0's pvclock page read at the TSC pinned at the stop.
// The stop is at 2 s: TSC 6 000 000 000. The master clock, referenced at 0, scales the host TSC with
// kvm_get_time_scale(1e9, 3e9): shift −1, mul ⌊2^33 / 3⌋ = 2 863 311 530, so KVM_GET_CLOCK reads
// (6e9 >> 1) × mul >> 32 = 1 999 999 999 at the stop and (7.5e9 >> 1) × mul >> 32 = 2 499 999 999 at
// pre-save, 500 ms later: what 7.2 writes back. 7.1 writes the guest's own clock at TSC 6e9 instead,
// 1 999 999 999 as at the stop. The stop-to-resume span is the 500 ms gap plus the 10 s blackout: 7.1's
// kvmclock loses all 10.5 s, exactly as the TSC does; 7.2's loses 10 s, 500 ms less than the TSC.
describe('the == capability test before 7.2.0 (kvmclock_current_nsec on 5.16+ hosts)', () => {
  it('7.1 on linux-6.18 hosts: kvmclock written back as the guest read it at the stop', async () => {
    await guest('linux-6.18');
    const r = await migrate('qemu@7.1', { preSaveGapNs: 500_000_000 });
    expect(r.audit.vmm).toMatchObject({ release: '5.1.0', switches: { adjustClockStableMask: false } });
    expect(r.audit.kvmclock).toMatchObject({ before: '1999999999', after: '1999999999', errorNs: '-10500000000' });
    expect(r.audit.vcpus[0]).toMatchObject({ tscBefore: '6000000000', tscAfter: '6000000000', tscErrorNs: '-10500000000' });
  });

  it('7.2 on the same hosts: the pre-save KVM_GET_CLOCK, 500 ms later', async () => {
    await guest('linux-6.18');
    const r = await migrate('qemu@7.2', { preSaveGapNs: 500_000_000 });
    expect(r.audit.kvmclock).toMatchObject({ before: '1999999999', after: '2499999999', errorNs: '-10000000000' });
  });

  it('7.1 on linux-5.15 hosts (KVM_CAP_ADJUST_CLOCK = 2): reliable, as 7.2', async () => {
    await guest('linux-5.15');
    const r = await migrate('qemu@7.1', { preSaveGapNs: 500_000_000 });
    expect(r.audit.kvmclock).toMatchObject({ after: '2499999999' });
  });
});

// A guest paused (QEMU `stop`) 60 s before `migrate`: vm_stop read kvmclock at 2 s (1 999 999 999).
// Before 4.2.0 pre-save reads it again 60 s later: (186e9 >> 1) × 2 863 311 530 >> 32 = 61 999 999 985
// (the master clock's mul, as above, 15 ns short over 62 s): the restored guest's kvmclock is 60 s ahead
// of its TSC (6e9 cycles, 2 s). 4.2.0 keeps the read of the stop for a paused guest.
describe('the pre-save re-read of a paused guest, until 4.2.0 (4173324946)', () => {
  it('4.1: kvmclock counts the 60 s the guest sat paused', async () => {
    await guest('linux-5.4');
    const r = await migrate('qemu@4.1', { preSaveGapNs: 60 * S, options: { paused: true } });
    expect(r.audit.vmm).toMatchObject({ release: '3.1.0' });
    expect(r.audit.kvmclock).toMatchObject({ after: '61999999985' });
    expect(r.audit.vcpus[0]).toMatchObject({ tscAfter: '6000000000' });
  });

  it('4.2: the clock read at the stop', async () => {
    await guest('linux-5.4');
    const r = await migrate('qemu@4.2', { preSaveGapNs: 60 * S, options: { paused: true } });
    expect(r.audit.kvmclock).toMatchObject({ after: '1999999999' });
  });

  it('4.2 migrating a running guest still reads it at pre-save', async () => {
    await guest('linux-5.4');
    const r = await migrate('qemu@4.2', { preSaveGapNs: 60 * S });
    expect(r.audit.kvmclock).toMatchObject({ after: '61999999985' });
  });
});

// The guest enabled kvmclock on vCPU 1 only: KVM_KVMCLOCK_CTRL on vCPU 0 fails with EINVAL. Before
// 3.1.0 the loop returned there, so vCPU 1, whose clock did jump, never saw PVCLOCK_GUEST_STOPPED.
describe('KVM_KVMCLOCK_CTRL after a failing vCPU, until 3.1.0 (4c3e250627)', () => {
  it('2.11: vCPU 1 is not told', async () => {
    await guest('linux-4.19', [1]);
    const r = await migrate('qemu@2.11');
    expect(r.audit.guest.guestStopped).toEqual([]);
  });

  it('3.1: vCPU 1 finds PVCLOCK_GUEST_STOPPED', async () => {
    await guest('linux-4.19', [1]);
    const r = await migrate('qemu@3.1');
    expect(r.audit.guest.guestStopped.map((g: { vcpu: number }) => g.vcpu)).toEqual([1]);
  });
});

// The destination runs at 3 000 300 kHz without TSC scaling; the guest's 3 000 000 kHz is within 250 ppm
// (freq_within_bounds(): 3 000 300 × 250 / 1e6 = 750, so 2 999 550 … 3 001 050). Before 5.1.0 QEMU asks
// KVM_SET_TSC_KHZ only with KVM_CAP_TSC_CONTROL, finds 3 000 300 ≠ 3 000 000 and stops. 5.1.0 asks;
// a 5.8+ kernel takes it (no ratio: inside its own window), 4.19 refuses every rate without scaling.
describe('TSC kHz within 250 ppm without scaling: QEMU 5.1.0 and Linux 5.8', () => {
  async function toSlowHost(kernel: string, strategy: string): Promise<Record<string, any>> {
    await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_300, tscScaling: false, kernel });
    await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'g' });
    await l.ok('advanceTime', { ns: 2 * S });
    return migrate(strategy);
  }

  it("5.0 to linux-5.10: refused, the host's rate differs", async () => {
    const r = await toSlowHost('linux-5.10', 'qemu@5.0');
    expect(r.status).toBe('failed');
    expect(r.audit.failure.reason).toContain('TSC frequency mismatch between VM (3000000 kHz) and host (3000300 kHz)');
  });

  it('5.1 to linux-5.10: KVM_SET_TSC_KHZ taken, the guest keeps 3 000 000 kHz', async () => {
    const r = await toSlowHost('linux-5.10', 'qemu@5.1');
    expect(r.status).toBe('completed');
    const st = JSON.stringify(await l.ok('stateAt', { streamId: `vm-${r.newVmId}` }));
    expect(st).toContain('"virtualTscKhz":3000000');
  });

  it('5.1 to linux-4.19: the kernel refuses it, QEMU stops', async () => {
    const r = await toSlowHost('linux-4.19', 'qemu@5.1');
    expect(r.status).toBe('failed');
    expect(r.audit.failure.reason).toContain('TSC frequency mismatch between VM (3000000 kHz) and host (3000300 kHz)');
  });
});
