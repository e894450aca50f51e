// The migrate handler audits from the session it has just committed (its events and kept states
// in memory); a later `audit` reads the log. Across every strategy, hosts of different rates,
// kernels and vendors, failed and in-place migrations, both must give the same report.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { auditMigration } from '../../machines/audit/audit.js';
import { toJson } from '../../machines/codec.js';
import { clearRebuildCache } from '../../machines/rebuild.js';
import { STRATEGIES, STRATEGY_NAMES } from '../../machines/migration/strategies/index.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

describe('the migrate handler’s audit is the log’s audit', () => {
  it('for a mixed fleet of x86 and arm64 migrations, completed, failed and in place', async () => {
    const x86Hosts = [
      { hostId: 'i3000', tscKhz: 3_000_000 },
      { hostId: 'a3400', tscKhz: 3_400_000, vendor: 'svm' },
      { hostId: 'old', tscKhz: 3_000_000, tscScaling: false, kernel: 'linux-6.6' },
      { hostId: 'v515', tscKhz: 2_600_000, kernel: 'linux-5.15' },
    ];
    const armHosts = [
      { hostId: 'arm-a', arch: 'arm64', cntfrqHz: 25_000_000 },
      { hostId: 'arm-b', arch: 'arm64', cntfrqHz: 25_000_000, kernel: 'linux-6.1' },
    ];
    for (const h of [...x86Hosts, ...armHosts]) await l.ok('createHost', h);
    const guests = [
      { vmId: 'x', hosts: x86Hosts.map((h) => h.hostId), arch: 'x86' as const },
      { vmId: 'y', hosts: armHosts.map((h) => h.hostId), arch: 'arm64' as const },
    ];
    for (const g of guests) {
      await l.ok('createVm', { vmId: g.vmId, hostId: g.hosts[0], vcpus: 2 });
      await l.ok('runVcpu', { vmId: g.vmId });
      if (g.arch === 'x86')
        for (const v of [0, 1]) await l.ok('guest', { vmId: g.vmId, vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
    }
    const current: Record<string, { vmId: string; host: number }> = { x: { vmId: 'x', host: 0 }, y: { vmId: 'y', host: 0 } };
    const statuses = new Set<string>();
    for (const [i, strategy] of STRATEGY_NAMES.entries()) {
      for (const g of guests) {
        if (!STRATEGIES[strategy]![g.arch]) continue;
        const c = current[g.vmId]!;
        await l.ok('advanceTime', { ns: 400_000_000 });
        const inPlace = i % 4 === 3;
        const to = (c.host + 1) % g.hosts.length;
        const r = await l.ok('migrate', {
          vmId: c.vmId,
          ...(inPlace ? { inPlace: true } : { toHost: g.hosts[to] }),
          strategy,
          blackoutNs: 200_000_000 + i * 10_000_000,
          writeSpacingNs: i % 3 === 0 ? 1_500_000_000 : 1000,
          preSaveGapNs: 5_000_000,
        });
        statuses.add(`${r.status}${inPlace ? ' in place' : ''}`);
        if (r.status === 'completed' && !inPlace) current[g.vmId] = { vmId: r.newVmId, host: to };
      }
    }
    // the mix covers what the two sources could differ on
    expect(statuses).toContain('completed');
    expect(statuses).toContain('failed');
    expect(statuses).toContain('completed in place');
    expect(l.migrateAudits.length).toBeGreaterThanOrEqual(STRATEGY_NAMES.length);

    // A store of its own and no cached states: the log alone.
    clearRebuildCache();
    const fresh = openEventStore(l.db);
    try {
      for (const { audit } of l.migrateAudits) expect(audit, audit.migrationId).toEqual(toJson(auditMigration(fresh, audit.migrationId)));
    } finally {
      fresh.close();
    }
    expect(storeFor({ db: l.db }).verify().intact).toBe(true);
  });
});
