// Bisect across VMM releases: a Firecracker restore with a 30 s snapshot age, recorded under 1.12
// (modelled by 1.10.0: KVM_KVMCLOCK_CTRL only at pause), is run again under every modelled release.
// The soft-lockup finding fails until 1.14.0 (#5494 calls KVMCLOCK_CTRL at restore, so the guest
// finds PVCLOCK_GUEST_STOPPED) and is absent from then on; flipping kvmclockCtrl alone on 1.10.0 gives
// the same, and no other switch changes between them. With #5809 (1.14.4, 1.15.1, 1.16.0) kvmclock
// does not jump at all.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(() => {
  closeStores();
  l?.cleanup();
});

async function restoredUnder(spec: string): Promise<void> {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
  await l.ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'web' });
  for (const vcpu of [0, 1]) await l.ok('guest', { vmId: 'web', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
  await l.ok('advanceTime', { ns: '2000000000' });
  await l.ok('migrate', { vmId: 'web', toHost: 'b', strategy: spec, blackoutNs: '30000000000' });
}

describe('bisect across VMM releases', () => {
  it('names firecracker 1.14.0 and its kvmclockCtrl switch for the soft-lockup finding of #5322', async () => {
    l = newLedger();
    await restoredUnder('firecracker@1.12');
    const before = (await l.ok('events', { limit: 1 })).lastPosition;
    const r = await l.ok('bisectReleases', { migrationId: 'm1', finding: 'soft_lockup_risk', switches: true });
    expect(r.probes.map((p: any) => [p.release, p.outcome])).toEqual([
      ['1.7.0', 'fail'],
      ['1.8.0', 'fail'],
      // KVM_KVMCLOCK_CTRL at pause reaches the source's vCPUs, not the restored guest
      ['1.10.0', 'fail'],
      // KVM_KVMCLOCK_CTRL at restore: the simulated guest finds PVCLOCK_GUEST_STOPPED and prints no soft lockup
      ['1.14.0', 'absent'],
      // #5809: the snapshot's KVM_CLOCK_REALTIME no longer passed, kvmclock does not jump at all (1.15.0 passes it again)
      ['1.14.4', 'absent'],
      ['1.15.0', 'absent'],
      ['1.15.1', 'absent'],
      ['1.16.0', 'absent'],
    ]);
    expect(r.firstDivergent).toMatchObject({
      spec: 'firecracker@1.14.0',
      release: '1.14.0',
      outcome: 'absent',
      previous: 'firecracker@1.10.0',
      previousOutcome: 'fail',
    });
    expect(r.switchProbes).toEqual([
      { switch: 'kvmclockCtrl', from: false, to: true, spec: 'firecracker@1.10.0+kvmclockCtrl=true', outcome: 'absent', reproduces: true },
    ]);
    // it reads the log and writes nothing to it
    expect((await l.ok('events', { limit: 1 })).lastPosition).toBe(before);
    expect(existsSync(l.db)).toBe(true);
  });

  it('compares a report field across the releases given, and refuses a release of another VMM', async () => {
    l = newLedger();
    await restoredUnder('firecracker@1.15');
    // 1.14.0 passes the snapshot's KVM_CLOCK_REALTIME: kvmclock counts the 30 s; 1.16.0 does not
    const r = await l.ok('bisectReleases', { migrationId: 'm1', releases: ['firecracker@1.14', 'firecracker@1.16'], field: 'kvmclock.errorNs' });
    expect(r.compared).toBe('field kvmclock.errorNs');
    const [older, newer] = r.probes.map((p: any) => BigInt(p.outcome));
    expect(older! > -1_000_000n && older! < 1_000_000n).toBe(true);
    expect(newer! < -29_000_000_000n).toBe(true);
    expect(r.firstDivergent.release).toBe('1.16.0');
    const bad = await l.call('bisectReleases', { migrationId: 'm1', releases: ['qemu@10.1'] });
    expect(bad.error).toMatchObject({ code: 'invalid_request' });
    expect((await l.call('bisectReleases', { migrationId: 'm9' })).error).toMatchObject({ code: 'not_found' });
  });
});
