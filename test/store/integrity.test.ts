// What verify checks beside the chain, at the store's level and on both engines: the requests'
// numbers and digest (the anchor's second half), the request ids events carry, the wake instants
// events record, and snapshot bindings; with a replayer, what only a replay can tell. Expected
// digests and bindings are computed here from their definitions (docs/guide.md, "What verify checks"), not by the
// store's functions.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { AsyncEventStore } from '../../store/async-types.js';
import { GENESIS_HASH, StoreError, type EventRow, type StreamReplayer, type WrittenEvent } from '../../store/index.js';
import { closeOpened, ENGINES, type Engine } from './engines.js';
import { cleanup, ev } from './helpers.js';

afterEach(async () => {
  await closeOpened();
  cleanup();
});

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return (e as StoreError).code;
  }
  return 'no error';
}

const resp = (w: WrittenEvent[]) => ({ positions: w.map((x) => x.position) });
const meta = (requestId: string) => ({ handler: 'h', requestId });

/** req-a → 1..2 (x-a), req-none → nothing, req-b → 3 (x-b): events carrying their request ids, as a session writes them. */
async function build(s: AsyncEventStore): Promise<void> {
  const a = [ev('a1', 10, {}, meta('req-a')), ev('a2', 20, {}, meta('req-a'))];
  await s.commit([{ streamId: 'x-a', expectedVersion: 0, events: a }], { requestId: 'req-a', handler: 'h', response: resp });
  await s.commit([], { requestId: 'req-none', handler: 'h', response: () => 'nothing' });
  await s.commit([{ streamId: 'x-b', expectedVersion: 0, events: [ev('b1', 30, {}, meta('req-b'))] }], { requestId: 'req-b', handler: 'h', response: resp });
}

/** A stored request's response hash, from its definition. */
function rowHash(id: string, first: number | '', last: number | '', lastHash: string, response: string): string {
  return sha(['request', id, 'h', '', first, last, lastHash, response].join('\n'));
}

