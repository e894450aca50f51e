// linux-7.1 against linux-6.19: 8fe2e698fce4 rate-limits the global clock update a vCPU load asks
// for, again, without delayed work (modelled interval: KVMCLOCK_UPDATE_DELAY, 100 ms; see
// kvm/profiles.ts). The host's TSC is unstable, so every KVM_RUN loads its vCPU anew and, with no
// master clock (HPET clocksource), asks for a global clock update: the storm 446fcce2a52b let loose
// on 6.19. The host counter starts at 0 and the VM is created at true time 0, so kvmclock_offset = 0
// and a page's system_time is the true instant (ns) of the update that wrote it.
import { describe, expect, it } from 'vitest';
import { nextTimerAt } from '../../kvm/x86/vm.js';
import { expectReplayEqualsLive, newLedger } from '../helpers/ledger.js';
import { X86Sim } from './sim.js';

const S = 1_000_000_000n;
const MS = 1_000_000n;
const KVMCLOCK_ENABLE = 0x2000n | 1n;

/** Two vCPUs in KVM_RUN; at 1 s the guest enables kvmclock on vCPU 0, then on vCPU 1. */
function vm(profile: string): X86Sim {
  const sim = new X86Sim({ clocksource: 'hpet', tscUnstable: true }, profile);
  for (const id of [0, 1]) expect(sim.ioctl('KVM_CREATE_VCPU', id)).toEqual({ ret: 0 });
  for (const id of [0, 1]) sim.ioctl('KVM_RUN', undefined, id);
  sim.advance(S);
  for (const id of [0, 1]) expect(sim.guest(id, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE })).toEqual({});
  return sim;
}
const page = (sim: X86Sim, id: number) => sim.vm.vcpus.find((v) => v.id === id)!.pvti!;
/** Let `ns` pass, then re-enter KVM_RUN on a vCPU (on this host, a vCPU load). */
const runAfter = (sim: X86Sim, ns: bigint, vcpu: number) => {
  sim.advance(ns);
  sim.ioctl('KVM_RUN', undefined, vcpu);
};

describe('linux-7.1: global clock updates on vCPU load rate-limited again', () => {
  it('enabling kvmclock (kvm_write_system_time, not a load) is not limited: as on 6.19, vCPU 0 rewritten for vCPU 1 at once', () => {
    for (const profile of ['linux-6.19', 'linux-7.1']) {
      const sim = vm(profile);
      expect([page(sim, 0), page(sim, 1)]).toMatchObject([
        { version: 4, systemTime: S },
        { version: 2, systemTime: S },
      ]);
      expect(nextTimerAt(sim.vm)).toBeNull();
    }
  });

  it('6.19: every load rewrites both pages; 7.1: the loads within 100 ms of the last global one rewrite only their own', () => {
    const old = vm('linux-6.19');
    const now = vm('linux-7.1');
    // the creation loads at 0 were the last global ones on 7.1 (vCPU 1's, also at 0, only its own)
    expect(now.vm.globalClockUpdateOnLoadAt).toBe(0n);
    expect(old.vm.globalClockUpdateOnLoadAt).toBeUndefined();
    // 1.010 s, vCPU 0 loads: 1.01 s since the last global update, so global on both: both pages at 1.01e9
    for (const sim of [old, now]) runAfter(sim, 10n * MS, 0);
    for (const sim of [old, now]) {
      expect([page(sim, 0), page(sim, 1)]).toMatchObject([
        { version: 6, systemTime: 1_010n * MS },
        { version: 4, systemTime: 1_010n * MS },
      ]);
    }
    expect(now.vm.globalClockUpdateOnLoadAt).toBe(1_010n * MS);
    // 1.050 s, vCPU 1 loads: 40 ms after 1.01 s. 6.19 rewrites both at 1.05e9; 7.1 vCPU 1's alone
    for (const sim of [old, now]) runAfter(sim, 40n * MS, 1);
    expect([page(old, 0), page(old, 1)]).toMatchObject([
      { version: 8, systemTime: 1_050n * MS },
      { version: 6, systemTime: 1_050n * MS },
    ]);
    expect([page(now, 0), page(now, 1)]).toMatchObject([
      { version: 6, systemTime: 1_010n * MS },
      { version: 6, systemTime: 1_050n * MS },
    ]);
    expect(now.vm.globalClockUpdateOnLoadAt).toBe(1_010n * MS);
    // 1.109 s (99 ms after 1.01 s): still within; 1.110 s (100 ms): global again, no work was queued in between
    runAfter(now, 59n * MS, 1);
    expect([page(now, 0).systemTime, page(now, 1).systemTime]).toEqual([1_010n * MS, 1_109n * MS]);
    runAfter(now, 1n * MS, 1);
    expect([page(now, 0), page(now, 1)]).toMatchObject([
      { version: 8, systemTime: 1_110n * MS },
      { version: 10, systemTime: 1_110n * MS },
    ]);
    expect(now.vm.globalClockUpdateOnLoadAt).toBe(1_110n * MS);
    expect(nextTimerAt(now.vm)).toBeNull();
  });

  it('the switch alone: linux-6.19+x86.globalClockUpdateRateLimit=true is linux-7.1', async () => {
    const { resolveProfile, getProfile } = await import('../../kvm/profiles.js');
    expect(resolveProfile('linux-6.19+x86.globalClockUpdateRateLimit=true').x86).toEqual(getProfile('linux-7.1').x86);
    expect(getProfile('clock-cleanup-v6').x86.globalClockUpdateRateLimit).toBe(false);
  });

  it("a 7.1 host's log replays to the live state, rate-limit instant included", async () => {
    const l = newLedger();
    try {
      await l.ok('createHost', { hostId: 'h', tscKhz: 2_000_000, kernel: 'linux-7.1', clocksource: 'hpet', tscUnstable: true });
      await l.ok('createVm', { vmId: 'v', hostId: 'h', vcpus: 2 });
      await l.ok('runVcpu', { vmId: 'v' });
      await l.ok('advanceTime', { ns: S.toString() });
      for (const vcpu of [0, 1]) await l.ok('guest', { vmId: 'v', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE.toString() });
      for (const [ns, vcpu] of [
        [10n * MS, 0],
        [40n * MS, 1],
        [60n * MS, 1],
      ] as const) {
        await l.ok('advanceTime', { ns: ns.toString() });
        await l.ok('runVcpu', { vmId: 'v', vcpu });
      }
      const st = (await l.ok('stateAt', { vmId: 'v' })).state;
      // the load at 1.05 s was limited, the one at 1.11 s (100 ms after 1.01 s) was not
      expect(st.kvm.globalClockUpdateOnLoadAt).toBe((1_110n * MS).toString());
      await expectReplayEqualsLive(l);
    } finally {
      l.cleanup();
    }
  });
});
