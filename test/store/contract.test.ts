// The event-store contract, written once against AsyncEventStore and run on both engines: SQLite
// (through asyncView) and PostgreSQL (the suite's throwaway server). Same inputs, same answers,
// down to the hashes.
import { afterEach, describe, expect, it } from 'vitest';
import type { AsyncEventStore } from '../../store/async-types.js';
import { chainHash, ConflictError, GENESIS_HASH, StoreError, type WrittenEvent } from '../../store/index.js';
import { closeOpened, ENGINES, type Engine } from './engines.js';
import { cleanup, ev } from './helpers.js';
import { responseHash } from '../../store/request-check.js';

afterEach(async () => {
  await closeOpened();
  cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return (e as StoreError).code;
  }
  return 'no error';
}

/**
 * 10 events with requests: req-a → 1..3 (vm-a), req-empty → none, req-b → 4 (vm-b) and 5..6
 * (vm-a), req-c → 7..8 (vm-b), req-d → 9..10 (host-h). Times 10, 20, … 100.
 */
async function build(s: AsyncEventStore): Promise<void> {
  const resp = (w: WrittenEvent[]) => ({ positions: w.map((x) => x.position) });
  await s.commit([{ streamId: 'vm-a', expectedVersion: 0, events: [ev('a1', 10), ev('a2', 20), ev('a3', 30)] }], {
    requestId: 'req-a',
    handler: 'h',
    response: resp,
  });
  await s.commit([], { requestId: 'req-empty', handler: 'h', response: () => 'nothing' });
  await s.commit(
    [
      { streamId: 'vm-b', expectedVersion: 0, events: [ev('b1', 40)] },
      { streamId: 'vm-a', expectedVersion: 3, events: [ev('a4', 50), ev('a5', 60)] },
    ],
    { requestId: 'req-b', handler: 'h', response: resp },
  );
  await s.commit([{ streamId: 'vm-b', expectedVersion: 1, events: [ev('b2', 70), ev('b3', 80)] }], { requestId: 'req-c', handler: 'h', response: resp });
  await s.commit([{ streamId: 'host-h', expectedVersion: 0, events: [ev('h1', 90, { u64: '18446744073709551615' }), ev('h2', 100)] }], {
    requestId: 'req-d',
    handler: 'h',
    response: resp,
  });
}

