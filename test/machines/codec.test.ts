// The JSON codecs at the edge of the log: bigints become decimal strings, undefined fields are
// dropped, and toSortedJson builds every object in the log's canonical key order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hwFromJson, hwToJson, jsonRows, toJson, toSortedJson, type Json } from '../../machines/codec.js';
import { canonicalJson } from '../../store/canonical.js';

describe('toJson and toSortedJson', () => {
  it('encode bigints as decimal strings and drop undefined fields', () => {
    const v = { b: 18446744073709551615n, a: [1n, -5n, undefined], u: undefined, n: { x: 0n } };
    expect(toJson(v)).toEqual({ b: '18446744073709551615', a: ['1', '-5', undefined], n: { x: '0' } });
    expect(JSON.stringify(toSortedJson(v))).toBe('{"a":["1","-5",null],"b":"18446744073709551615","n":{"x":"0"}}');
  });

  it('toSortedJson is already canonical: the store has nothing to reorder', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const s = toSortedJson(v);
        expect(JSON.stringify(s) ?? 'null').toBe(canonicalJson(v));
        expect(toJson(v)).toEqual(s);
      }),
      { numRuns: 2000 },
    );
  });

  it('write what JSON would: toJSON() honoured, function fields dropped (found in review)', () => {
    const v = { b: { toJSON: () => ({ z: 1n, a: 2 }) }, f: () => 1, a: 1 };
    expect(JSON.stringify(toSortedJson(v))).toBe('{"a":1,"b":{"a":2,"z":"1"}}');
    expect(toJson(v)).toEqual({ a: 1, b: { z: '1', a: 2 } });
  });

  it('keep a field named "__proto__" as data', () => {
    const v = JSON.parse('{"__proto__":{"k":1},"a":2}');
    expect(Object.keys(toJson(v) as object)).toEqual(['__proto__', 'a']);
    expect(JSON.stringify(toSortedJson(v))).toBe('{"__proto__":{"k":1},"a":2}');
  });
});

describe('jsonRows', () => {
  it('toJson shares rows built as JSON (at any depth); toSortedJson still copies them in key order', () => {
    const rows = jsonRows([
      { z: '1', a: null },
      { z: '2', a: 'x' },
    ]);
    const plain = [{ z: '1', a: null }];
    const out = toJson({ n: 1n, rows, plain }) as { n: string; rows: unknown; plain: unknown };
    expect(out.rows).toBe(rows);
    expect(out.plain).not.toBe(plain);
    expect(out.n).toBe('1');
    // deeper than the recursive copy goes: the explicit stack shares them too
    let deep: Json = { rows };
    for (let i = 0; i < 300; i++) deep = [deep];
    let copied: unknown = toJson(deep);
    for (let i = 0; i < 300; i++) copied = (copied as unknown[])[0];
    expect((copied as { rows: unknown }).rows).toBe(rows);
    const sorted = toSortedJson({ rows }) as { rows: unknown };
    expect(sorted.rows).not.toBe(rows);
    expect(JSON.stringify(sorted)).toBe('{"rows":[{"a":null,"z":"1"},{"a":"x","z":"2"}]}');
  });
});

describe('hwFromJson', () => {
  it('reads back every u64 of a recorded sample exactly, its catch-up tick included, and the same value on every read', () => {
    const s = { t: 9_007_199_254_740_993n, tsc: 18_446_744_073_709_551_615n, rawNs: 22_500_007_152n, realNs: 1_767_225_601_143_599_708n };
    const tick = { t: 9_007_199_254_740_000n, tsc: 18_446_744_073_709_551_000n, rawNs: 22_500_000_000n, realNs: 1_767_225_601_143_000_000n };
    const h = hwFromJson(hwToJson({ ...s, tick }), s.t);
    expect([h.t, h.tsc, h.rawNs, h.realNs]).toEqual([s.t, s.tsc, s.rawNs, s.realNs]);
    expect([h.tick!.t, h.tick!.tsc, h.tick!.rawNs, h.tick!.realNs, h.tick!.tick]).toEqual([tick.t, tick.tsc, tick.rawNs, tick.realNs, undefined]);
    expect(h.tsc).toBe(s.tsc);
    expect(h.tick).toBe(h.tick);
    expect(hwFromJson(hwToJson(s), s.t).tick).toBeUndefined();
  });
});
