// scanRows(): the replay passes read rows as arrays of the columns they need (position, stream,
// version, type, time, data), with the same rows, order and filters as scan().
import { afterEach, describe, expect, it } from 'vitest';
import { scanRows } from '../../machines/rebuild.js';
import type { EventStore } from '../../store/index.js';
import { cleanup, ev, openStore, tempDbPath } from './helpers.js';

afterEach(cleanup);

function filled(): EventStore {
  const s = openStore(tempDbPath());
  for (let i = 0; i < 7; i++) s.commit([{ streamId: i % 3 ? 'vm-a' : 'host-b', expectedVersion: 'any', events: [ev('tick', 1_000_000_000_000_000_000n + BigInt(i), { i, big: '18446744073709551615' })] }]);
  return s;
}

describe('scanRows', () => {
  it('reads the rows of scan() as arrays, with time as a decimal string (beyond 2^53)', () => {
    const s = filled();
    expect(s.scanRows).toBeTypeOf('function');
    const rows = [...s.scanRows!({ streamId: 'vm-a', fromPosition: 3, toPosition: 6 })];
    expect(rows).toEqual([
      [3, 'vm-a', 2, 'tick', '1000000000000000002', '{"big":"18446744073709551615","i":2}'],
      [5, 'vm-a', 3, 'tick', '1000000000000000004', '{"big":"18446744073709551615","i":4}'],
      [6, 'vm-a', 4, 'tick', '1000000000000000005', '{"big":"18446744073709551615","i":5}'],
    ]);
    // the whole log, in position order, as scan() reads it
    const all = [...scanRows(s, {})];
    const scanned = [...s.scan()].map((r) => [r.position, r.streamId, r.version, r.type, r.time, r.data]);
    expect(all).toEqual(scanned);
    expect(all.map((r) => r[0])).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('a nested scan of the same shape gets a statement of its own', () => {
    const s = filled();
    const pairs: number[][] = [];
    for (const outer of s.scanRows!({ toPosition: 2 })) for (const inner of s.scanRows!({ toPosition: 2 })) pairs.push([outer[0], inner[0]]);
    expect(pairs).toEqual([[1, 1], [1, 2], [2, 1], [2, 2]]);
  });

  it('falls back to scan() for a store without it', () => {
    const s = filled();
    const bare = { scan: (o?: object) => s.scan(o) } as unknown as EventStore;
    expect([...scanRows(bare, { streamId: 'host-b' })]).toEqual([
      [1, 'host-b', 1, 'tick', '1000000000000000000', '{"big":"18446744073709551615","i":0}'],
      [4, 'host-b', 2, 'tick', '1000000000000000003', '{"big":"18446744073709551615","i":3}'],
      [7, 'host-b', 3, 'tick', '1000000000000000006', '{"big":"18446744073709551615","i":6}'],
    ]);
  });
});
