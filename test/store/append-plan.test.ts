// The append plan, with no database: heads and batches in; rows, written events, stream heads,
// wake instants, category counts, the new head and the request's row out. Both engines write
// exactly this plan, so what it decides is decided here once.
import { hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { planAppend, requestRow, type AppendHeads, type AppendPlan, type RequestHead } from '../../store/append-plan.js';
import { GENESIS_HASH } from '../../store/canonical.js';
import { ConflictError, StoreError } from '../../store/errors.js';
import { responseHash, type StoredRequestRow } from '../../store/request-check.js';
import type { AppendBatch, NewEvent } from '../../store/types.js';

const H7 = 'ab'.repeat(32);
const ev = (type: string, time: bigint | number, data: unknown = {}, metadata?: NewEvent['metadata']): NewEvent => ({
  type,
  time: BigInt(time),
  data,
  metadata,
});
const heads = (versions: Record<string, number> = {}, more: Partial<AppendHeads> = {}): AppendHeads => ({
  position: 7,
  hash: H7,
  versions: new Map(Object.entries(versions)),
  ...more,
});
/** heads with what the requests table holds of the id */
const asked = (request: RequestHead) => heads({}, { request });
/** one batch of a new stream */
const fresh = (streamId: string, events: NewEvent[]): AppendBatch[] => [{ streamId, expectedVersion: 0, events }];
const noRequest: RequestHead = { seq: 4, stored: null, carried: null };

function planned(h: AppendHeads, batches: AppendBatch[], request?: Parameters<typeof planAppend>[2]): AppendPlan {
  const p = planAppend(h, batches, request);
  if (p.duplicate) throw new Error('a duplicate');
  return p;
}

function thrown(f: () => unknown): StoreError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return e as StoreError;
  }
  throw new Error('nothing thrown');
}

// sha256 over the previous hash and the stored columns, one per line (the chain as verify recomputes it)
const link = (prev: string, cols: (string | number)[]) => hash('sha256', [prev, ...cols].join('\n'), 'hex');

describe('rows: the log continued from its heads', () => {
  const batches: AppendBatch[] = [
    { streamId: 'vm-a', expectedVersion: 2, events: [ev('x', 10, { b: 1, a: 2 })] },
    { streamId: 'vm-b', expectedVersion: 0, events: [ev('y', 11)] },
    { streamId: 'vm-a', expectedVersion: 3, events: [ev('z', 12, [1, { d: null, c: '18446744073709551615' }])] },
  ];

  it('positions after the last one, versions after each stream’s, data and metadata as canonical JSON, each hash chained on the one before', () => {
    const p = planned(heads({ 'vm-a': 2 }), batches);
    expect(p.rows.map((r) => [r.position, r.streamId, r.version, r.type, r.schemaVersion, r.time, r.data, r.metadata])).toEqual([
      [8, 'vm-a', 3, 'x', 1, 10n, '{"a":2,"b":1}', '{}'],
      [9, 'vm-b', 1, 'y', 1, 11n, '{}', '{}'],
      [10, 'vm-a', 4, 'z', 1, 12n, '[1,{"c":"18446744073709551615","d":null}]', '{}'],
    ]);
    const h8 = link(H7, [8, 'vm-a', 3, 'x', 1, 10, '{"a":2,"b":1}', '{}']);
    const h9 = link(h8, [9, 'vm-b', 1, 'y', 1, 11, '{}', '{}']);
    const h10 = link(h9, [10, 'vm-a', 4, 'z', 1, 12, '[1,{"c":"18446744073709551615","d":null}]', '{}']);
    expect(p.rows.map((r) => r.hash)).toEqual([h8, h9, h10]);
    expect(p.end).toEqual({ position: 10, hash: h10 });
    expect(p.written).toEqual([
      { position: 8, streamId: 'vm-a', version: 3, type: 'x' },
      { position: 9, streamId: 'vm-b', version: 1, type: 'y' },
      { position: 10, streamId: 'vm-a', version: 4, type: 'z' },
    ]);
  });

  it('rows left for their writer to chain: the same rows with no hash, and no hash computed', () => {
    const chained = planned(heads({ 'vm-a': 2 }), batches);
    const unchained = planAppend(heads({ 'vm-a': 2 }), batches, {}, false) as AppendPlan;
    expect(unchained.rows.map((r) => r.hash)).toEqual(['', '', '']);
    expect(unchained.rows).toEqual(chained.rows.map((r) => ({ ...r, hash: '' })));
    expect(unchained.written).toEqual(chained.written);
  });

  it('each stream’s new head once, however many runs it had, with the chain hash a snapshot there binds to', () => {
    const p = planned(heads({ 'vm-a': 2 }), batches);
    expect(p.streams).toEqual([
      { streamId: 'vm-a', version: 4, position: 10, type: 'z', hash: p.rows[2]!.hash },
      { streamId: 'vm-b', version: 1, position: 9, type: 'y', hash: p.rows[1]!.hash },
    ]);
  });

  it('an empty log starts at position 1 on the genesis hash; an empty commit writes nothing and keeps the head', () => {
    const p = planned({ position: 0, hash: GENESIS_HASH, versions: new Map() }, [{ streamId: 'x', expectedVersion: 0, events: [ev('e', -1, null)] }]);
    expect(p.rows[0]).toMatchObject({ position: 1, version: 1, data: 'null', hash: link(GENESIS_HASH, [1, 'x', 1, 'e', 1, -1, 'null', '{}']) });
    const none = planned(heads(), []);
    expect(none).toMatchObject({ rows: [], written: [], streams: [], end: { position: 7, hash: H7 }, request: null });
    expect(none.wakes.size + none.categories.size).toBe(0);
  });

  it('data the producer gave in canonical order is written as it is; a schema version is kept', () => {
    const p = planned(heads(), fresh('s', [{ type: 't', time: 1n, data: { b: 1, a: 2 }, canonical: true, schemaVersion: 3 }]));
    expect(p.rows[0]).toMatchObject({ data: '{"b":1,"a":2}', schemaVersion: 3 });
  });
});

