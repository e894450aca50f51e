// A fork cut in the middle of a migration: the migration is in flight on the fork (neither
// completed nor failed), its audit says so, the fork's clock is its last event's, and the VMs
// the cut migration holds refuse a new migration until it is resolved.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handlers } from '../../handlers/index.js';
import { newLedger, tempDir, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

type Res = Record<string, any>;
const on = (db: string) => ({
  call: async (name: keyof typeof handlers, req: Record<string, unknown>): Promise<Res> =>
    (await (handlers[name] as (r: unknown, c: unknown) => Promise<unknown>)(req, { db })) as Res,
});

/**
 * Two 3 GHz hosts, a 2-vCPU guest run for 5 s, then a qemu migration with a 300 ms blackout and
 * 20 µs per ioctl. The log (positions): 1-9 set-up (9: time to 5 s), 10 MigrationStarted,
 * 11 pausing, 19 saving (5.00006 s), 22 transferring (5.0001 s), 23 BlackoutElapsed, 24 restoring
 * (5.3001 s), 25 VmCreated web.m1, 26 its first KVM_CREATE_VCPU (5.30012 s), ..., 45 MigrationCompleted.
 */
async function recordMigration(): Promise<void> {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
  await l.ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'web' });
  await l.ok('advanceTime', { ns: 5_000_000_000 });
  await l.ok('migrate', { vmId: 'web', toHost: 'b', strategy: 'qemu', blackoutNs: 300_000_000 });
  const evs = (await l.ok('events', { limit: 100 })).events as Res[];
  expect([evs[9]!.type, evs[23]!.data.phase, evs[25]!.data.ioctl, evs[25]!.time, evs[44]!.type]).toEqual([
    'MigrationStarted',
    'restoring',
    'KVM_CREATE_VCPU',
    '5300120000',
    'MigrationCompleted',
  ]);
}

async function forkAt(position: number) {
  const db = join(tempDir(), 'fork.db');
  await l.ok('fork', { position, targetDb: db });
  return on(db);
}

describe('a fork cut in the middle of a migration', () => {
  it("the fork's clock is its last event's time (the ledger's own record of it was cut off)", async () => {
    await recordMigration();
    const f = await forkAt(26);
    expect((await f.call('advanceTime', { ns: 0 })).now).toBe('5300120000');
    expect((await f.call('stateAt', { vmId: 'web' })).at).toBe('5300120000');
    expect((await f.call('advanceTime', { ns: 1000 })).now).toBe('5300121000');
  });
});
