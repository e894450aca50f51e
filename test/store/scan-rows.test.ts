// scanRows(): the replay passes read rows as arrays of the columns they need (position, stream,
// version, type, time, data), with the same rows, order and filters as scan().
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { scanDecoded, scanRows } from '../../machines/rebuild.js';
import type { EventStore } from '../../store/index.js';
import { cleanup, ev, openStore, tempDbPath } from './helpers.js';

afterEach(cleanup);

function filled(): EventStore {
  const s = openStore(tempDbPath());
  for (let i = 0; i < 7; i++)
    s.commit([
      {
        streamId: i % 3 ? 'vm-a' : 'host-b',
        expectedVersion: 'any',
        events: [ev('tick', 1_000_000_000_000_000_000n + BigInt(i), { i, big: '18446744073709551615' })],
      },
    ]);
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
    expect(pairs).toEqual([
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ]);
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

/** A log of n events over three streams, time beyond 2^53, data with a u64 string and a nested object. */
function many(n: number): { s: EventStore; path: string } {
  const path = tempDbPath();
  const s = openStore(path);
  const batches = [];
  for (let i = 0; i < n; i++)
    batches.push({
      streamId: ['vm-a', 'host-b', 'vm-c'][i % 3]!,
      expectedVersion: 'any' as const,
      events: [ev('tick', 1_000_000_000_000_000_000n + BigInt(i), { i, big: '18446744073709551615', s: 'a"b,\\c]', o: { k: [i] } })],
    });
  s.commit(batches);
  return { s, path };
}
const decodedRows = (chunks: Iterable<unknown[]>) => {
  const out: unknown[][] = [];
  for (const c of chunks) {
    expect(c.length % 6).toBe(0);
    for (let i = 0; i < c.length; i += 6) out.push(c.slice(i, i + 6));
  }
  return out;
};
const parsedRows = (rows: Iterable<unknown[]>) => [...rows].map((r) => [r[0], r[1], r[2], r[3], r[4], JSON.parse(r[5] as string)]);

describe('scanChunks', () => {
  it('reads the rows of scanRows() in chunks, data parsed, across chunk boundaries and with every filter', () => {
    const { s } = many(700);
    expect(s.scanChunks).toBeTypeOf('function');
    const chunks = [...s.scanChunks!({})];
    // 700 rows: 256 + 256 + 188
    expect(chunks.map((c) => c.length / 6)).toEqual([256, 256, 188]);
    expect(decodedRows(chunks)).toEqual(parsedRows(s.scanRows!({})));
    expect(decodedRows(chunks)[699]).toEqual([
      700,
      'vm-a',
      234,
      'tick',
      '1000000000000000699',
      { big: '18446744073709551615', i: 699, o: { k: [699] }, s: 'a"b,\\c]' },
    ]);
    for (const o of [
      { fromPosition: 250, toPosition: 600 },
      { streamId: 'host-b', fromPosition: 10 },
      { streamPrefix: 'vm-', limit: 300 },
      { toPosition: 256 },
      { fromPosition: 701 },
      { limit: 0 },
    ]) {
      expect(decodedRows(s.scanChunks!(o))).toEqual(parsedRows(s.scanRows!(o)));
    }
    expect(decodedRows(s.scanChunks!({ streamPrefix: 'vm-', limit: 300 }))).toHaveLength(300);
  });

  it('reads the log as it stood when the scan began: events appended meanwhile are left out', () => {
    const { s, path } = many(600);
    const other = openStore(path);
    const it = s.scanChunks!({});
    const first = it.next().value!;
    expect(first[0]).toBe(1);
    other.commit([{ streamId: 'vm-a', expectedVersion: 'any', events: [ev('tick', 2_000_000_000_000_000_000n)] }]);
    const rest = decodedRows(it);
    expect(rest.at(-1)![0]).toBe(600);
    expect(s.lastPosition()).toBe(601);
  });

  it('a data column that is not one JSON value fails as its own JSON.parse would, not as a shifted chunk', () => {
    const { s, path } = many(10);
    // two values where one belongs: parsed inside one array they would shift every later row by one
    const db = new Database(path);
    db.prepare("UPDATE events SET data = '1,2' WHERE position = 4").run();
    db.close();
    expect(() => [...s.scanChunks!({})]).toThrow(SyntaxError);
    expect(decodedRows(s.scanChunks!({ toPosition: 3 }))).toEqual(parsedRows(s.scanRows!({ toPosition: 3 })));
    expect(decodedRows(s.scanChunks!({ fromPosition: 5 }))).toEqual(parsedRows(s.scanRows!({ fromPosition: 5 })));
  });

  it('omitDataFields: the data without those top-level fields, the rest as recorded, by the engine and by the fallback', () => {
    const { s, path } = many(600);
    // the rows as scanRows() reads them, with `o` and `s` taken out after the parse
    const without = (o: object) =>
      parsedRows(s.scanRows!(o)).map((r) => {
        const { o: _o, s: _s, ...rest } = r[5] as Record<string, unknown>;
        return [...r.slice(0, 5), rest];
      });
    const omit = { omitDataFields: ['o', 's'] };
    const chunks = [...s.scanChunks!(omit)];
    expect(chunks.map((c) => c.length / 6)).toEqual([256, 256, 88]);
    expect(decodedRows(chunks)).toEqual(without({}));
    expect(decodedRows(chunks)[599]![5]).toEqual({ big: '18446744073709551615', i: 599 });
    for (const o of [
      { streamId: 'vm-a', fromPosition: 10, toPosition: 400 },
      { streamPrefix: 'vm-', limit: 300 },
    ])
      expect(decodedRows(s.scanChunks!({ ...o, ...omit }))).toEqual(without(o));
    // a field no event has: the rows as recorded
    expect(decodedRows(s.scanChunks!({ omitDataFields: ['absent'] }))).toEqual(parsedRows(s.scanRows!({})));
    // a store without scanChunks() leaves them out after its own parse
    const bare = { scan: (o?: object) => s.scan(o) } as unknown as EventStore;
    expect(decodedRows(scanDecoded(bare, { streamId: 'host-b', ...omit }))).toEqual(without({ streamId: 'host-b' }));
    // a name that is not one is refused, nothing read
    expect(() => [...s.scanChunks!({ omitDataFields: ["o') || ('"] })]).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    // data that is not JSON fails as its own JSON.parse would, and the chunks around it read as before
    const db = new Database(path);
    db.prepare("UPDATE events SET data = '1,2' WHERE position = 300").run();
    db.close();
    expect(() => [...s.scanChunks!(omit)]).toThrow(SyntaxError);
    expect(decodedRows(s.scanChunks!({ toPosition: 299, ...omit }))).toEqual(without({ toPosition: 299 }));
    expect(decodedRows(s.scanChunks!({ fromPosition: 301, ...omit }))).toEqual(without({ fromPosition: 301 }));
  });

  it('scanDecoded() builds the same chunks from scan() for a store without them', () => {
    const { s } = many(300);
    const bare = { scan: (o?: object) => s.scan(o) } as unknown as EventStore;
    expect(decodedRows(scanDecoded(bare, { streamPrefix: 'vm-' }))).toEqual(decodedRows(scanDecoded(s, { streamPrefix: 'vm-' })));
    expect([...scanDecoded(bare, {})].map((c) => c.length / 6)).toEqual([256, 44]);
  });
});
