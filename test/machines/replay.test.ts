// Replay rebuilds exactly the state that was live, and time travel finds any past state.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toJson } from '../../machines/codec.js';
import { clearRebuildCache, rebuildStream } from '../../machines/rebuild.js';
import { ENGINE_NAMES, expectReplayEqualsLive, newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(() => l.cleanup());

async function busyVm(l: Ledger) {
  await l.ok('createHost', { hostId: 'h', tscKhz: 2_999_999, initialTsc: '987654321987' });
  await l.ok('createVm', { vmId: 'v', hostId: 'h', vcpus: 3, tscKhz: 2_500_000 });
  await l.ok('runVcpu', { vmId: 'v' });
  for (const vcpu of [0, 1, 2]) await l.ok('guest', { vmId: 'v', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x1000 * (vcpu + 1) + 1 });
  await l.ok('advanceTime', { ns: 750_000_000 });
  await l.ok('guest', { vmId: 'v', vcpu: 1, op: 'wrmsr', msr: 'MSR_IA32_TSC_ADJUST', value: 1234567 });
  await l.ok('advanceTime', { ns: 400_000_000_000 });
  await l.ok('pauseVcpu', { vmId: 'v' });
  await l.ok('ioctl', { vmId: 'v', vcpu: 2, ioctl: 'KVM_SET_DEVICE_ATTR', arg: { group: 0, attr: 0, value: '18446744073529551616' } });
  await l.ok('ioctl', { vmId: 'v', ioctl: 'KVM_SET_CLOCK', arg: { clock: '5000000000' } });
  await l.ok('adjustRealtime', { hostId: 'h', stepNs: -1_000_000, slewPpm: 12.5 });
  await l.ok('advanceTime', { ns: 3_000_000_000 });
  await l.ok('runVcpu', { vmId: 'v' });
  await l.ok('advanceTime', { ns: 1_000_000 });
}

describe.each(ENGINE_NAMES)('on %s', (engine) => {
  beforeEach(() => {
    l = newLedger(engine);
  });

  describe('replay', () => {
    it('rebuilds every stream exactly as it was live', async () => {
      await busyVm(l);
      await expectReplayEqualsLive(l);
    });

    it('rebuilds the same state in a fresh process-like load (no cache) and through snapshots', async () => {
      await busyVm(l);
      const store = await l.store();
      const live = toJson(rebuildStream(store, 'vm-v').state);
      clearRebuildCache();
      expect(toJson(rebuildStream(store, 'vm-v', {}, { saveSnapshots: false }).state)).toEqual(live);
    });

    it('time travel by position, by version and by instant agree', async () => {
      await busyVm(l);
      const store = await l.store();
      const evs = store.read({ streamId: 'vm-v' });
      const mid = evs[Math.floor(evs.length / 2)]!;
      const byPos = rebuildStream(store, 'vm-v', { position: mid.position });
      const byVer = rebuildStream(store, 'vm-v', { version: mid.version });
      const byTime = rebuildStream(store, 'vm-v', { time: mid.time });
      expect(byPos.version).toBe(mid.version);
      expect(toJson(byVer.state)).toEqual(toJson(byPos.state));
      // By instant: every event at or before that time, which may include later events at the same instant.
      const sameInstant = evs.filter((e) => e.time === mid.time).at(-1)!;
      expect(byTime.version).toBe(sameInstant.version);
    });

    it('stateAt shows what the guest read at a past instant', async () => {
      await l.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
      await l.ok('createVm', { vmId: 'v', hostId: 'h', vcpus: 1 });
      await l.ok('runVcpu', { vmId: 'v' });
      await l.ok('advanceTime', { ns: 2_000_000_000 });
      const r1 = await l.ok('guest', { vmId: 'v', vcpu: 0, op: 'rdtsc' });
      await l.ok('advanceTime', { ns: 5_000_000_000 });
      const past = await l.ok('stateAt', { vmId: 'v', time: '2000000000' });
      expect(past.state.guest.vcpus[0].tsc).toBe(r1.value);
      expect(BigInt(r1.value)).toBe(6_000_000_000n); // 2 s at 3 GHz from a TSC that started at 0 with the VM
    });
  });

  describe('delayed kernel work', () => {
    it('fires at its due instants when time advances, found through the wake index by a fresh session', async () => {
      await l.ok('createHost', { hostId: 'h', tscKhz: 2_000_000 });
      await l.ok('createVm', { vmId: 'a', hostId: 'h', vcpus: 1 });
      await l.ok('createVm', { vmId: 'b', hostId: 'h', vcpus: 1 });
      await l.ok('runVcpu', { vmId: 'a' }); // first entry: KVM_REQ_GLOBAL_CLOCK_UPDATE → update work in 100 ms
      clearRebuildCache();
      await l.ok('advanceTime', { ns: 301_000_000_000 });
      const fired = (await l.ok('events', {})).events.filter((e: { type: string }) => e.type === 'TimerFired');
      // a: update work at 100 ms; both: the 300 s periodic sync (created at t=0)
      expect(fired.map((e: { streamId: string; time: string; data: { timer: string } }) => [e.streamId, e.time, e.data.timer])).toEqual([
        ['vm-a', '100000000', 'kvmclock_update_work'],
        ['vm-a', '300000000000', 'kvmclock_sync_work'],
        ['vm-b', '300000000000', 'kvmclock_sync_work'],
      ]);
      const ev = (await l.ok('events', {})).events;
      const times = ev.map((e: { time: string }) => BigInt(e.time));
      expect(times).toEqual([...times].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
      await expectReplayEqualsLive(l);
    });
  });
});
