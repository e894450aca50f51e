// A read of one VM or one migration on PostgreSQL reads only its streams (their latest snapshots
// and the events after them), never the whole log, and answers as the full view does.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeStores, pgStoreFor } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { clearRebuildCache } from '../../machines/rebuild.js';
import { PgEventStore } from '../../store/postgres-event-store.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

const ledgers: Ledger[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await closeStores();
  for (const l of ledgers.splice(0)) l.cleanup();
});

describe('scoped reads on PostgreSQL', () => {
  it('stateAt and the audit of one migration read their streams, not the log; the answers are those on SQLite', async () => {
    const answers: Record<string, unknown>[] = [];
    for (const engine of ['sqlite', 'postgres'] as const) {
      const l = newLedger(engine);
      ledgers.push(l);
      await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
      await l.ok('createHost', { hostId: 'dst', tscKhz: 2_600_000, vendor: 'svm' });
      await l.ok('createVm', { vmId: 'web', hostId: 'src', vcpus: 2 });
      await l.ok('createVm', { vmId: 'other', hostId: 'src', vcpus: 1 });
      await l.ok('runVcpu', { vmId: 'web' });
      await l.ok('runVcpu', { vmId: 'other' });
      // past a snapshot of the VM stream (every 100 versions)
      for (let i = 0; i < 130; i++) await l.ok('guest', { vmId: 'web', vcpu: i % 2, op: 'rdtsc' });
      await l.ok('advanceTime', { ns: '1000000000' });
      await l.ok('migrate', { vmId: 'web', toHost: 'dst', strategy: 'qemu', blackoutNs: '100000000' });
      await closeStores();
      clearRebuildCache();
      const wholeLog = vi.spyOn(PgEventStore.prototype, 'rowsAfter');
      const out: Record<string, unknown> = {};
      out.state = await l.call('stateAt', { vmId: 'web', version: 117 });
      out.now = await l.call('stateAt', { vmId: 'web.m1' });
      out.audit = await l.call('audit', { migrationId: 'm1' });
      out.vms = await l.call('listVms', {});
      // a handler's own refusal inside the scoped read keeps its code
      out.missingVm = await l.call('stateAt', { vmId: 'nope' });
      out.missingMigration = await l.call('audit', { migrationId: 'm9' });
      if (engine === 'postgres') expect(wholeLog).not.toHaveBeenCalled();
      answers.push(out);
      vi.restoreAllMocks();
    }
    expect((answers[0]!.state as { ok: boolean }).ok).toBe(true);
    expect((answers[0]!.audit as { ok: boolean }).ok).toBe(true);
    expect(answers[0]!.missingVm).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(answers[0]!.missingMigration).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(JSON.stringify(answers[1])).toBe(JSON.stringify(answers[0]));
  });

  it('each stream a rebuild reads comes in one statement: a stateAt at a version in 6 round trips, an audit in 14', async () => {
    const l = newLedger('postgres');
    ledgers.push(l);
    await l.ok('createHost', { hostId: 'src', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'dst', tscKhz: 2_600_000, vendor: 'svm' });
    await l.ok('createVm', { vmId: 'web', hostId: 'src', vcpus: 2 });
    await l.ok('runVcpu', { vmId: 'web' });
    for (let i = 0; i < 130; i++) await l.ok('guest', { vmId: 'web', vcpu: i % 2, op: 'rdtsc' });
    await l.ok('advanceTime', { ns: '1000000000' });
    await l.ok('migrate', { vmId: 'web', toHost: 'dst', strategy: 'qemu', blackoutNs: '100000000' });
    await closeStores();
    clearRebuildCache();
    const trips = async (name: 'stateAt' | 'audit', req: Record<string, unknown>) => {
      const store = await pgStoreFor(l.db, 'read');
      const before = store.roundTrips;
      await l.ok(name, req);
      return store.roundTrips - before;
    };
    // BEGIN; the VM's version (its bundle: version, latest snapshot, events after it); the VM at
    // version 117 (position, snapshot below it, events up to it, the event there); the position
    // at the instant of that event; the host up to it; ROLLBACK. (Each question alone, a round
    // trip and a rerun each: 10.)
    expect(await trips('stateAt', { vmId: 'web', version: 117 })).toBe(6);
    clearRebuildCache();
    // (each question alone: 29)
    expect(await trips('audit', { migrationId: 'm1' })).toBe(14);
  });

  it('a scoped read is taken in one snapshot of the database: a commit between its statements does not show', async () => {
    const l = newLedger('postgres');
    ledgers.push(l);
    await l.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'v', hostId: 'h', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'v' });
    await l.ok('advanceTime', { ns: '1000' });
    await closeStores();
    clearRebuildCache();
    const before = await l.ok('stateAt', { vmId: 'v' });
    await closeStores();
    clearRebuildCache();
    // another writer (a store of its own) advances the clock right after the read's first statement
    const writer = `${l.db}&application_name=other_writer`;
    const real = PgEventStore.prototype.streamBundle;
    let wrote = false;
    vi.spyOn(PgEventStore.prototype, 'streamBundle').mockImplementation(async function (this: PgEventStore, ...args) {
      const r = await real.apply(this, args);
      if (!wrote) {
        wrote = true;
        expect((await handlers.advanceTime({ ns: '5000' }, { db: writer })).ok).toBe(true);
      }
      return r;
    });
    const during = await l.ok('stateAt', { vmId: 'v' });
    expect(wrote).toBe(true);
    expect(during).toEqual(before);
    vi.restoreAllMocks();
    const after = await l.ok('stateAt', { vmId: 'v' });
    expect(after.at).not.toEqual(before.at);
  });
});
