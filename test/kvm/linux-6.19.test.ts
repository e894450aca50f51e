// linux-6.19 against linux-6.18: Lei Chen's reverts of the periodic (300 s) kvmclock sync work
// (43ddbf16edf5) and of the 100 ms rate limit on global clock updates (446fcce2a52b). The host
// runs on the HPET clocksource, so the master clock is off and every clock page a vCPU writes
// carries system_time = the host's CLOCK_MONOTONIC_RAW at the update + kvmclock_offset. The host
// counter starts at 0 and the VM is created at true time 0, so kvmclock_offset = 0 and
// system_time is simply the true instant (ns) of the update.
import { describe, expect, it } from 'vitest';
import { nextTimerAt } from '../../kvm/x86/vm.js';
import { X86Sim } from './sim.js';

const S = 1_000_000_000n;
const MS = 1_000_000n;
const KVMCLOCK_ENABLE = 0x2000n | 1n;

/** Two vCPUs in KVM_RUN; at 1 s the guest enables kvmclock on vCPU 0, then on vCPU 1. */
function vm(profile: string): X86Sim {
  const sim = new X86Sim({ clocksource: 'hpet' }, profile);
  for (const id of [0, 1]) expect(sim.ioctl('KVM_CREATE_VCPU', id)).toEqual({ ret: 0 });
  for (const id of [0, 1]) sim.ioctl('KVM_RUN', undefined, id);
  sim.advance(S);
  for (const id of [0, 1]) expect(sim.guest(id, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE })).toEqual({});
  return sim;
}
const page = (sim: X86Sim, id: number) => sim.vm.vcpus.find((v) => v.id === id)!.pvti!;

describe('linux-6.19: no periodic kvmclock sync, no rate-limited global update', () => {
  it('at 1 s: linux-6.18 wrote each page once (version 2); linux-6.19 rewrote vCPU 0 at once for vCPU 1 (version 4), same system_time 1e9 ns', () => {
    const old = vm('linux-6.18');
    expect([page(old, 0), page(old, 1)]).toMatchObject([
      { version: 2, systemTime: S },
      { version: 2, systemTime: S },
    ]);
    const now = vm('linux-6.19');
    expect([page(now, 0), page(now, 1)]).toMatchObject([
      { version: 4, systemTime: S },
      { version: 2, systemTime: S },
    ]);
    expect(now.vm.kvmclockUpdateWorkAt).toBeNull();
  });

  it("linux-6.18: vCPU 1's global update at 1 s reaches vCPU 0 through the delayed work 100 ms later (system_time 1.1e9 ns)", () => {
    const old = vm('linux-6.18');
    expect(old.vm.kvmclockUpdateWorkAt).toBe(S + 100n * MS);
    old.advance(200n * MS);
    expect(page(old, 0)).toMatchObject({ version: 4, systemTime: S + 100n * MS });
    const now = vm('linux-6.19');
    now.advance(200n * MS);
    expect(page(now, 0)).toMatchObject({ version: 4, systemTime: S });
  });

  it('linux-6.18: the sync work armed at vCPU creation rewrites every page at 300 s; linux-6.19: no timer at all', () => {
    const old = vm('linux-6.18');
    expect(old.vm.kvmclockSyncWorkAt).toBe(300n * S);
    old.advance(400n * S);
    // 300 s: kvmclock_sync_fn → kvmclock_update_fn → KVM_REQ_CLOCK_UPDATE on both; re-armed for 600 s
    expect([page(old, 0).systemTime, page(old, 1).systemTime]).toEqual([300n * S, 300n * S]);
    expect(old.vm.kvmclockSyncWorkAt).toBe(600n * S);
    const now = vm('linux-6.19');
    expect(nextTimerAt(now.vm)).toBeNull();
    now.advance(400n * S);
    expect([page(now, 0).systemTime, page(now, 1).systemTime]).toEqual([S, S]);
  });
});
