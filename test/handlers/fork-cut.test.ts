// A fork cut in the middle of a migration: the migration is in flight on the fork (neither
// completed nor failed), its audit says so, the fork's clock is its last event's, and the VMs
// the cut migration holds refuse a new migration until it is resolved.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handlers } from '../../handlers/index.js';
import { ENGINE_NAMES, newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(() => l.cleanup());

type Res = Record<string, any>;
const on = (db: string) => ({
  call: async (name: keyof typeof handlers, req: Record<string, unknown>): Promise<Res> =>
    (await (handlers[name] as (r: unknown, c: unknown) => Promise<unknown>)(req, { db })) as Res,
});

/**
 * Two 3 GHz hosts, a 2-vCPU guest run for 5 s, then a qemu migration with a 300 ms blackout and
 * 20 µs per ioctl. The log (positions): 1-9 set-up (9: time to 5 s), 10 MigrationStarted,
 * 11 pausing, 19 saving (5.00006 s: two TSC pins and KVM_GET_CLOCK), 24 transferring (5.00014 s:
 * the other MSRs of two vCPUs, KVM_GET_CLOCK, KVM_GET_TSC_KHZ), 25 BlackoutElapsed, 26 restoring
 * (5.30014 s), 27 VmCreated web.m1, 28 its first KVM_CREATE_VCPU (5.30016 s), ..., 47 MigrationCompleted.
 */
async function recordMigration(): Promise<void> {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
  await l.ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'web' });
  await l.ok('advanceTime', { ns: 5_000_000_000 });
  await l.ok('migrate', { vmId: 'web', toHost: 'b', strategy: 'qemu', blackoutNs: 300_000_000 });
  const evs = (await l.ok('events', { limit: 100 })).events as Res[];
  expect([evs[9]!.type, evs[25]!.data.phase, evs[27]!.data.ioctl, evs[27]!.time, evs[46]!.type]).toEqual([
    'MigrationStarted',
    'restoring',
    'KVM_CREATE_VCPU',
    '5300160000',
    'MigrationCompleted',
  ]);
}

async function forkAt(position: number) {
  const db = l.fresh();
  await l.ok('fork', { position, targetDb: db });
  return on(db);
}

describe.each(ENGINE_NAMES)('on %s', (engine) => {
  beforeEach(() => {
    l = newLedger(engine);
  });

  describe('a fork cut in the middle of a migration', () => {
    it('audits the cut migration as in flight, not pass, with the summary counting it apart', async () => {
      await recordMigration();
      const f = await forkAt(28);
      const one = await f.call('audit', { migrationId: 'm1' });
      expect(one.ok).toBe(true);
      expect(one.audit.status).toBe('running');
      expect(one.audit.verdict).toBe('in_flight');
      const inFlight = one.audit.findings.filter((x: Res) => x.code === 'migration_in_flight');
      expect(inFlight).toHaveLength(1);
      // cites the migration's last recorded event: the restoring phase at 26
      expect(inFlight[0].positions).toEqual([26]);
      expect(inFlight[0].message).toContain('restoring');
      // the stop began at 5 s; nothing after it is judged (no resume)
      expect(one.audit.stopTime).toBe('5000000000');
      expect(one.audit.vcpus[0].tscBefore).toBe('15000000000');
      const all = await f.call('audit', {});
      expect(all.ok).toBe(true);
      expect(all.summary).toEqual({ pass: 0, warn: 0, fail: 0, inFlight: 1 });
      // the original still audits its completed migration
      expect((await l.ok('audit', {})).summary).toEqual({ pass: 0, warn: 1, fail: 0, inFlight: 0 });
    });

    it('audits a migration cut right after it started (no phase yet) as in flight, not an internal error', async () => {
      await recordMigration();
      const f = await forkAt(10);
      const all = await f.call('audit', {});
      expect(all.ok).toBe(true);
      expect(all.audits[0].verdict).toBe('in_flight');
      expect(all.audits[0].stopTime).toBe('5000000000');
      expect(all.audits[0].vcpus.map((v: Res) => v.tscBefore)).toEqual(['15000000000', '15000000000']);
      expect(all.audits[0].findings.find((x: Res) => x.code === 'migration_in_flight').positions).toEqual([10]);
      expect(all.summary).toEqual({ pass: 0, warn: 0, fail: 0, inFlight: 1 });
    });

    it("the fork's clock is its last event's time (the ledger's own record of it was cut off)", async () => {
      await recordMigration();
      const f = await forkAt(28);
      expect((await f.call('advanceTime', { ns: 0 })).now).toBe('5300160000');
      expect((await f.call('stateAt', { vmId: 'web' })).at).toBe('5300160000');
      expect((await f.call('advanceTime', { ns: 1000 })).now).toBe('5300161000');
    });

    it('refuses a new migration of the source or the destination of the cut migration, naming it; other VMs migrate after the cut', async () => {
      await recordMigration();
      const f = await forkAt(28);
      const before = (await f.call('events', { limit: 1000 })).lastPosition;
      for (const vmId of ['web', 'web.m1']) {
        const r = await f.call('migrate', { vmId, toHost: 'b', strategy: 'qemu', blackoutNs: 300_000_000 });
        expect(r.ok, vmId).toBe(false);
        expect(r.error.code).toBe('invalid_state');
        expect(r.error.message).toContain("migration 'm1'");
        expect(r.error.details).toMatchObject({ vmId, migrationId: 'm1', phase: 'restoring' });
      }
      expect((await f.call('events', { limit: 1000 })).lastPosition).toBe(before);
      // another guest on the fork migrates, stamped after the fork's last event
      expect((await f.call('createVm', { vmId: 'db', hostId: 'a', vcpus: 1 })).ok).toBe(true);
      expect((await f.call('runVcpu', { vmId: 'db' })).ok).toBe(true);
      const m = await f.call('migrate', { vmId: 'db', toHost: 'b', strategy: 'qemu', blackoutNs: 300_000_000 });
      expect(m.ok).toBe(true);
      expect(m.migrationId).toBe('m2');
      expect(m.audit.stopTime).toBe('5300160000');
    });
  });
});
