// Tampering with a ledger behind the store's back, as someone with write access to the file (or the
// schema) can: every table a read or a retry trusts is either checked against the events by
// verify, or covered by the head an anchor keeps. The seeded ledger: hosts a and b (3 GHz), VM web
// (2 vCPUs) run for 1 s, then migrated to b as web.m1 (qemu, 100 ms blackout), each request with
// an id. Every read runs as a fresh process would (no store or rebuilt state kept from before).
import { createHash } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { clearRebuildCache } from '../../machines/rebuild.js';
import { ENGINE_NAMES, newLedger, type EngineName, type Ledger } from '../helpers/ledger.js';
import { postgres, sqlite, type Engine } from './engines.js';

type R = Record<string, any>;
let L: Ledger;
let E: Engine;
const warnings: string[] = [];
const onWarning = (w: Error & { code?: string }) => {
  if (w.code === 'CLOCKLEDGER_SNAPSHOT_REJECTED') warnings.push(w.message);
};

/** As a new process: no open store, no rebuilt state held. */
async function fresh(): Promise<void> {
  await closeStores();
  clearRebuildCache();
}

async function call(name: Parameters<Ledger['call']>[0], request: Record<string, unknown>, db = L.db): Promise<R> {
  await fresh();
  const { handlers } = await import('../../handlers/index.js');
  return (await (handlers[name] as (r: unknown, c: unknown) => Promise<unknown>)(request, { db })) as R;
}

async function ok(name: Parameters<Ledger['call']>[0], request: Record<string, unknown>, db = L.db): Promise<R> {
  const r = await call(name, request, db);
  if (!r.ok) throw new Error(`${name} failed: ${JSON.stringify(r.error)}`);
  return r;
}

async function seed(): Promise<void> {
  await ok('createHost', { hostId: 'a', tscKhz: 3_000_000, requestId: 'h1' });
  await ok('createHost', { hostId: 'b', tscKhz: 3_000_000, requestId: 'h2' });
  await ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 2, requestId: 'v1' });
  await ok('runVcpu', { vmId: 'web', requestId: 'r1' });
  await ok('advanceTime', { ns: 1_000_000_000, requestId: 'a1' });
  await ok('migrate', { vmId: 'web', toHost: 'b', strategy: 'qemu', blackoutNs: 100_000_000, newVmId: 'web.m1', migrationId: 'm1', requestId: 'm1' });
}

/** A clean copy of the seeded ledger (a fork of all of it), to compare what the tampered one answers with. */
async function cleanCopy(): Promise<string> {
  const target = L.fresh();
  await ok('fork', { position: (await ok('events', { limit: 1 })).lastPosition, targetDb: target });
  return target;
}

async function lastPosition(db = L.db): Promise<number> {
  return (await ok('events', { limit: 1 }, db)).lastPosition as number;
}

interface SnapRow {
  state: Buffer;
  code_version: string;
  chain_hash: string;
  binding: string;
  position: number;
  version: number;
}

async function webSnapshot(): Promise<SnapRow> {
  const rows = await E.query<SnapRow>(L.db, "SELECT state, code_version, chain_hash, binding, position, version FROM snapshots WHERE stream_id = 'vm-web.m1'");
  expect(rows).toHaveLength(1);
  return { ...rows[0]!, position: Number(rows[0]!.position) };
}

/** The binding as docs/guide.md ("What verify checks") defines it, computed here without the store's code. */
function bindingOf(streamId: string, s: SnapRow, state: Buffer): string {
  const stateHash = createHash('sha256').update(state).digest('hex');
  return createHash('sha256').update(`snapshot\n${streamId}\n${s.version}\n${s.position}\n${s.code_version}\n${s.chain_hash}\n${stateHash}`).digest('hex');
}

/** The web.m1 snapshot's state with vCPU 0's L1 TSC offset forged to 12345. */
function forgedState(s: SnapRow): Buffer {
  const st = deserialize(s.state) as { x86: { vcpus: { l1TscOffset: bigint }[] } };
  st.x86.vcpus[0]!.l1TscOffset = 12345n;
  return serialize(st);
}