describe('checks: nothing is planned for a commit that cannot be written', () => {
  it('a stream not at the version expected is a conflict, also against the commit’s own earlier batch', () => {
    const a = thrown(() => planAppend(heads({ 'vm-a': 2 }), [{ streamId: 'vm-a', expectedVersion: 1, events: [ev('x', 1)] }]));
    expect(a).toBeInstanceOf(ConflictError);
    expect(a.details).toEqual({ streamId: 'vm-a', expected: 1, actual: 2 });
    const b = thrown(() =>
      planAppend(heads({ 'vm-a': 2 }), [
        { streamId: 'vm-a', expectedVersion: 2, events: [ev('x', 1)] },
        { streamId: 'vm-a', expectedVersion: 2, events: [ev('y', 2)] },
      ]),
    );
    expect(b.details).toEqual({ streamId: 'vm-a', expected: 2, actual: 3 });
    // a stream the heads do not hold is at version 0; 'any' takes whatever it is at
    const gone = thrown(() => planAppend(heads(), [{ streamId: 'new', expectedVersion: 1, events: [] }]));
    expect(gone.details).toEqual({ streamId: 'new', expected: 1, actual: 0 });
    expect(planned(heads({ s: 5 }), [{ streamId: 's', expectedVersion: 'any', events: [ev('x', 1)] }]).written[0]!.version).toBe(6);
  });

  it('an event time outside a signed 64-bit instant is invalid_request; both ends of the range are kept', () => {
    const e = thrown(() => planAppend(heads(), [{ streamId: 's', expectedVersion: 0, events: [ev('x', 1), ev('y', 1n << 63n)] }]));
    expect(e.code).toBe('invalid_request');
    expect(e.message).toBe('event time 9223372036854775808 does not fit a signed 64-bit instant');
    expect(thrown(() => planAppend(heads(), [{ streamId: 's', expectedVersion: 0, events: [ev('x', -(1n << 63n) - 1n)] }])).code).toBe('invalid_request');
    const p = planned(heads(), [{ streamId: 's', expectedVersion: 0, events: [ev('x', -(1n << 63n)), ev('y', (1n << 63n) - 1n)] }]);
    expect(p.rows.map((r) => r.time)).toEqual([-(1n << 63n), (1n << 63n) - 1n]);
  });

  it('an event whose metadata names another request id is invalid_request', () => {
    const e = thrown(() => planAppend(asked(noRequest), fresh('s', [ev('x', 1, {}, { requestId: 'other' })]), { requestId: 'req' }));
    expect(e.code).toBe('invalid_request');
    expect(e.details).toEqual({ field: 'requestId' });
  });
});

