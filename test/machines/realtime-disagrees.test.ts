// realtime_disagrees: the two hosts' CLOCK_REALTIME read at the same true instant differ by more than
// clockErrorNs. Both hosts here are 3 GHz; host a's realtime is 2026-01-01T00:00:00Z + true time
// (1 767 225 600 000 000 000 ns), host b's the same plus 250 ms. Cloud Hypervisor restores kvmclock
// with KVM_CLOCK_REALTIME, so the kernel adds the 250 ms to kvmclock (warn); Firecracker's flags 0
// reads no realtime (info).
import { afterEach, describe, expect, it } from 'vitest';
import { newLedger, type Ledger } from '../helpers/ledger.js';

const S = 1_000_000_000;
const EPOCH_2026 = 1_767_225_600_000_000_000n;
let l: Ledger;
afterEach(() => l?.cleanup());

async function migrateTo(aheadNs: bigint, strategy: string, extra: Record<string, unknown> = {}) {
  l?.cleanup();
  l = newLedger();
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000, realtimeOffsetNs: EPOCH_2026.toString() });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000, realtimeOffsetNs: (EPOCH_2026 + aheadNs).toString() });
  await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'g' });
  for (const vcpu of [0, 1]) await l.ok('guest', { vmId: 'g', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * vcpu });
  await l.ok('advanceTime', { ns: 2 * S });
  return (await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs: 300_000_000, ...extra })).audit;
}
const found = (audit: any) => audit.findings.filter((f: any) => f.code === 'realtime_disagrees');

describe('realtime_disagrees', () => {
  it('warns when the restore passed KVM_CLOCK_REALTIME, citing that KVM_SET_CLOCK', async () => {
    const audit = await migrateTo(250_000_000n, 'cloud-hypervisor');
    const [f, ...more] = found(audit);
    expect(more).toEqual([]);
    expect(f).toMatchObject({ severity: 'warn' });
    expect(f.message).toBe(
      "host b's CLOCK_REALTIME is 250.000 ms ahead of host a's: " +
        'the restore passed KVM_CLOCK_REALTIME, so kvmclock moved by that difference besides the time that passed',
    );
    const setClock = (await l.ok('events', { streamId: 'vm-g.m1' })).events.filter((e: any) => e.data.ioctl === 'KVM_SET_CLOCK');
    expect(setClock.map((e: any) => e.data.arg.flags)).toEqual([4]);
    expect(f.positions).toEqual([setClock[0].position]);
    // the 250 ms reached kvmclock: it advanced by about the 300 ms blackout plus 250 ms
    expect(BigInt(audit.kvmclock.errorNs) > 249_000_000n).toBe(true);
  });

  it('is information when nothing read realtime (Firecracker, flags 0), and says which way the hosts disagree', async () => {
    const [f] = found(await migrateTo(-2_000_000n, 'firecracker'));
    expect(f).toMatchObject({ severity: 'info', positions: [] });
    expect(f.message).toMatch(/^host b's CLOCK_REALTIME is 2\.000 ms behind host a's: nothing in this migration's restore read it/);
  });

  it('is silent within clockErrorNs (1 ms by default, or as the request sets it), and for a migration in place', async () => {
    expect(found(await migrateTo(1_000_000n, 'cloud-hypervisor'))).toEqual([]);
    expect(found(await migrateTo(1_000_001n, 'cloud-hypervisor'))).toHaveLength(1);
    const wide = await l.ok('audit', { migrationId: 'm1', thresholds: { clockErrorNs: '1000001' } });
    expect(found(wide.audit)).toEqual([]);
    l.cleanup();
    l = newLedger();
    await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'g' });
    expect(found((await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'cloud-hypervisor', blackoutNs: S })).audit)).toEqual([]);
  });
});