const offsetOf = (state: R) => state.state.kvm.vcpus[0].l1TscOffset as string;

describe.each(ENGINE_NAMES)('on %s', (engine: EngineName) => {
  beforeEach(async () => {
    L = newLedger(engine);
    E = engine === 'sqlite' ? sqlite : postgres;
    warnings.length = 0;
    process.on('warning', onWarning);
    await seed();
  });
  afterEach(async () => {
    process.off('warning', onWarning);
    await fresh();
    L.cleanup();
  });

  it('the seeded ledger verifies intact, its snapshot re-derived by replay and every wake checked', async () => {
    const v = await ok('verify', {});
    expect(v).toMatchObject({ intact: true, coverage: { requests: 6, snapshots: 1, snapshotStates: 1, wakesUnchecked: 0 } });
    expect(v.head.requests.seq).toBe(6);
    expect((await webSnapshot()).version).toBe(16);
  });

  describe('1. snapshots are bound to their place in the log', () => {
    it('a forged state (binding kept) fails verify; reads and writes rebuild from the events and say so', async () => {
      const clean = await cleanCopy();
      const s = await webSnapshot();
      expect(await E.exec(L.db, "UPDATE snapshots SET state = $1 WHERE stream_id = 'vm-web.m1'", [forgedState(s)])).toBe(1);
      expect(await ok('verify', {})).toMatchObject({ intact: false, table: 'snapshots', firstBrokenPosition: s.position });
      // stateAt answers the offset the events give, not the forged one
      const st = await ok('stateAt', { vmId: 'web.m1' });
      expect(offsetOf(st)).toBe(offsetOf(await ok('stateAt', { vmId: 'web.m1' }, clean)));
      expect(offsetOf(st)).not.toBe('12345');
      // a writer records the value the clean copy records
      const g = await ok('guest', { vmId: 'web.m1', vcpu: 0, op: 'rdtsc' });
      expect(g.value).toBe((await ok('guest', { vmId: 'web.m1', vcpu: 0, op: 'rdtsc' }, clean)).value);
      await new Promise((r) => setImmediate(r)); // (a process warning is emitted on the next tick)
      expect(
        warnings.some((w) => w.includes('vm-web.m1 at version 16') && w.includes('does not match its binding')),
        warnings.join('\n'),
      ).toBe(true);
    });

    it('a forged state with its binding recomputed is used by reads, and verify proves it forged by replay', async () => {
      const clean = await cleanCopy();
      const s = await webSnapshot();
      const state = forgedState(s);
      await E.exec(L.db, "UPDATE snapshots SET state = $1, binding = $2 WHERE stream_id = 'vm-web.m1'", [state, bindingOf('vm-web.m1', s, state)]);
      // the binding alone cannot tell: whoever writes the file recomputes it
      expect(await ok('verify', { replay: false })).toMatchObject({ intact: true, coverage: { snapshots: 1, snapshotStates: 0 } });
      const trueOffset = BigInt(offsetOf(await ok('stateAt', { vmId: 'web.m1' }, clean)));
      // (on PostgreSQL too: a read of one VM starts from its latest bound snapshot, as a writer does)
      expect(offsetOf(await ok('stateAt', { vmId: 'web.m1' }))).toBe('12345');
      // the guest's TSC moves by the forged offset less the true one: hand-worked from the clean offset
      const truth = BigInt((await ok('guest', { vmId: 'web.m1', vcpu: 0, op: 'rdtsc' }, clean)).value);
      const forged = BigInt((await ok('guest', { vmId: 'web.m1', vcpu: 0, op: 'rdtsc' })).value);
      expect(forged).toBe((truth - trueOffset + 12345n) & ((1n << 64n) - 1n));
      // replay proves the snapshot is not the state its events give
      const v = await ok('verify', {});
      expect(v).toMatchObject({ intact: false, table: 'snapshots', firstBrokenPosition: s.position, coverage: { snapshotStates: 1 } });
      expect(v.reason).toContain('x86.vcpus.0.l1TscOffset: 12345n in the snapshot');
    });

    it('garbage snapshot bytes: stateAt, listVms, audit and guest answer from the events, and verify names the snapshot', async () => {
      const clean = await cleanCopy();
      await E.exec(L.db, "UPDATE snapshots SET state = $1 WHERE stream_id = 'vm-web.m1'", [Buffer.from('not a state')]);
      expect((await ok('stateAt', { vmId: 'web.m1' })).state).toEqual((await ok('stateAt', { vmId: 'web.m1' }, clean)).state);
      expect((await ok('listVms', {})).vms).toEqual((await ok('listVms', {}, clean)).vms);
      expect((await ok('audit', { migrationId: 'm1' })).audit).toEqual((await ok('audit', { migrationId: 'm1' }, clean)).audit);
      const rdtsc1 = { vmId: 'web.m1', vcpu: 1, op: 'rdtsc' };
      expect((await ok('guest', rdtsc1)).value).toBe((await ok('guest', rdtsc1, clean)).value);
      expect(await ok('verify', {})).toMatchObject({ intact: false, table: 'snapshots' });
    });

    it('garbage bytes with a recomputed binding are not decoded into a state: the events answer', async () => {
      const clean = await cleanCopy();
      const s = await webSnapshot();
      const junk = Buffer.from('not a state');
      await E.exec(L.db, "UPDATE snapshots SET state = $1, binding = $2 WHERE stream_id = 'vm-web.m1'", [junk, bindingOf('vm-web.m1', s, junk)]);
      expect((await ok('stateAt', { vmId: 'web.m1' })).state).toEqual((await ok('stateAt', { vmId: 'web.m1' }, clean)).state);
      const rdtsc0 = { vmId: 'web.m1', vcpu: 0, op: 'rdtsc' };
      expect((await ok('guest', rdtsc0)).value).toBe((await ok('guest', rdtsc0, clean)).value);
      expect((await ok('verify', {})).reason).toContain('its bytes do not decode');
    });

    it('a snapshot relabelled to a later version and position is not used', async () => {
      const clean = await cleanCopy();
      await ok('guest', { vmId: 'web.m1', vcpu: 0, op: 'rdtsc' });
      await ok('guest', { vmId: 'web.m1', vcpu: 0, op: 'rdtsc' }, clean);
      const head = await ok('stateAt', { vmId: 'web.m1' }, clean);
      await E.exec(L.db, "UPDATE snapshots SET position = $1, version = $2 WHERE stream_id = 'vm-web.m1'", [head.position, head.version]);
      const st = await ok('stateAt', { vmId: 'web.m1' });
      expect([st.version, st.position]).toEqual([head.version, head.position]);
      expect(st.state).toEqual(head.state);
      expect(await ok('verify', {})).toMatchObject({ intact: false, table: 'snapshots', firstBrokenPosition: head.position });
    });
  });

  describe('2. a deleted request row', () => {
    it('fails verify (its events carry the id), and the retry is refused instead of run again', async () => {
      expect(await E.exec(L.db, "DELETE FROM requests WHERE request_id = 'a1'")).toBe(1);
      const v = await ok('verify', {});
      expect(v).toMatchObject({ intact: false, table: 'requests' });
      expect(v.reason).toMatch(/carry request id a1 but no request row holds it/);
      const before = await lastPosition();
      const retry = await call('advanceTime', { ns: 1_000_000_000, requestId: 'a1' });
      expect(retry).toMatchObject({ ok: false, error: { code: 'corrupt', details: { requestId: 'a1' } } });
      expect(await lastPosition()).toBe(before);
    });

    it('a row of a request that wrote nothing, removed from among the others, leaves a gap in the numbers', async () => {
      await ok('advanceTime', { ns: 0, requestId: 'read-only' });
      await ok('advanceTime', { ns: 1, requestId: 'after' });
      expect(await E.exec(L.db, "DELETE FROM requests WHERE request_id = 'read-only'")).toBe(1);
      expect((await ok('verify', {})).reason).toMatch(/requests jump from number 6 to 8 \(request after\): a request row was removed/);
    });
  });

  describe('3. the wake index', () => {
    it('a cleared wake instant fails verify: the VM stream’s last event records it', async () => {
      const rows = await E.query<{ wake: string }>(L.db, "SELECT CAST(wake_at AS TEXT) AS wake FROM streams WHERE stream_id = 'vm-web.m1'");
      const wake = rows[0]!.wake;
      expect(wake).not.toBeNull();
      expect(await E.exec(L.db, "UPDATE streams SET wake_at = NULL WHERE stream_id = 'vm-web.m1'")).toBe(1);
      const v = await ok('verify', { replay: false });
      expect(v).toMatchObject({ intact: false, table: 'streams' });
      expect(v.reason).toContain(`stream vm-web.m1 is to be woken at no instant, but its last event (position ${v.firstBrokenPosition}) records ${wake}`);
      const events = (await ok('events', { streamId: 'vm-web.m1' })).events as R[];
      expect(events.at(-1)!.metadata.wakeAt).toBe(wake);
    });

    it('a wake instant given to a stream whose events record none: a host has no timers, so it must have none', async () => {
      expect(await E.exec(L.db, "UPDATE streams SET wake_at = 5 WHERE stream_id = 'host-a'")).toBe(1);
      // without a replayer the store cannot tell, and says it left it unchecked
      expect(await ok('verify', { replay: false })).toMatchObject({ intact: true, coverage: { wakes: 2, wakesUnchecked: 4 } });
      expect(await ok('verify', {})).toMatchObject({
        intact: false,
        table: 'streams',
        firstBrokenPosition: 1,
        reason: expect.stringContaining('stream host-a is to be woken at 5, but it can have none'),
      });
    });
  });

  describe('4. the anchor covers the requests', () => {
    it('a stored response forged with its hash recomputed passes verify alone, not against an anchor', async () => {
      const head = (await ok('verify', {})).head;
      const [r] = await E.query<R>(
        L.db,
        `SELECT r.request_id, r.handler, r.fingerprint, r.first_position, r.last_position, e.hash AS last_hash
         FROM requests r JOIN events e ON e.position = r.last_position WHERE r.request_id = 'a1'`,
      );
      const response = JSON.stringify({ ok: true, now: '1' });
      const hash = createHash('sha256')
        .update(
          ['request', r!.request_id, r!.handler, r!.fingerprint ?? '', String(r!.first_position), String(r!.last_position), r!.last_hash, response].join('\n'),
        )
        .digest('hex');
      expect(await E.exec(L.db, "UPDATE requests SET response = $1, response_hash = $2 WHERE request_id = 'a1'", [response, hash])).toBe(1);
      expect(await ok('verify', {})).toMatchObject({ intact: true });
      const v = await ok('verify', { anchor: head });
      expect(v).toMatchObject({ intact: false, table: 'requests' });
      expect(v.reason).toContain(`the requests up to number 6 digest to ${v.head.requests.hash}, not the anchored ${head.requests.hash}`);
      // an anchor kept before requests were covered checks the events only
      expect(await ok('verify', { anchor: { position: head.position, hash: head.hash } })).toMatchObject({ intact: true });
    });
  });

  describe('15. request ids', () => {
    it.each(['a\u0000b', 'tab\there', '\uD800lone'])('%j is invalid_request on both engines, before either sees it, and nothing is written', async (id) => {
      const before = await lastPosition();
      const r = await call('advanceTime', { ns: 1, requestId: id });
      expect(r).toMatchObject({ ok: false, error: { code: 'invalid_request', details: { field: 'requestId' } } });
      expect(r.error.message).toMatch(/^requestId: a request id (may not contain a control character|must be well-formed Unicode)/);
      expect(await lastPosition()).toBe(before);
    });
  });
});
