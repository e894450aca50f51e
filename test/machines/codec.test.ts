// The JSON codecs at the edge of the log: bigints become decimal strings, undefined fields are
// dropped, and toSortedJson builds every object in the log's canonical key order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toJson, toSortedJson } from '../../machines/codec.js';
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