describe('categories: the streams each category gains', () => {
  it('a stream counts once, with its first event; one that exists, or gets no event, does not', () => {
    const p = planned(heads({ 'vm-old': 3 }), [
      { streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1)] },
      { streamId: 'vm-b', expectedVersion: 0, events: [ev('x', 2)] },
      { streamId: 'vm-a', expectedVersion: 1, events: [ev('y', 3)] },
      { streamId: 'vm-old', expectedVersion: 3, events: [ev('z', 4)] },
      { streamId: 'host-empty', expectedVersion: 0, events: [] },
      { streamId: 'ledger', expectedVersion: 0, events: [ev('t', 5)] },
    ]);
    expect([...p.categories]).toEqual([
      ['vm', 2],
      ['ledger', 1],
    ]);
  });
});

describe('wake instants: set with a batch, recorded in its last event', () => {
  it('the batch’s last event carries the wake instant in its metadata; the others and the object given are untouched', () => {
    const shared = Object.freeze({ handler: 'h' });
    const p = planned(heads(), [{ streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1, {}, shared), ev('y', 2, {}, shared)], wakeAt: 55n }]);
    expect(p.rows.map((r) => r.metadata)).toEqual(['{"handler":"h"}', '{"handler":"h","wakeAt":"55"}']);
    expect([...p.wakes]).toEqual([['vm-a', 55n]]);
    expect(shared).toEqual({ handler: 'h' });
  });

  it('null clears (recorded as null), undefined leaves it, an empty batch sets it without a row or a head', () => {
    const p = planned(heads({ 'vm-c': 1 }), [
      { streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1)], wakeAt: null },
      { streamId: 'vm-b', expectedVersion: 0, events: [ev('x', 2)] },
      { streamId: 'vm-c', expectedVersion: 1, events: [], wakeAt: 9n },
    ]);
    expect(p.rows.map((r) => r.metadata)).toEqual(['{"wakeAt":null}', '{}']);
    expect([...p.wakes]).toEqual([
      ['vm-a', null],
      ['vm-c', 9n],
    ]);
    expect(p.streams.map((s) => s.streamId)).toEqual(['vm-a', 'vm-b']);
  });

  it('a stream’s later batch with a wake instant overrides its earlier one', () => {
    const p = planned(heads(), [
      { streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1)], wakeAt: 5n },
      { streamId: 'ledger', expectedVersion: 0, events: [ev('t', 2)] },
      { streamId: 'vm-a', expectedVersion: 1, events: [ev('y', 3)], wakeAt: 8n },
    ]);
    expect([...p.wakes]).toEqual([['vm-a', 8n]]);
  });

  it('a batch copied from a log (a fork) sets the wake its last event records; a malformed or contradicting one is invalid_request', () => {
    const copied = planned(heads(), [{ streamId: 'vm-a', expectedVersion: 'any', events: [ev('x', 1, {}, { wakeAt: '77' })] }]);
    expect([...copied.wakes]).toEqual([['vm-a', 77n]]);
    expect(copied.rows[0]!.metadata).toBe('{"wakeAt":"77"}');
    expect(thrown(() => planAppend(heads(), fresh('vm-a', [ev('x', 1, {}, { wakeAt: 'soon' })]))).code).toBe('invalid_request');
    const e = thrown(() => planAppend(heads(), [{ streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1, {}, { wakeAt: '1' })], wakeAt: 2n }]));
    expect(e.code).toBe('invalid_request');
    expect(e.message).toMatch(/metadata.wakeAt \("1"\) is not the batch's wake instant \(2\)/);
  });
});

