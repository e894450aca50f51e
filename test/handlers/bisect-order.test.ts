// bisect --profiles must never miss what --exhaustive finds: the first profile in the order given
// whose replay diverges from the recording (or the reference), wherever the recorded profile sits.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENGINE_NAMES, newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(() => l.cleanup());

type Res = Record<string, any>;
const names = (probes: Res[]) => probes.map((p) => p.profile);

/** A 2-vCPU guest with kvmclock migrated between two 3 GHz hosts of one kernel with the offset-based procedure. */
async function recordOffsetMigration(kernel: string) {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000, kernel });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000, kernel });
  await l.ok('createVm', { vmId: 'v', hostId: 'a', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'v' });
  for (const vcpu of [0, 1]) await l.ok('guest', { vmId: 'v', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10000 + 0x1000 * vcpu + 1 });
  await l.ok('advanceTime', { ns: 5_000_000_000 });
  return l.ok('migrate', { vmId: 'v', toHost: 'b', strategy: 'offset-corrected', blackoutNs: 200_000_000 });
}

describe.each(ENGINE_NAMES)('on %s', (engine) => {
  beforeEach(() => {
    l = newLedger(engine);
  });

  describe('bisect over profiles', () => {
    it('a log recorded under the last profile of the order: finds linux-5.15 as --exhaustive does', async () => {
      await recordOffsetMigration('linux-6.18');
      const order = ['linux-5.15', 'linux-6.1', 'linux-6.6', 'linux-6.18'];
      const all = await l.ok('bisect', { profiles: order, exhaustive: true });
      expect(all.firstDivergent.profile).toBe('linux-5.15');
      // the recording profile itself never diverges
      expect(all.probes.find((p: Res) => p.profile === 'linux-6.18').diverged).toBe(false);
      const plain = await l.ok('bisect', { profiles: order });
      expect(plain.firstDivergent.profile).toBe('linux-5.15');
      expect(plain.firstDivergent.firstDivergence.ioctl).toBe(all.firstDivergent.firstDivergence.ioctl);
      // the first end already answers, whatever the order: one replay
      expect(names(plain.probes)).toEqual(['linux-5.15']);
      expect(plain.search).toBe('ends');
    });

    it('neither end diverges but one inside does: found (the order is not monotone, so it is searched one by one)', async () => {
      // recorded under 6.18; 6.18 and a 6.18 with an arm64-only switch flipped at the ends (neither
      // changes anything for this x86 guest), 5.15 inside
      await recordOffsetMigration('linux-6.18');
      const order = ['linux-6.18', 'linux-5.15', 'linux-6.18+arm64.timerOffsetV8=true'];
      const all = await l.ok('bisect', { profiles: order, exhaustive: true });
      expect(all.firstDivergent.profile).toBe('linux-5.15');
      const plain = await l.ok('bisect', { profiles: order });
      expect(plain.firstDivergent.profile).toBe('linux-5.15');
      expect(plain.search).toBe('linear');
    });

    it('an order that moves away from the recording one switch set at a time is bisected', async () => {
      await recordOffsetMigration('linux-6.18');
      const order = ['linux-6.18', 'linux-6.18+x86.clockRealtime=false', 'linux-6.18+x86.clockRealtime=false,x86.vcpuTscOffsetAttr=false'];
      const all = await l.ok('bisect', { profiles: order, exhaustive: true });
      const plain = await l.ok('bisect', { profiles: order });
      expect(plain.firstDivergent.profile).toBe(all.firstDivergent.profile);
      expect(plain.firstDivergent.profile).toBe('linux-6.18+x86.clockRealtime=false');
      expect(plain.search).toBe('bisect');
    });
  });
});
