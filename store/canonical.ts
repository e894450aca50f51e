// Canonical JSON (sorted keys, no whitespace) and the hash chain over stored events.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted, so equal values always serialize to the same text. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  if (typeof v === 'bigint') throw new TypeError('bigint in event JSON: encode u64 values as decimal strings');
  return v;
}

/** The hash of the chain genesis (the value "before" position 1). */
export const GENESIS_HASH = '0'.repeat(64);

export interface HashedContent {
  position: number;
  streamId: string;
  version: number;
  type: string;
  schemaVersion: number;
  time: string;
  data: string;
  metadata: string;
}

/** sha256(previous hash ‖ canonical content), hex. */
export function chainHash(prev: string, e: HashedContent): string {
  return createHash('sha256')
    .update(prev)
    .update('\n')
    .update(`${e.position}\n${e.streamId}\n${e.version}\n${e.type}\n${e.schemaVersion}\n${e.time}\n${e.data}\n${e.metadata}`)
    .digest('hex');
}
