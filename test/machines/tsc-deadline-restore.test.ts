// A LAPIC TSC deadline armed as the migration begins survives QEMU, Cloud Hypervisor and the offset
// procedure, as it survives Firecracker from 1.8.0: each saves IA32_TSC_DEADLINE with the vCPU's MSRs
// and writes it back once the guest TSC is in place (QEMU: kvm_put_tscdeadline_msr(), its own
// KVM_SET_MSRS after kvm_put_msrs(); Cloud Hypervisor: every MSR of KVM_GET_MSR_INDEX_LIST in its
// order, IA32_TSC first, since v0.9.0). Before, the model dropped it, and the audit reported a false
// guest_sleeper_stuck. One vCPU at 3 GHz without kvmclock (the guest runs on tsc); at 2 s of uptime
// the sleeper's deadline is 100 ms ahead: 6 300 000 000; a 1 s blackout, no VMM latency.
import { afterEach, describe, expect, it } from 'vitest';
import { MSRS } from '../../kvm/uapi.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

const S = 1_000_000_000;
const DEADLINE = MSRS.MSR_IA32_TSC_DEADLINE;
let l: Ledger;
afterEach(() => l?.cleanup());

/** tsc ns of the guest's clocksource at 3 GHz: cycles × 5592405 >> 24 (clocksource_cyc2ns). */
const ns = (cycles: bigint) => (cycles * 5592405n) >> 24n;

async function sleeperAcross(strategy: string) {
  l = newLedger();
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
  await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 1 });
  await l.ok('runVcpu', { vmId: 'g' });
  await l.ok('advanceTime', { ns: 2 * S });
  await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC_DEADLINE', value: '6300000000' });
  const r = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs: S, vmmLatencyNs: 0 });
  // the destination's writes, in order: which MSRs each KVM_SET_MSRS carried, and the offset writes
  const writes = (await l.ok('events', { streamId: 'vm-g.m1' })).events
    .filter((e: any) => e.type === 'IoctlIssued' && ['KVM_SET_MSRS', 'KVM_SET_DEVICE_ATTR'].includes(e.data.ioctl))
    .map((e: any) => (e.data.ioctl === 'KVM_SET_MSRS' ? e.data.arg.entries.map((x: any) => x.index) : e.data.arg.attr));
  return { audit: r.audit, writes };
}

describe('an armed LAPIC TSC deadline across a migration', () => {
  it('qemu: saved with the MSRs, restored by its own KVM_SET_MSRS after IA32_TSC; the sleeper wakes on time', async () => {
    const { audit, writes } = await sleeperAcross('qemu');
    expect(writes).toEqual([[MSRS.MSR_IA32_TSC_ADJUST, MSRS.MSR_IA32_TSC, MSRS.MSR_KVM_SYSTEM_TIME_NEW, MSRS.MSR_KVM_WALL_CLOCK_NEW], [DEADLINE]]);
    // the TSC by value lost the blackout, so the deadline is still 100 ms of guest time ahead at the resume
    expect(audit.guest.sleeper.wakes[0]).toMatchObject({ expiresNs: String(ns(6_300_000_000n)), lateNs: '0', lapicDeadline: true });
    expect(audit.findings.map((f: any) => f.code)).not.toContain('guest_sleeper_stuck');
  });

  it('cloud-hypervisor: the deadline after IA32_TSC and kvmclock, in KVM_GET_MSR_INDEX_LIST order; on time', async () => {
    const { audit, writes } = await sleeperAcross('cloud-hypervisor');
    expect(writes[0]).toEqual([MSRS.MSR_IA32_TSC, MSRS.MSR_KVM_SYSTEM_TIME_NEW, MSRS.MSR_KVM_WALL_CLOCK_NEW, DEADLINE]);
    expect(audit.guest.sleeper.wakes[0]).toMatchObject({ expiresNs: String(ns(6_300_000_000n)), lateNs: '0', lapicDeadline: true });
    expect(audit.findings.map((f: any) => f.code)).not.toContain('guest_sleeper_stuck');
  });

  it('offset-corrected: written after the TSC offset; the guest TSC kept the blackout, so the deadline has passed and fires at once', async () => {
    const { audit, writes } = await sleeperAcross('offset-corrected');
    const offsetAt = writes.indexOf('KVM_VCPU_TSC_OFFSET');
    expect(offsetAt).toBeGreaterThanOrEqual(0);
    expect(writes.slice(offsetAt + 1)).toEqual([[DEADLINE]]);
    // at the resume the TSC reads about 6e9 + 1 s × 3 GHz = 9e9, past 6.3e9: the timer fires at the
    // resume, 0.9 s of guest time after the deadline (what the guest would see of a real 1 s pause)
    const w = audit.guest.sleeper.wakes[0];
    expect(w).toMatchObject({ expiresNs: String(ns(6_300_000_000n)), lapicDeadline: true });
    const late = BigInt(w.lateNs);
    expect(late >= ns(9_000_000_000n) - ns(6_300_000_000n)).toBe(true);
    expect(late < ns(9_000_000_000n) - ns(6_300_000_000n) + 1_000_000n).toBe(true);
    expect(audit.findings.map((f: any) => f.code)).not.toContain('guest_sleeper_stuck');
  });
});
