// Canonical JSON: sorted keys at every level, whatever order the value was built in, and the
// in-place key sort it relies on.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, sortedKeys } from '../../store/canonical.js';

const sortDeep = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(sortDeep)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, sortDeep((v as Record<string, unknown>)[k])]),
        )
      : v;

describe('sortedKeys', () => {
  it('is Object.keys in sorted order, for any keys (integer-like, astral, empty, duplicates of case)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.nat().map(String)), fc.nat()), (o) => {
        expect(sortedKeys(o)).toEqual(Object.keys(o).sort());
      }),
    );
  });
});

describe('canonicalJson', () => {
  it('equals JSON.stringify of the value with every object rebuilt in sorted key order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(canonicalJson(v)).toBe(JSON.stringify(sortDeep(v)) ?? 'null');
      }),
      { numRuns: 2000 },
    );
  });

  it('does not depend on the order keys were inserted in, and leaves the value unchanged', () => {
    const a = { z: { y: 1, b: [{ d: 1, c: 2 }] }, a: null, m: 'x' };
    const b = { m: 'x', a: null, z: { b: [{ c: 2, d: 1 }], y: 1 } };
    const before = JSON.stringify(a);
    expect(canonicalJson(a)).toBe('{"a":null,"m":"x","z":{"b":[{"c":2,"d":1}],"y":1}}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
    expect(JSON.stringify(a)).toBe(before);
  });

  it('keeps a key named "__proto__" as data (found by the property above)', () => {
    const v = JSON.parse('{"z":1,"__proto__":{"b":2,"a":1}}');
    expect(canonicalJson(v)).toBe('{"__proto__":{"a":1,"b":2},"z":1}');
  });

  it('refuses a bigint anywhere: u64 values travel as decimal strings', () => {
    expect(() => canonicalJson({ a: [1, { b: 2n }] })).toThrow(/bigint/);
  });
});
