// A read of one VM or one migration on PostgreSQL reads only its streams (their latest snapshots
// and the events after them), never the whole log, and answers as the full view does.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeStores } from '../../handlers/context.js';
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
      if (engine === 'postgres') expect(wholeLog).not.toHaveBeenCalled();
      answers.push(out);
      vi.restoreAllMocks();
    }
    expect((answers[0]!.state as { ok: boolean }).ok).toBe(true);
    expect((answers[0]!.audit as { ok: boolean }).ok).toBe(true);
    expect(JSON.stringify(answers[1])).toBe(JSON.stringify(answers[0]));
  });
});