describe.each(ENGINES)('event store contract: $name', (engine: Engine) => {
  it('positions are global and contiguous from 1, versions per stream from 1', async () => {
    const s = await engine.open(engine.fresh());
    expect(await s.lastPosition()).toBe(0);
    const r = await s.commit([
      { streamId: 'x-a', expectedVersion: 0, events: [ev('x', 1), ev('y', 2)] },
      { streamId: 'x-b', expectedVersion: 0, events: [ev('z', 3)] },
      { streamId: 'x-a', expectedVersion: 2, events: [ev('w', 4)] },
    ]);
    expect(r.written).toEqual([
      { position: 1, streamId: 'x-a', version: 1, type: 'x' },
      { position: 2, streamId: 'x-a', version: 2, type: 'y' },
      { position: 3, streamId: 'x-b', version: 1, type: 'z' },
      { position: 4, streamId: 'x-a', version: 3, type: 'w' },
    ]);
    await build(s); // appends 10 more
    expect(await s.lastPosition()).toBe(14);
    const all = await s.read();
    expect(all.map((e) => e.position)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    expect(await s.streamVersion('x-a')).toBe(3);
    expect(await s.streamVersion('vm-a')).toBe(5);
    expect(await s.streamVersion('host-h')).toBe(2);
    expect(await s.streams()).toEqual(['host-h', 'vm-a', 'vm-b', 'x-a', 'x-b']);
    expect(await s.streams('vm-')).toEqual(['vm-a', 'vm-b']);
    // u64 data survives as its decimal string, time as a bigint
    const h1 = all.find((e) => e.type === 'h1')!;
    expect(h1.data).toEqual({ u64: '18446744073709551615' });
    expect(h1.time).toBe(90n);
  });

  it('an expected version that is not the stream version is a conflict, and nothing of the commit is written', async () => {
    const s = await engine.open(engine.fresh());
    await s.commit([{ streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1), ev('y', 2)] }]);
    const attempt = s.commit([
      { streamId: 'vm-b', expectedVersion: 0, events: [ev('ok', 3)] },
      { streamId: 'vm-a', expectedVersion: 1, events: [ev('late', 3)] },
    ]);
    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(attempt).rejects.toMatchObject({ code: 'conflict', details: { streamId: 'vm-a', expected: 1, actual: 2 } });
    expect(await s.lastPosition()).toBe(2);
    expect(await s.streams()).toEqual(['vm-a']);
    expect(await s.countCategory('vm')).toBe(1);
    // 'any' appends wherever the stream is
    const r = await s.commit([{ streamId: 'vm-a', expectedVersion: 'any', events: [ev('z', 4)] }]);
    expect(r.written).toEqual([{ position: 3, streamId: 'vm-a', version: 3, type: 'z' }]);
  });

  it('a request id makes a commit idempotent: the retry records nothing and gets the stored response', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    const again = await s.commit([{ streamId: 'vm-b', expectedVersion: 1, events: [ev('b2', 70)] }], { requestId: 'req-c', response: () => 'not called' });
    expect(again).toEqual({ duplicate: true, written: [], response: { positions: [7, 8] } });
    expect(await s.lastPosition()).toBe(10);
    expect(await s.findRequest('req-b')).toEqual({ response: { positions: [4, 5, 6] } });
    expect(await s.findRequest('req-empty')).toEqual({ response: 'nothing' });
    expect(await s.findRequest('nope')).toBeUndefined();
    expect(await engine.requestIds(loc)).toEqual(['req-a', 'req-b', 'req-c', 'req-d', 'req-empty']);
  });

  it('both engines chain the same hashes; verify names the position of a row edited behind its back', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    const all = await s.read();
    expect(all[0]!.hash).toBe(
      chainHash(GENESIS_HASH, { position: 1, streamId: 'vm-a', version: 1, type: 'a1', schemaVersion: 1, time: '10', data: '{}', metadata: '{}' }),
    );
    // pinned: the same value on both engines
    expect(all[9]!.hash).toBe(LAST_HASH);
    expect(await s.verify()).toMatchObject({ intact: true, checked: 10, head: { position: 10, hash: LAST_HASH } });
    await s.close();

    expect(await engine.exec(loc, 'UPDATE events SET data = $1 WHERE position = $2', ['{"forged":true}', 7])).toBe(1);
    const t = await engine.open(loc);
    expect(await t.verify()).toMatchObject({
      intact: false,
      checked: 6,
      head: { position: 10, hash: LAST_HASH },
      firstBrokenPosition: 7,
      reason: 'hash chain broken: the event or its predecessor was altered',
      table: 'events',
    });
  });

  it('verify reports a deleted row as the missing position', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    await s.close();
    expect(await engine.exec(loc, 'DELETE FROM events WHERE position = $1', [4])).toBe(1);
    const t = await engine.open(loc);
    const missing = { intact: false, checked: 3, head: { position: 10, hash: LAST_HASH }, firstBrokenPosition: 4, reason: 'position 4 is missing' };
    expect(await t.verify()).toMatchObject({ ...missing, table: 'events' });
  });

  it('snapshots written in the commit (alsoWrite) come back by stream, code version and position', async () => {
    const s = await engine.open(engine.fresh());
    await build(s);
    await s.commit([{ streamId: 'vm-a', expectedVersion: 5, events: [ev('a6', 110)] }], {
      alsoWrite: (w) => s.saveSnapshot({ streamId: 'vm-a', version: 6, position: w[0]!.position, codeVersion: 'cv1', state: Buffer.from([0, 1, 2, 255]) }),
    });
    await s.saveSnapshot({ streamId: 'vm-a', version: 3, position: 3, codeVersion: 'cv1', state: Buffer.from('a@3') });
    await s.saveSnapshot({ streamId: 'vm-a', version: 5, position: 6, codeVersion: 'cv0', state: Buffer.from('old code') });
    const latest = await s.latestSnapshot('vm-a', 'cv1');
    expect(latest).toMatchObject({ streamId: 'vm-a', version: 6, position: 11, codeVersion: 'cv1' });
    expect([...latest!.state]).toEqual([0, 1, 2, 255]);
    expect((await s.latestSnapshot('vm-a', 'cv1', 10))?.state.toString()).toBe('a@3');
    expect((await s.latestSnapshot('vm-a', 'cv0'))?.position).toBe(6);
    expect(await s.latestSnapshot('vm-b', 'cv1')).toBeUndefined();
  });

  it('opening with a code version discards the snapshots of any other', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    await s.saveSnapshot({ streamId: 'vm-a', version: 3, position: 3, codeVersion: 'cv0', state: Buffer.from('x') });
    await s.saveSnapshot({ streamId: 'vm-a', version: 3, position: 3, codeVersion: 'cv1', state: Buffer.from('y') });
    await s.close();
    const t = await engine.open(loc, { codeVersion: 'cv1' });
    expect(await t.latestSnapshot('vm-a', 'cv0')).toBeUndefined();
    expect((await t.latestSnapshot('vm-a', 'cv1'))?.state.toString()).toBe('y');
  });

  it('the wake index: due streams earliest first, cleared by null, kept when not given, set by an empty batch', async () => {
    const s = await engine.open(engine.fresh());
    await s.commit([
      { streamId: 'vm-1', expectedVersion: 0, events: [ev('x', 1)], wakeAt: 500n },
      { streamId: 'vm-2', expectedVersion: 0, events: [ev('x', 1)], wakeAt: 300n },
      { streamId: 'host-1', expectedVersion: 0, events: [ev('x', 1)], wakeAt: 100n },
      { streamId: 'vm-3', expectedVersion: 0, events: [ev('x', 1)] },
    ]);
    expect(await s.dueStreams(400n)).toEqual([
      { streamId: 'host-1', wakeAt: 100n },
      { streamId: 'vm-2', wakeAt: 300n },
    ]);
    expect(await s.dueStreams(1000n, 'vm-')).toEqual([
      { streamId: 'vm-2', wakeAt: 300n },
      { streamId: 'vm-1', wakeAt: 500n },
    ]);
    await s.commit([
      { streamId: 'vm-2', expectedVersion: 1, events: [ev('y', 2)], wakeAt: null },
      { streamId: 'vm-1', expectedVersion: 1, events: [ev('y', 2)] },
      { streamId: 'vm-3', expectedVersion: 1, events: [], wakeAt: 9_223_372_036_854_775_807n },
    ]);
    expect(await s.dueStreams(9_223_372_036_854_775_807n, 'vm-')).toEqual([
      { streamId: 'vm-1', wakeAt: 500n },
      { streamId: 'vm-3', wakeAt: 9_223_372_036_854_775_807n },
    ]);
    expect(await s.streamVersion('vm-3')).toBe(1);
  });

  it('category counts: a stream counts once, with its first event', async () => {
    const s = await engine.open(engine.fresh());
    await s.commit([
      { streamId: 'vm-1', expectedVersion: 0, events: [ev('x', 1)] },
      { streamId: 'vm-2', expectedVersion: 0, events: [ev('x', 1)] },
      { streamId: 'migration-1', expectedVersion: 0, events: [ev('x', 1)] },
      { streamId: 'ledger', expectedVersion: 0, events: [] },
    ]);
    await s.commit([
      { streamId: 'vm-1', expectedVersion: 1, events: [ev('y', 2)] },
      { streamId: 'vm-x-y', expectedVersion: 0, events: [ev('x', 2)] },
      { streamId: 'ledger', expectedVersion: 0, events: [ev('x', 2)] },
    ]);
    expect(await s.countCategory('vm')).toBe(3);
    expect(await s.countCategory('migration')).toBe(1);
    expect(await s.countCategory('ledger')).toBe(1);
    expect(await s.countCategory('host')).toBe(0);
  });

  it('time travel: position at a time, reads up to a time or position, versions at a position', async () => {
    const s = await engine.open(engine.fresh());
    await build(s);
    expect(await s.positionAtTime(9n)).toBe(0);
    expect(await s.positionAtTime(65n)).toBe(6);
    expect(await s.positionAtTime(100n)).toBe(10);
    expect((await s.read({ toTime: 45n })).map((e) => e.type)).toEqual(['a1', 'a2', 'a3', 'b1']);
    expect((await s.read({ streamId: 'vm-a', fromPosition: 2, toPosition: 5 })).map((e) => e.version)).toEqual([2, 3, 4]);
    expect(await s.streamVersion('vm-a', 4)).toBe(3);
    expect(await s.streamVersion('vm-b', 3)).toBe(0);
    expect(await s.positionOfVersion('vm-b', 3)).toBe(8);
    expect(await s.positionOfVersion('vm-b', 4)).toBeUndefined();
  });

  it('scan: raw rows in order, with prefix, limit and without metadata, across many rows', async () => {
    const s = await engine.open(engine.fresh());
    await s.commit([{ streamId: 'bulk-1', expectedVersion: 0, events: Array.from({ length: 2500 }, (_, i) => ev('t', i, { i }, { k: 1 })) }]);
    await build(s);
    const raw = [];
    for await (const r of s.scan({ fromPosition: 2, limit: 2100 })) raw.push(r);
    expect(raw.length).toBe(2100);
    expect(raw[0]).toEqual({ position: 2, streamId: 'bulk-1', version: 2, type: 't', schemaVersion: 1, time: '1', data: '{"i":1}', metadata: '{"k":1}' });
    expect(raw.at(-1)!.position).toBe(2101);
    expect(raw.every((r, i) => r.position === i + 2)).toBe(true);
    const vm = [];
    for await (const r of s.scan({ streamPrefix: 'vm-', withoutMetadata: true })) vm.push(`${r.position}:${r.streamId}@${r.version}:${r.metadata}`);
    expect(vm).toEqual([
      '2501:vm-a@1:{}',
      '2502:vm-a@2:{}',
      '2503:vm-a@3:{}',
      '2504:vm-b@1:{}',
      '2505:vm-a@4:{}',
      '2506:vm-a@5:{}',
      '2507:vm-b@2:{}',
      '2508:vm-b@3:{}',
    ]);
    let all = 0;
    for await (const r of s.scan()) all += r.position === all + 1 ? 1 : 0;
    expect(all).toBe(2510);
  });

  it('fork: the prefix up to a position, the requests finished within it, verified; an existing target is refused', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    await s.saveSnapshot({ streamId: 'vm-a', version: 2, position: 2, codeVersion: 'cv1', state: Buffer.from('a@2') });
    await s.saveSnapshot({ streamId: 'vm-b', version: 3, position: 8, codeVersion: 'cv1', state: Buffer.from('b@3') });
    const target = engine.fresh();
    expect(await s.fork(7, target)).toEqual({ events: 7 });
    const f = await engine.open(target);
    expect(await f.lastPosition()).toBe(7);
    const h7 = (await s.read({ fromPosition: 7, toPosition: 7 }))[0]!.hash;
    expect(await f.verify()).toMatchObject({ intact: true, checked: 7, head: { position: 7, hash: h7 } });
    expect((await f.read()).map((e) => e.hash)).toEqual((await s.read({ toPosition: 7 })).map((e) => e.hash));
    expect(await f.streamVersion('vm-b')).toBe(2);
    expect(await f.streams()).toEqual(['vm-a', 'vm-b']);
    expect(await f.countCategory('vm')).toBe(2);
    expect(await engine.requestIds(target)).toEqual(['req-a', 'req-b', 'req-empty']);
    expect((await f.latestSnapshot('vm-a', 'cv1'))?.state.toString()).toBe('a@2');
    expect(await f.latestSnapshot('vm-b', 'cv1')).toBeUndefined();
    // the fork goes on by itself
    const r = await f.commit([{ streamId: 'vm-b', expectedVersion: 2, events: [ev('other', 75)] }]);
    expect(r.written[0]!.position).toBe(8);
    expect(await s.lastPosition()).toBe(10);
    expect(await codeOf(s.fork(3, target))).toBe('invalid_request');
    // the existing target is untouched
    expect(await f.lastPosition()).toBe(8);
    expect(await codeOf(s.fork(3, loc))).toBe('invalid_request');
    expect(await s.lastPosition()).toBe(10);
    expect(await codeOf(s.fork(-1, engine.fresh()))).toBe('invalid_request');
    expect(await codeOf(s.fork(3, engine.unreachable()))).toBe('not_found');
  });

  it('a schema newer than this code is refused with schema_too_new', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    await s.close();
    await engine.setSchemaVersion(loc, 99);
    expect(await codeOf(engine.open(loc))).toBe('schema_too_new');
    expect(await codeOf(engine.open(loc, { readonly: true }))).toBe('schema_too_new');
  });

  it('an event time beyond a signed 64-bit instant is refused and nothing is written', async () => {
    const s = await engine.open(engine.fresh());
    expect(await codeOf(s.commit([{ streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1), ev('y', 1n << 63n)] }]))).toBe('invalid_request');
    expect(await s.lastPosition()).toBe(0);
    const ok = await s.commit([{ streamId: 'vm-a', expectedVersion: 0, events: [ev('x', -(1n << 63n))] }]);
    expect(ok.written[0]!.position).toBe(1);
    expect((await s.read())[0]!.time).toBe(-(1n << 63n));
  });

  it('instants beyond a signed 64-bit range clamp: every event is at or before 2^70, none at or before -2^70', async () => {
    const s = await engine.open(engine.fresh());
    await build(s);
    await s.commit([{ streamId: 'vm-a', expectedVersion: 'any', events: [], wakeAt: 55n }]);
    expect(await s.positionAtTime(1n << 70n)).toBe(10);
    expect(await s.positionAtTime(-(1n << 70n))).toBe(0);
    expect((await s.read({ toTime: 1n << 70n })).length).toBe(10);
    expect(await s.read({ toTime: -(1n << 70n) })).toEqual([]);
    expect(await s.dueStreams(1n << 70n)).toEqual([{ streamId: 'vm-a', wakeAt: 55n }]);
    expect(await s.dueStreams(-(1n << 70n))).toEqual([]);
  });

  it('open streams: those whose last event is of none of the end types, by prefix', async () => {
    const s = await engine.open(engine.fresh());
    await build(s);
    // last types: vm-a a5, vm-b b3, host-h h2
    expect(await s.openStreams('vm-', ['a5'])).toEqual(['vm-b']);
    expect(await s.openStreams('vm-', ['a5', 'b3'])).toEqual([]);
    expect(await s.openStreams('', [])).toEqual(['host-h', 'vm-a', 'vm-b']);
    expect(await s.openStreams('host-', ['a5', 'b3'])).toEqual(['host-h']);
  });

  it('a request id is bound to its fingerprint: reused for another request is a conflict, and nothing is written', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    const w = [{ streamId: 'vm-c', expectedVersion: 0 as const, events: [ev('c1', 110)] }];
    const first = await s.commit(w, { requestId: 'req-f', fingerprint: 'fp-1', handler: 'h', response: (x) => x.map((e) => e.position) });
    expect(first.response).toEqual([11]);
    expect(await s.commit(w, { requestId: 'req-f', fingerprint: 'fp-1', handler: 'h' })).toEqual({ duplicate: true, written: [], response: [11] });
    expect(
      await codeOf(s.commit([{ streamId: 'vm-d', expectedVersion: 0, events: [ev('d1', 120)] }], { requestId: 'req-f', fingerprint: 'fp-2', handler: 'h' })),
    ).toBe('conflict');
    expect(await s.lastPosition()).toBe(11);
    expect(await codeOf(s.findRequest('req-f', 'fp-2'))).toBe('conflict');
    expect(await s.findRequest('req-f', 'fp-1')).toEqual({ response: [11] });
    expect(await s.findRequest('req-f')).toEqual({ response: [11] });
    // stored without a fingerprint: any retry is answered, as before fingerprints were kept
    expect(await s.findRequest('req-a', 'anything')).toEqual({ response: { positions: [1, 2, 3] } });
    // the response hash is the same function of the row on both engines
    const hash = responseHash({
      requestId: 'req-f',
      handler: 'h',
      fingerprint: 'fp-1',
      firstPosition: 11,
      lastPosition: 11,
      lastHash: (await s.read({ fromPosition: 11 }))[0]!.hash,
      response: '[11]',
    });
    expect(await engine.exec(loc, 'UPDATE requests SET handler = handler WHERE request_id = $1 AND response_hash = $2', ['req-f', hash])).toBe(1);
    // a fork keeps the binding
    const target = engine.fresh();
    await s.fork(11, target);
    const f = await engine.open(target);
    expect(await codeOf(f.findRequest('req-f', 'fp-2'))).toBe('conflict');
    expect(await f.findRequest('req-f', 'fp-1')).toEqual({ response: [11] });
  });

  it('a stored response edited behind the store is corrupt: not returned to a retry, named by verify', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    await s.close();
    expect(await engine.exec(loc, 'UPDATE requests SET response = $1 WHERE request_id = $2', ['{"positions":[99]}', 'req-b'])).toBe(1);
    const t = await engine.open(loc);
    expect(await codeOf(t.findRequest('req-b'))).toBe('corrupt');
    expect(await codeOf(t.commit([], { requestId: 'req-b' }))).toBe('corrupt');
    expect(await t.verify()).toMatchObject({
      intact: false,
      checked: 10,
      head: { position: 10, hash: LAST_HASH },
      firstBrokenPosition: 6,
      reason: 'the stored response of request req-b does not match its hash: it was altered (a retry would return it)',
      table: 'requests',
    });
  });

  it('verify cross-checks the streams and category tables against the events', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    await s.close();
    expect(await engine.exec(loc, 'UPDATE streams SET version = 2 WHERE stream_id = $1', ['vm-b'])).toBe(1);
    const t = await engine.open(loc);
    expect(await t.verify()).toMatchObject({
      intact: false,
      checked: 10,
      head: { position: 10, hash: LAST_HASH },
      firstBrokenPosition: 8,
      reason: 'stream vm-b is listed at version 2 (position 8, b3) but its events end at version 3 (position 8, b3)',
      table: 'streams',
    });
    await t.close();
    await engine.exec(loc, 'UPDATE streams SET version = 3 WHERE stream_id = $1', ['vm-b']);
    expect(await engine.exec(loc, 'UPDATE stream_categories SET streams = 1 WHERE category = $1', ['vm'])).toBe(1);
    const u = await engine.open(loc);
    // vm-b, the category's second stream, begins at 4
    expect(await u.verify()).toMatchObject({
      intact: false,
      firstBrokenPosition: 4,
      reason: 'category vm counts 1 stream but the log has 2',
      table: 'stream_categories',
    });
  });

  it('events removed from the end: the tables beside them tell, and so does an anchor once they are fixed too', async () => {
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    const h8 = (await s.read({ fromPosition: 8, toPosition: 8 }))[0]!.hash;
    expect(await s.verify({ position: 10, hash: LAST_HASH })).toMatchObject({ intact: true, checked: 10, head: { position: 10, hash: LAST_HASH } });
    expect(await s.verify({ position: 0, hash: GENESIS_HASH })).toMatchObject({ intact: true });
    expect(await s.verify({ position: 3, hash: 'ab'.repeat(32) })).toMatchObject({
      intact: false,
      firstBrokenPosition: 3,
      reason:
        `position 3 has hash ${(await s.read({ fromPosition: 3, toPosition: 3 }))[0]!.hash}, ` +
        `not the anchored ${'ab'.repeat(32)}: the log up to it was rewritten`,
      table: 'events',
    });
    await s.close();
    expect(await engine.exec(loc, 'DELETE FROM events WHERE position > $1', [8])).toBe(2);
    const t = await engine.open(loc);
    expect(await t.verify()).toMatchObject({
      intact: false,
      checked: 8,
      head: { position: 8, hash: h8 },
      firstBrokenPosition: 9,
      reason: 'stream host-h ends at position 10 (version 2) but the log ends at 8: events were removed from its end (and 2 more problems)',
      table: 'streams',
    });
    await t.close();
    await engine.exec(loc, 'DELETE FROM streams WHERE stream_id = $1', ['host-h']);
    await engine.exec(loc, 'DELETE FROM stream_categories WHERE category = $1', ['host']);
    await engine.exec(loc, 'DELETE FROM requests WHERE request_id = $1', ['req-d']);
    const u = await engine.open(loc);
    expect(await u.verify()).toMatchObject({ intact: true, checked: 8, head: { position: 8, hash: h8 } });
    expect(await u.verify({ position: 10, hash: LAST_HASH })).toMatchObject({
      intact: false,
      checked: 8,
      head: { position: 8, hash: h8 },
      firstBrokenPosition: 9,
      reason: 'the log ends at position 8, before the anchored position 10: events were removed from its end',
      table: 'events',
    });
  });

  it('read-only: a missing ledger is not_found; reads and verify work; writes are refused', async () => {
    expect(await codeOf(engine.open(engine.fresh(), { readonly: true }))).toBe('not_found');
    expect(await codeOf(engine.open(engine.unreachable(), { readonly: true }))).toBe('not_found');
    expect(await codeOf(engine.open(engine.unreachable()))).toBe('not_found');
    const loc = engine.fresh();
    const s = await engine.open(loc);
    await build(s);
    const r = await engine.open(loc, { readonly: true });
    expect(await r.lastPosition()).toBe(10);
    expect(await r.verify()).toMatchObject({ intact: true, checked: 10 });
    expect(await r.findRequest('req-c')).toEqual({ response: { positions: [7, 8] } });
    expect(await codeOf(r.commit([{ streamId: 'vm-z', expectedVersion: 0, events: [ev('z', 200)] }]))).toBe('invalid_request');
    await r.saveSnapshot({ streamId: 'vm-a', version: 1, position: 1, codeVersion: 'cv', state: Buffer.from('x') });
    expect(await r.latestSnapshot('vm-a', 'cv')).toBeUndefined();
    expect(await s.lastPosition()).toBe(10);
  });
});

// The hash of event 10 of build(): computed once, the same on both engines.
const LAST_HASH = 'dba17946ff342e329e64338d398d98df35dab62840c861a78fdf64a406c844b4';
