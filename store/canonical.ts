// Canonical JSON (sorted keys, no whitespace) and the hash chain over stored events.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted, so equal values always serialize to the same text. */
export function canonicalJson(v: unknown): string {
  return write(v) ?? 'null';
}

// One pass, as JSON.stringify would write it but with sorted keys (undefined members dropped).
function write(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('bigint in event JSON: encode u64 values as decimal strings');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map((x) => write(x) ?? 'null').join(',')}]`;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return write((v as { toJSON: () => unknown }).toJSON());
  const keys = Object.keys(v as object).sort();
  let out = '';
  for (const k of keys) {
    const x = write((v as Record<string, unknown>)[k]);
    if (x === undefined) continue;
    out += `${out ? ',' : ''}${JSON.stringify(k)}:${x}`;
  }
  return `{${out}}`;
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
