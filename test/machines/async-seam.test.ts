// The store seam for an asynchronous engine: a decision made from states loaded ahead (and, for
// what was not loaded, after a NeedsStreams restart) records exactly the events, byte for byte
// and hash for hash, that the same decision records on the synchronous store.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { runMigration, nextMigrationId } from '../../machines/migration/run.js';
import { asyncLogPort, NeedsStreams, withSession, type Need, type Session } from '../../machines/session/index.js';
import { CODE_VERSION } from '../../machines/version.js';
import { vmStreamId } from '../../machines/vm/events.js';
import { vcpusOf } from '../../machines/vm/evolve.js';
import { asyncWrapper } from '../helpers/async-store.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

const S = 1_000_000_000n;
let direct: Ledger;
let loaded: Ledger;

async function guest(l: Ledger): Promise<void> {
  await l.ok('createHost', { hostId: 'src', tscKhz: 2_000_000 });
  await l.ok('createHost', { hostId: 'dst', tscKhz: 3_000_000 });
  await l.ok('createVm', { vmId: 'q', hostId: 'src', vcpus: 2 });
  await l.ok('runVcpu', { vmId: 'q' });
  for (const vcpu of [0, 1]) await l.ok('guest', { vmId: 'q', vcpu, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10000 + 0x1000 * vcpu + 1 });
  await l.ok('advanceTime', { ns: (2n * S).toString() });
}

beforeEach(async () => {
  direct = newLedger();
  loaded = newLedger();
  await guest(direct);
  await guest(loaded);
});
afterEach(() => {
  direct.cleanup();
  loaded.cleanup();
});

const migrate = (s: Session) => {
  const migrationId = nextMigrationId(s);
  return runMigration(s, {
    migrationId,
    vmId: 'q',
    newVmId: `q.${migrationId}`,
    fromHost: 'src',
    toHost: 'dst',
    strategy: 'qemu',
    blackoutNs: 300_000_000n,
    vmmLatencyNs: 50_000n,
    readSpacingNs: 1000n,
    writeSpacingNs: 2000n,
    preSaveGapNs: 0n,
    options: {},
  });
};
// 700 s: the destination's kvmclock sync (every 300 s) fires twice, found through the wake index
const later = (s: Session) => s.advanceTime(700n * S);
const respond = (v: unknown, written: { position: number }[]) => ({ v, positions: written.map((w) => w.position) });
const rows = (l: Ledger) =>
  storeFor({ db: l.db })
    .read()
    .map((e) => ({ ...e }));