describe('requests: numbered, answered once', () => {
  const batches: AppendBatch[] = [{ streamId: 'vm-a', expectedVersion: 0, events: [ev('x', 1), ev('y', 2)] }];

  it('a new request takes the next number; its row binds the positions, the last chain hash and the response', () => {
    const p = planned(asked(noRequest), batches, { requestId: 'req-1', handler: 'h', fingerprint: 'fp' });
    expect(p.request).toEqual({ requestId: 'req-1', handler: 'h', fingerprint: 'fp', seq: 5 });
    const row = requestRow(p, { positions: [8, 9] })!;
    const fields = {
      requestId: 'req-1',
      handler: 'h',
      fingerprint: 'fp',
      firstPosition: 8,
      lastPosition: 9,
      lastHash: p.rows[1]!.hash,
      response: '{"positions":[8,9]}',
    };
    expect(row).toEqual({ ...fields, responseHash: responseHash(fields), seq: 5 });
  });

  it('a request that writes nothing has no positions and no chain hash; a commit without a request id has no row', () => {
    const p = planned(asked(noRequest), [], { requestId: 'req-0' });
    const row = requestRow(p, undefined);
    expect(row).toMatchObject({ handler: '', fingerprint: null, firstPosition: null, lastPosition: null, lastHash: null, response: 'null', seq: 5 });
    expect(requestRow(planned(heads(), batches), 'x')).toBeNull();
  });

  const stored = (fingerprint: string | null): StoredRequestRow => {
    const r = { requestId: 'req-1', handler: 'h', fingerprint, firstPosition: 3, lastPosition: 3, lastHash: 'cd'.repeat(32), response: '[3]' };
    return { ...r, responseHash: responseHash(r), seq: 2 };
  };

  it('a request id answered before: its stored response, before anything else is looked at (a conflicting batch included)', () => {
    const conflicting: AppendBatch[] = [{ streamId: 'vm-a', expectedVersion: 9, events: [ev('x', 1n << 64n)] }];
    const h = heads({}, { request: { seq: 4, stored: stored('fp'), carried: null } });
    expect(planAppend(h, conflicting, { requestId: 'req-1', fingerprint: 'fp' })).toEqual({ duplicate: true, response: [3] });
    // a row stored without a fingerprint answers any retry
    const unbound = asked({ seq: 4, stored: stored(null), carried: null });
    expect(planAppend(unbound, [], { requestId: 'req-1', fingerprint: 'fp' })).toEqual({ duplicate: true, response: [3] });
  });

  it('answered for another request: conflict; its stored answer altered: corrupt', () => {
    const h = asked({ seq: 4, stored: stored('fp'), carried: null });
    expect(thrown(() => planAppend(h, [], { requestId: 'req-1', fingerprint: 'other' })).code).toBe('conflict');
    const altered = { ...stored('fp'), response: '[4]' };
    expect(thrown(() => planAppend(asked({ seq: 4, stored: altered, carried: null }), [], { requestId: 'req-1', fingerprint: 'fp' })).code).toBe('corrupt');
  });

  it('events carry the id but no row does: a conflict when they end the log (a fork cut inside it), corrupt elsewhere', () => {
    const cut = { seq: 4, stored: null, carried: { first: 6, last: 7, count: 2 } };
    expect(thrown(() => planAppend(asked(cut), batches, { requestId: 'req-1' })).code).toBe('conflict');
    const removed = { seq: 4, stored: null, carried: { first: 2, last: 3, count: 2 } };
    expect(thrown(() => planAppend(asked(removed), batches, { requestId: 'req-1' })).code).toBe('corrupt');
    // none carried: a new request
    const none = asked({ seq: 0, stored: null, carried: { first: 0, last: 0, count: 0 } });
    expect(planAppend(none, batches, { requestId: 'req-1' }).duplicate).toBe(false);
  });

  it('a request id that cannot be stored is invalid_request; a request id without the request head is a programming error', () => {
    expect(thrown(() => planAppend(asked(noRequest), batches, { requestId: 'a\u0000b' })).code).toBe('invalid_request');
    expect(thrown(() => planAppend(asked(noRequest), batches, { requestId: '\uD800' })).code).toBe('invalid_request');
    expect(() => planAppend(heads(), batches, { requestId: 'req-1' })).toThrow(TypeError);
  });
});

describe('a pure function', () => {
  it('changes nothing it is given, and gives the same plan for the same input', () => {
    const h = heads({ 'vm-a': 1 }, { request: noRequest });
    const meta = { handler: 'h', requestId: 'r' };
    const batches: AppendBatch[] = [
      { streamId: 'vm-a', expectedVersion: 1, events: [ev('x', 1, { z: 1, a: [2] }, meta)], wakeAt: 4n },
      { streamId: 'vm-b', expectedVersion: 0, events: [], wakeAt: null },
    ];
    const before = structuredClone({ versions: h.versions, batches });
    const a = planAppend(h, batches, { requestId: 'r' });
    const b = planAppend(h, batches, { requestId: 'r' });
    expect(structuredClone({ versions: h.versions, batches })).toEqual(before);
    expect(a).toEqual(b);
  });
});