describe.each(ENGINES)('$name', (engine: Engine) => {
  describe('requests', () => {
    it('are numbered in the order answered; the head digests them, hand-computed', async () => {
      const loc = engine.fresh();
      const s = await engine.open(loc);
      await build(s);
      const [h2, h3] = [(await s.read({ fromPosition: 2, toPosition: 2 }))[0]!.hash, (await s.read({ fromPosition: 3, toPosition: 3 }))[0]!.hash];
      const rows = [
        rowHash('req-a', 1, 2, h2, '{"positions":[1,2]}'),
        rowHash('req-none', '', '', '', '"nothing"'),
        rowHash('req-b', 3, 3, h3, '{"positions":[3]}'),
      ];
      let digest = GENESIS_HASH;
      for (const [i, h] of rows.entries()) digest = sha(`requests\n${digest}\n${i + 1}\n${h}`);
      const v = await s.verify();
      expect(v).toMatchObject({ intact: true, head: { position: 3, requests: { seq: 3, hash: digest } }, coverage: { requests: 3 } });
      expect(await engine.query(loc, 'SELECT request_id, seq FROM requests ORDER BY seq')).toEqual([
        { request_id: 'req-a', seq: engine.name === 'sqlite' ? 1 : '1' },
        { request_id: 'req-none', seq: engine.name === 'sqlite' ? 2 : '2' },
        { request_id: 'req-b', seq: engine.name === 'sqlite' ? 3 : '3' },
      ]);
      // an anchor holds the requests to the digest at its number
      expect(await s.verify({ ...v.head, requests: { seq: 0, hash: GENESIS_HASH } })).toMatchObject({ intact: true });
      expect(await s.verify({ ...v.head, requests: { seq: 4, hash: digest } })).toMatchObject({
        intact: false,
        table: 'requests',
        reason: expect.stringContaining('before the anchored 4: requests were removed from the end'),
      });
    });

    it('an event claiming another request id than its commit’s is refused, and nothing is written', async () => {
      const s = await engine.open(engine.fresh());
      const claiming = [ev('a1', 1, {}, meta('other'))];
      expect(await codeOf(s.commit([{ streamId: 'x-a', expectedVersion: 0, events: claiming }], { requestId: 'req-a' }))).toBe('invalid_request');
      expect(await s.lastPosition()).toBe(0);
    });

    it('a NUL in a request id is invalid_request from commit and from findRequest', async () => {
      const s = await engine.open(engine.fresh());
      expect(await codeOf(s.commit([], { requestId: 'a\0b' }))).toBe('invalid_request');
      expect(await codeOf(s.findRequest('a\0b'))).toBe('invalid_request');
    });

    it('a fork cut inside a request keeps its events without a row: the fork verifies, and a retry there is a conflict', async () => {
      const s = await engine.open(engine.fresh());
      await build(s);
      const target = engine.fresh();
      await s.fork(1, target);
      const f = await engine.open(target);
      expect(await f.verify()).toMatchObject({ intact: true, checked: 1, head: { requests: { seq: 1 } } });
      expect(await codeOf(f.findRequest('req-a'))).toBe('conflict');
      expect(await f.findRequest('req-none')).toEqual({ response: 'nothing' });
      // ... but the same events without a row anywhere else are a removed row
      await f.commit([{ streamId: 'x-c', expectedVersion: 0, events: [ev('c1', 40)] }]);
      expect(await f.verify()).toMatchObject({ intact: false, table: 'requests', firstBrokenPosition: 1 });
      expect(await codeOf(f.findRequest('req-a'))).toBe('corrupt');
    });
  });

  describe('wake instants', () => {
    it('are recorded on the last event of the batch that sets them, and checked against it', async () => {
      const loc = engine.fresh();
      const s = await engine.open(loc);
      await s.commit([
        { streamId: 'vm-1', expectedVersion: 0, events: [ev('x', 1, {}, { k: 1 }), ev('y', 2, {}, { k: 1 })], wakeAt: 500n },
        { streamId: 'vm-2', expectedVersion: 0, events: [ev('x', 3)], wakeAt: null },
      ]);
      expect((await s.read()).map((e) => e.metadata)).toEqual([{ k: 1 }, { k: 1, wakeAt: '500' }, { wakeAt: null }]);
      expect(await s.verify()).toMatchObject({ intact: true, coverage: { wakes: 2, wakesUnchecked: 0 } });
      await engine.exec(loc, "UPDATE streams SET wake_at = 400 WHERE stream_id = 'vm-1'");
      expect(await s.verify()).toMatchObject({
        intact: false,
        table: 'streams',
        firstBrokenPosition: 2,
        reason: 'stream vm-1 is to be woken at 400, but its last event (position 2) records 500: its timers would fire differently',
      });
    });

    it('a batch copied with its recorded wake sets it; a record that contradicts the batch is refused', async () => {
      const s = await engine.open(engine.fresh());
      await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('x', 1, {}, { wakeAt: '700' })] }]);
      expect(await s.dueStreams(1000n)).toEqual([{ streamId: 'vm-1', wakeAt: 700n }]);
      const contradicting = { streamId: 'vm-1', expectedVersion: 1, events: [ev('x', 2, {}, { wakeAt: '700' })], wakeAt: 800n };
      expect(await codeOf(s.commit([contradicting]))).toBe('invalid_request');
      expect(await s.verify()).toMatchObject({ intact: true, checked: 1 });
    });

    it('a fork takes each stream’s wake from its last event', async () => {
      const s = await engine.open(engine.fresh());
      await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('x', 1)], wakeAt: 500n }]);
      await s.commit([{ streamId: 'vm-1', expectedVersion: 1, events: [ev('y', 2)], wakeAt: 900n }]);
      const target = engine.fresh();
      await s.fork(1, target);
      const f = await engine.open(target);
      expect(await f.dueStreams(10_000n)).toEqual([{ streamId: 'vm-1', wakeAt: 500n }]);
      expect(await f.verify()).toMatchObject({ intact: true, coverage: { wakes: 1 } });
    });
  });

  describe('snapshots', () => {
    it('are bound to the event at their position: the binding, hand-computed; a wrong position is refused', async () => {
      const loc = engine.fresh();
      const s = await engine.open(loc);
      await build(s);
      await s.saveSnapshot({ streamId: 'x-a', version: 2, position: 2, codeVersion: 'cv', state: Buffer.from('a@2') });
      const h2 = (await s.read({ fromPosition: 2, toPosition: 2 }))[0]!.hash;
      const [row] = await engine.query<{ chain_hash: string; binding: string }>(loc, 'SELECT chain_hash, binding FROM snapshots');
      expect(row).toEqual({ chain_hash: h2, binding: sha(`snapshot\nx-a\n2\n2\ncv\n${h2}\n${sha(Buffer.from('a@2'))}`) });
      expect(await codeOf(s.saveSnapshot({ streamId: 'x-a', version: 2, position: 3, codeVersion: 'cv', state: Buffer.from('x') }))).toBe('invalid_request');
      expect(await codeOf(s.saveSnapshot({ streamId: 'x-a', version: 1, position: 9, codeVersion: 'cv', state: Buffer.from('x') }))).toBe('invalid_request');
      expect(await s.verify()).toMatchObject({ intact: true, coverage: { snapshots: 1, snapshotStates: 0 } });
    });

    it('a read passes over a snapshot that is not bound where it claims, to an older one that is', async () => {
      const loc = engine.fresh();
      const s = await engine.open(loc);
      await s.commit([{ streamId: 'x-a', expectedVersion: 0, events: [ev('a1', 1), ev('a2', 2), ev('a3', 3)] }]);
      await s.saveSnapshot({ streamId: 'x-a', version: 1, position: 1, codeVersion: 'cv', state: Buffer.from('a@1') });
      await s.saveSnapshot({ streamId: 'x-a', version: 3, position: 3, codeVersion: 'cv', state: Buffer.from('a@3') });
      await engine.exec(loc, 'UPDATE snapshots SET state = $1 WHERE version = 3', [Buffer.from('forged')]);
      expect((await s.latestSnapshot('x-a', 'cv'))?.state.toString()).toBe('a@1');
      expect(await s.verify()).toMatchObject({ intact: false, table: 'snapshots', firstBrokenPosition: 3 });
      // the log rewritten up to it (and re-chained) leaves it bound to a chain hash that is no longer there
      await engine.exec(loc, 'UPDATE snapshots SET state = $1 WHERE version = 3', [Buffer.from('a@3')]);
      await engine.exec(loc, 'UPDATE snapshots SET chain_hash = $1 WHERE version = 1', ['ab'.repeat(32)]);
      expect((await s.verify()).reason).toContain('the log up to it was rewritten');
    });

    it('with a replayer: each one’s state is compared at its position, and the streams whose wake no event records are replayed', async () => {
      const s = await engine.open(engine.fresh());
      await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('a', 1), ev('b', 2), ev('c', 3)] }]);
      await s.saveSnapshot({ streamId: 'vm-1', version: 2, position: 2, codeVersion: 'cv', state: Buffer.from('a,b') });
      await s.saveSnapshot({ streamId: 'vm-1', version: 1, position: 1, codeVersion: 'other', state: Buffer.from('never read') });
      // a replayer whose state is the types applied so far, joined, and whose wake is their count
      const fed: EventRow[] = [];
      const replayer: StreamReplayer = {
        codeVersion: 'cv',
        hasWake: (id) => id.startsWith('vm-'),
        replay: () => {
          const types: string[] = [];
          return {
            apply: (row) => (fed.push(row), types.push(row[3])),
            differs: (state) => (state.toString() === types.join(',') ? undefined : `${state} vs ${types.join(',')}`),
            wakeAt: () => BigInt(types.length),
          };
        },
      };
      expect(await s.verify(undefined, replayer)).toMatchObject({
        intact: false,
        table: 'streams',
        reason: 'stream vm-1 is to be woken at no instant, but a replay of its events gives 3: its timers would fire differently',
      });
      expect(fed.map((r) => [...r])).toEqual([
        [1, 'vm-1', 1, 'a', '1', '{}'],
        [2, 'vm-1', 2, 'b', '2', '{}'],
        [3, 'vm-1', 3, 'c', '3', '{}'],
      ]);
      await s.commit([{ streamId: 'vm-1', expectedVersion: 3, events: [], wakeAt: 3n }]);
      expect(await s.verify(undefined, replayer)).toMatchObject({ intact: true, coverage: { snapshots: 2, snapshotStates: 1, wakes: 1, wakesUnchecked: 0 } });
      await s.saveSnapshot({ streamId: 'vm-1', version: 2, position: 2, codeVersion: 'cv', state: Buffer.from('a,x') });
      const forged = { intact: false, table: 'snapshots', firstBrokenPosition: 2, reason: expect.stringContaining('(a,x vs a,b)') };
      expect(await s.verify(undefined, replayer)).toMatchObject(forged);
      // a stream the replayer cannot evolve is reported where it fails
      const throwing = () => {
        throw new Error('no such event');
      };
      const failing: StreamReplayer = { ...replayer, replay: () => ({ apply: throwing, differs: () => undefined, wakeAt: () => null }) };
      expect(await s.verify(undefined, failing)).toMatchObject({
        intact: false,
        table: 'events',
        firstBrokenPosition: 1,
        reason: expect.stringContaining('a replay of stream vm-1 fails at position 1: no such event'),
      });
    });
  });
});
