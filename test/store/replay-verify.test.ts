// verify's replay finds no difference where there is none: on ledgers written by migrations of
// every kind (x86 and arm64, moves, in-place pauses, refusals, a protected TSC), every snapshot a
// session kept re-derives to the same state, and every wake instant is the one the VM's state
// gives. (A false alarm here would call an honest ledger forged.)
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINE_NAMES, newLedger, type EngineName, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock } from '../helpers/guest-setup.js';

let l: Ledger;
afterEach(() => l.cleanup());

const S = 1_000_000_000;

async function run(vmId: string, hostId: string, vcpus: number, extra: Record<string, unknown> = {}): Promise<void> {
  await l.ok('createVm', { vmId, hostId, vcpus, ...extra });
  await l.ok('runVcpu', { vmId });
  await registerKvmclock(l, vmId, vcpus);
  await l.ok('advanceTime', { ns: 2 * S });
}

describe.each(ENGINE_NAMES)('on %s', (engine: EngineName) => {
  it('a ledger of many kinds of migration verifies intact, its snapshots re-derived by replay', async () => {
    l = newLedger(engine);
    await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000, initialTsc: '600000000000' });
    await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000, initialTsc: '9000000000000' });
    await l.ok('createHost', { hostId: 'fast', tscKhz: 3_500_000, tscScaling: false });
    await l.ok('createHost', { hostId: 'a64', arch: 'arm64', cntfrqHz: '25000000', initialTsc: '1000000000' });
    await run('q', 'src', 2);
    const q = await l.ok('migrate', { vmId: 'q', toHost: 'dst', strategy: 'qemu', blackoutNs: 300_000_000, requestId: 'mq' });
    await l.ok('migrate', { vmId: q.newVmId, toHost: 'src', strategy: 'firecracker@1.12.0', blackoutNs: 2 * S });
    await run('o', 'src', 3);
    await l.ok('migrate', { vmId: 'o', toHost: 'dst', strategy: 'cloud-hypervisor', blackoutNs: 250_000_000 });
    await run('c', 'src', 2);
    expect((await l.ok('migrate', { vmId: 'c', toHost: 'fast', strategy: 'cloud-hypervisor', blackoutNs: 300_000_000 })).status).toBe('failed');
    await l.ok('migrate', { vmId: 'c', inPlace: true, strategy: 'crosvm', blackoutNs: 30 * S });
    await run('s', 'src', 2, { secureTsc: true });
    await l.ok('migrate', { vmId: 's', toHost: 'dst', strategy: 'qemu', blackoutNs: S });
    await l.ok('createVm', { vmId: 'g', hostId: 'a64', vcpus: 2 });
    await l.ok('runVcpu', { vmId: 'g' });
    await l.ok('advanceTime', { ns: 5 * S });
    await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'qemu', blackoutNs: 10 * S });
    await l.ok('advanceTime', { ns: 400 * S });
    const v = await l.ok('verify', {});
    expect(v, v.reason).toMatchObject({ intact: true, coverage: { wakesUnchecked: 0 } });
    // every migration that got as far as verifying kept a snapshot of its destination
    expect(v.coverage.snapshotStates).toBe(v.coverage.snapshots);
    expect(v.coverage.snapshots).toBeGreaterThanOrEqual(6);
    // every stream's wake checked: a VM's against its record, the others (no timers) against none
    expect(v.coverage.wakes).toBe((await l.store()).streams().length);
  });
});
