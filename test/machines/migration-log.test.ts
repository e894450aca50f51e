// The log a migration writes, event by event: stream, version, type, data and time of every event
// of a set of migrations (completed, refused at several steps, in place, arm64, a zero blackout)
// compared with a golden file. How the migration is driven may change; what it records may not.
// Regenerate (only for a deliberate change of the log): CLOCKLEDGER_UPDATE_GOLDEN=1 npx vitest run test/machines/migration-log.test.ts
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { goldenText } from '../helpers/golden.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock } from '../helpers/guest-setup.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/migration-log.golden.json');
const S = 1_000_000_000n;

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

async function x86Vm(vmId: string, hostId: string, vcpus: number) {
  await l.ok('createVm', { vmId, hostId, vcpus });
  await l.ok('runVcpu', { vmId });
  await registerKvmclock(l, vmId, vcpus);
  await l.ok('advanceTime', { ns: (2n * S).toString() });
}

async function scenario(): Promise<Record<string, unknown>[]> {
  const outcomes: Record<string, unknown>[] = [];
  const migrate = async (req: Record<string, unknown>) => {
    const r = await l.ok('migrate', req);
    outcomes.push({ migrationId: r.migrationId, status: r.status, newVmId: r.newVmId, failure: r.audit.failure ?? null });
    return r;
  };
  await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000, initialTsc: '600000000000' });
  await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000, initialTsc: '9000000000000' });
  await l.ok('createHost', { hostId: 'fast', tscKhz: 3_500_000, tscScaling: false });
  await l.ok('createHost', { hostId: 'old', tscKhz: 2_000_000, kernel: 'linux-5.15' });
  await l.ok('createHost', { hostId: 'a64', arch: 'arm64', cntfrqHz: '25000000', initialTsc: '1000000000' });
  await l.ok('createHost', { hostId: 'ghz', arch: 'arm64', cntfrqHz: '1000000000' });

  await x86Vm('q', 'src', 2);
  const q = await migrate({ vmId: 'q', toHost: 'dst', strategy: 'qemu', blackoutNs: 300_000_000, readSpacingNs: 1000, writeSpacingNs: 2000 });
  await migrate({ vmId: q.newVmId, toHost: 'src', strategy: 'firecracker', blackoutNs: (2n * S).toString() });
  await x86Vm('o', 'src', 3);
  const o = await migrate({ vmId: 'o', toHost: 'dst', strategy: 'offset-corrected', blackoutNs: 250_000_000, vmmLatencyNs: 0 });
  await migrate({ vmId: o.newVmId, toHost: 'src', strategy: 'offset-documented', blackoutNs: 0 });
  // refused at restore (no TSC scaling to a faster host): the destination is torn down
  await x86Vm('c', 'src', 2);
  await migrate({ vmId: 'c', toHost: 'fast', strategy: 'cloud-hypervisor', blackoutNs: 300_000_000 });
  await migrate({ vmId: 'c', toHost: 'fast', strategy: 'qemu', blackoutNs: 300_000_000 });
  // in place: a stop/cont, and one refused at save (5.15 gives no host_tsc/realtime pair)
  await migrate({ vmId: 'c', inPlace: true, strategy: 'crosvm', blackoutNs: (30n * S).toString() });
  await x86Vm('p', 'old', 2);
  await migrate({ vmId: 'p', inPlace: true, strategy: 'offset-documented', blackoutNs: 300_000_000 });
  // arm64: a move, an in-place pause and a refusal at restore
  await l.ok('createVm', { vmId: 'g', hostId: 'a64', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'g' });
  await l.ok('advanceTime', { ns: (5n * S).toString() });
  await migrate({ vmId: 'g', inPlace: true, strategy: 'qemu', blackoutNs: (10n * S).toString(), vmmLatencyNs: 0 });
  await migrate({ vmId: 'g', toHost: 'ghz', strategy: 'cloud-hypervisor', blackoutNs: (60n * S).toString() });
  await migrate({ vmId: 'g', toHost: 'a64', newVmId: 'g2', strategy: 'counter-offset', blackoutNs: S.toString() });
  return outcomes;
}

describe('the log of migrations', () => {
  it('is, event for event, the golden log (type, data and time in order, on every stream)', async () => {
    const outcomes = await scenario();
    const events = storeFor({ db: l.db })
      .read()
      .map((e) => ({ position: e.position, streamId: e.streamId, version: e.version, type: e.type, time: e.time.toString(), data: e.data }));
    const got = JSON.parse(JSON.stringify({ outcomes, events }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    const golden = JSON.parse(goldenText(GOLDEN, `${JSON.stringify(got, null, 1)}\n`));
    // the scenario covers what it claims to: completed, refused at restore and at save, in place
    expect(golden.outcomes.map((o: { status: string; failure: { step: string } | null }) => `${o.status}${o.failure ? `:${o.failure.step}` : ''}`)).toEqual([
      'completed',
      'completed',
      'completed',
      'completed',
      'failed:restore',
      'failed:restore',
      'completed',
      'failed:save',
      'completed',
      'failed:restore',
      'completed',
    ]);
    expect(got.outcomes).toEqual(golden.outcomes);
    expect(got.events.length).toBe(golden.events.length);
    for (let i = 0; i < golden.events.length; i++) expect(got.events[i], `event ${i}`).toEqual(golden.events[i]);
  });
});

describe('a blackout beyond 2^53 ns', () => {
  it('elapses exactly: BlackoutElapsed and the restore phase carry the u64 to the nanosecond', async () => {
    const blackout = (1n << 53n) + 1n; // 9007199254740993 ns (104 days); as a double it is ...992
    await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'v', hostId: 'src', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'v' });
    const r = await l.ok('migrate', { vmId: 'v', toHost: 'dst', strategy: 'offset-documented', blackoutNs: blackout.toString(), vmmLatencyNs: 0 });
    expect(r.status).toBe('completed');
    const log = storeFor({ db: l.db }).read({ streamId: `migration-${r.migrationId}` });
    const at = (type: string, phase?: string) => log.find((e) => e.type === type && (phase === undefined || (e.data as { phase?: string }).phase === phase))!;
    expect(at('BlackoutElapsed').data).toEqual({ ns: '9007199254740993' });
    expect(at('BlackoutElapsed').time - at('MigrationPhaseEntered', 'transferring').time).toBe(blackout);
    expect(at('MigrationPhaseEntered', 'restoring').time).toBe(at('BlackoutElapsed').time);
  });
});
