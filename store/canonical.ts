// Canonical JSON (sorted keys, no whitespace) and the hash chain over stored events.
import { hash } from 'node:crypto';
import type { RawEvent } from './types.js';

/** JSON with object keys sorted, so equal values always serialize to the same text. */
export function canonicalJson(v: unknown): string {
  // The native serializer does the writing and escaping; only objects whose keys are out of
  // order are copied with their keys sorted first.
  return JSON.stringify(inKeyOrder(v)) ?? 'null';
}

/**
 * An object's own enumerable keys in sorted (code unit) order: an insertion sort in place, which
 * allocates nothing beyond the key list and is linear when the keys are already in order (event
 * data is small objects, usually built in order).
 */
export function sortedKeys(o: object): string[] {
  const keys = Object.keys(o);
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    if (keys[j]! <= k) continue;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** Set a data property, including one named "__proto__" (an assignment would set the prototype instead). */
export function defineKey(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

function inKeyOrder(v: unknown): unknown {
  if (typeof v === 'bigint') throw new TypeError('bigint in event JSON: encode u64 values as decimal strings');
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const x = inKeyOrder(v[i]);
      if (x !== v[i]) (out ??= v.slice())[i] = x;
    }
    return out ?? v;
  }
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return inKeyOrder((v as { toJSON: () => unknown }).toJSON());
  let keys = Object.keys(v);
  let sorted = true;
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      sorted = false;
      break;
    }
  }
  if (!sorted) keys = sortedKeys(v);
  let copy: Record<string, unknown> | null = null;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const x = (v as Record<string, unknown>)[k];
    const y = inKeyOrder(x);
    if (copy === null && (!sorted || y !== x)) {
      copy = {};
      for (let j = 0; j < i; j++) defineKey(copy, keys[j]!, (v as Record<string, unknown>)[keys[j]!]);
    }
    if (copy !== null) defineKey(copy, k, y);
  }
  return copy ?? v;
}

/** The hash of the chain genesis (the value "before" position 1). */
export const GENESIS_HASH = '0'.repeat(64);

/** What the chain covers of an event: every stored column but the hash. */
export type HashedContent = RawEvent;

/** sha256(previous hash ‖ canonical content), hex. */
export function chainHash(prev: string, e: HashedContent): string {
  // one-shot crypto.hash (Node ≥ 20.12): half the cost of a createHash() object per event
  return hash('sha256', `${prev}\n${e.position}\n${e.streamId}\n${e.version}\n${e.type}\n${e.schemaVersion}\n${e.time}\n${e.data}\n${e.metadata}`, 'hex');
}
