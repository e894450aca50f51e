// events: the first `limit` events of a range or its `last` n, with how many the range holds in
// all (total) and how many come before and after those shown; the same on both engines.
import { afterEach, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

const ledgers: Ledger[] = [];
afterEach(async () => {
  await closeStores();
  for (const l of ledgers.splice(0)) l.cleanup();
});

describe.each(['sqlite', 'postgres'] as const)('events on %s: limit, last, total', (engine) => {
  it('reads the last n of the log or of a stream, and counts the range (hand-worked positions)', async () => {
    const l = newLedger(engine);
    ledgers.push(l);
    // host-a: versions 1-4 at positions 1, 3, 5, 7; host-b: versions 1-3 at 2, 4, 6
    await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
    for (let i = 0; i < 2; i++) {
      await l.ok('adjustRealtime', { hostId: 'a', stepNs: '1000' });
      await l.ok('adjustRealtime', { hostId: 'b', stepNs: '1000' });
    }
    await l.ok('adjustRealtime', { hostId: 'a', stepNs: '1000' });
    const all = await l.ok('events', {});
    expect(all.events.map((e: any) => [e.position, e.streamId, e.version])).toEqual([
      [1, 'host-a', 1],
      [2, 'host-b', 1],
      [3, 'host-a', 2],
      [4, 'host-b', 2],
      [5, 'host-a', 3],
      [6, 'host-b', 3],
      [7, 'host-a', 4],
    ]);
    expect([all.total, all.before, all.after]).toEqual([7, 0, 0]);
    const pos = (r: Record<string, any>) => r.events.map((e: any) => e.position);

    const last3 = await l.ok('events', { last: 3 });
    expect([pos(last3), last3.total, last3.before, last3.after]).toEqual([[5, 6, 7], 7, 4, 0]);
    const first2 = await l.ok('events', { limit: 2 });
    expect([pos(first2), first2.total, first2.before, first2.after]).toEqual([[1, 2], 7, 0, 5]);
    // within from..to
    const mid = await l.ok('events', { from: 2, to: 6, last: 2 });
    expect([pos(mid), mid.total, mid.before, mid.after]).toEqual([[5, 6], 5, 3, 0]);
    // a stream: its versions, not the log's positions
    const a = await l.ok('events', { streamId: 'host-a', last: 2 });
    expect([pos(a), a.total, a.before, a.after]).toEqual([[5, 7], 4, 2, 0]);
    const aFrom = await l.ok('events', { streamId: 'host-a', from: 3, to: 6, last: 5 });
    expect([pos(aFrom), aFrom.total, aFrom.before, aFrom.after]).toEqual([[3, 5], 2, 0, 0]);
    const b = await l.ok('events', { streamId: 'host-b', from: 3, limit: 1 });
    expect([pos(b), b.total, b.before, b.after]).toEqual([[4], 2, 0, 1]);
    // more than there are, none at all, and an empty range
    expect(pos(await l.ok('events', { last: 100 }))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const none = await l.ok('events', { streamId: 'host-c', last: 3 });
    expect([none.events, none.total]).toEqual([[], 0]);
    expect((await l.ok('events', { from: 8, last: 3 })).total).toBe(0);
    // limit and last together: which is meant?
    expect((await l.call('events', { limit: 2, last: 2 })).error).toMatchObject({ code: 'invalid_request', details: { field: 'last' } });
  });
});