describe('deciding from states loaded ahead (an asynchronous engine)', () => {
  it('a migration and the timers after it record the same events as on the synchronous store, through NeedsStreams restarts', async () => {
    const meta = (n: number) => ({ handler: 'migrate', requestId: `r${n}`, correlationId: `r${n}` });
    const a1 = await withSession(storeFor({ db: direct.db }), meta(1), migrate, respond);
    const a2 = await withSession(storeFor({ db: direct.db }), meta(2), later, respond);

    const engine = asyncWrapper(storeFor({ db: loaded.db }));
    const port = asyncLogPort(engine);
    let attempts = 0;
    const counted =
      <T>(work: (s: Session) => T) =>
      (s: Session) => (attempts++, work(s));
    const b1 = await withSession(port, meta(1), counted(migrate), respond);
    const migrateAttempts = attempts;
    const b2 = await withSession(port, meta(2), counted(later), respond);

    // (nothing was loaded beyond the ledger, the last event and the VMs due: the migration's
    // reads were named one restart at a time: the migration count, its id, the VM, the hosts, ...)
    expect(migrateAttempts).toBeGreaterThan(3);
    expect(b1).toEqual(a1);
    expect(b2).toEqual(a2);
    expect((b1.response as { v: { status: string } }).v.status).toBe('completed');
    const a = rows(direct);
    const b = rows(loaded);
    expect(b.length).toBe(a.length);
    // the later session fired the destination's delayed works, found through the wake index: the
    // kvmclock update (100 ms after its clock was set up), then the kvmclock sync twice, 300 s apart
    const fired = a.filter((e) => e.type === 'TimerFired' && e.streamId === vmStreamId('q.m1'));
    expect(fired.map((e) => (e.data as { timer: string }).timer)).toEqual(['kvmclock_update_work', 'kvmclock_sync_work', 'kvmclock_sync_work']);
    expect(fired[2]!.time - fired[1]!.time).toBe(300n * S);
    expect(b).toEqual(a);
    // the chain heads agree: the same bytes were hashed
    expect(storeFor({ db: loaded.db }).verify().head).toEqual(storeFor({ db: direct.db }).verify().head);
    // the destination's state kept at the migration's verifying phase is the same snapshot
    const snap = (l: Ledger) => storeFor({ db: l.db }).latestSnapshot(vmStreamId('q.m1'), CODE_VERSION);
    expect(snap(loaded)).toBeDefined();
    expect(snap(loaded)!.state.equals(snap(direct)!.state)).toBe(true);
    // a retried request id answers from the log on either side
    const again = await withSession(port, meta(1), counted(migrate), respond);
    expect(again).toEqual({ response: a1.response, duplicate: true });
  });

  it('what the caller names is loaded ahead: fewer restarts, the same events', async () => {
    await withSession(storeFor({ db: direct.db }), { handler: 'migrate' }, migrate, respond);
    const names: Need[] = [
      { kind: 'category', category: 'migration' },
      { kind: 'stream', streamId: 'migration-m1' },
      { kind: 'stream', streamId: vmStreamId('q') },
      { kind: 'stream', streamId: vmStreamId('q.m1') },
      { kind: 'stream', streamId: 'host-src' },
      { kind: 'stream', streamId: 'host-dst' },
      { kind: 'open', prefix: 'migration-', endTypes: ['MigrationCompleted', 'MigrationFailed'] },
    ];
    let attempts = 0;
    const port = asyncLogPort(asyncWrapper(storeFor({ db: loaded.db })));
    await withSession(port, { handler: 'migrate' }, (s) => (attempts++, migrate(s)), respond, undefined, names);
    expect(attempts).toBe(1);
    expect(rows(loaded)).toEqual(rows(direct));
  });

  it('a decision that catches the signal is still thrown away and decided again', async () => {
    let attempts = 0;
    const port = asyncLogPort(asyncWrapper(storeFor({ db: loaded.db })));
    const r = await withSession(
      port,
      { handler: 't' },
      (s) => {
        attempts++;
        try {
          return vcpusOf(s.requireVm('q')).length;
        } catch (e) {
          expect(e).toBeInstanceOf(NeedsStreams);
          return -1; // a wrong answer the retry loop must not commit
        }
      },
      (v) => ({ v }),
    );
    expect(attempts).toBe(2);
    expect(r.response).toEqual({ v: 2 });
  });

  it('a decision that lost a race is loaded again and decided at the new time', async () => {
    let raced = false;
    const engine = asyncWrapper(storeFor({ db: loaded.db }), async () => {
      if (raced) return;
      raced = true;
      // another process moves time on by 10 s between this session's reads and its commit
      const other = openEventStore(loaded.db);
      try {
        await withSession(
          other,
          { handler: 'other' },
          (s) => s.advanceTime(10n * S),
          () => ({}),
        );
      } finally {
        other.close();
      }
    });
    let attempts = 0;
    const r = await withSession(
      asyncLogPort(engine),
      { handler: 't' },
      (s) => (attempts++, s.vmCommand('q', { type: 'guest', vcpu: 0, op: 'rdtsc' }).event.type),
      (v) => ({ v }),
    );
    expect(r.response).toEqual({ v: 'GuestExecuted' });
    // two restarts to load the VM and then its host, one decision at 2 s refused at commit (the
    // ledger moved), and one at 12 s from everything loaded again (no restart needed)
    expect(engine.calls.commit).toBe(2);
    expect(attempts).toBe(4);
    const evs = storeFor({ db: loaded.db }).read();
    expect(evs.at(-1)!.type).toBe('GuestExecuted');
    expect(evs.at(-1)!.time).toBe(12n * S);
    expect(evs.at(-2)).toMatchObject({ streamId: 'ledger', type: 'TimeAdvanced', time: 12n * S });
  });
});
