// A fork keeps each VM's pending delayed kernel work: advancing time on the fork fires the same
// timers (the kvmclock sync every 300 s) as advancing the original by the same amount.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(() => {
  closeStores();
  l?.cleanup();
});

async function timersAfter(db: string, from: number): Promise<{ time: string; type: string }[]> {
  const r = (await handlers.events({ from: from + 1, limit: 1000 }, { db })) as Record<string, any>;
  expect(r.ok).toBe(true);
  return (r.events as { time: string; type: string }[]).filter((e) => e.type === 'TimerFired').map((e) => ({ time: e.time, type: e.type }));
}

describe('fork keeps the wake index', () => {
  it('the fork fires the kvmclock sync at the same instants as the original', async () => {
    l = newLedger();
    await l.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'v', hostId: 'h', vcpus: 2 });
    await l.ok('runVcpu', { vmId: 'v' });
    await l.ok('guest', { vmId: 'v', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
    await l.ok('advanceTime', { ns: '10000000000' });
    const cut = (await l.ok('events', { limit: 1 })).lastPosition as number;
    const target = join(l.dir, 'fork.db');
    await l.ok('fork', { position: cut, targetDb: target });

    // 700 s later: the 300 s sync has fallen due twice on both logs
    await l.ok('advanceTime', { ns: '700000000000' });
    const r = (await handlers.advanceTime({ ns: '700000000000' }, { db: target })) as Record<string, any>;
    expect(r.ok).toBe(true);
    const original = await timersAfter(l.db, cut);
    expect(original.length).toBeGreaterThanOrEqual(2);
    expect(await timersAfter(target, cut)).toEqual(original);
  });
});
