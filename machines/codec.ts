// JSON codecs at the edge of the event log: u64/s64 travel as decimal strings, in memory they
// are bigint. Hardware samples are stored in every event so replay never consults a host.
import type { HostSample } from '../kvm/host.js';
import { defineKey, sortedKeys } from '../store/canonical.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** An object with its own JSON form (JSON.stringify would write what toJSON() gives). */
function isJsonSerializable(v: unknown): v is { toJSON: () => unknown } {
  return v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function';
}

/** An object or array being copied: its keys (null for an array) and how far the copy has got. */
interface Frame {
  src: unknown;
  out: Json[] | { [k: string]: Json };
  keys: string[] | null;
  i: number;
}

/**
 * Arrays built as JSON already (jsonRows()): toJson() takes them as they are, where a copy would
 * walk tens of thousands of rows again (a life's samples). toSortedJson() still copies them: its
 * keys must be put in order.
 */
const READY = new WeakSet<Json[]>();

/**
 * Marks rows its caller built as toJson() would (bigints as decimal strings, no undefined, no
 * toJSON()) and will not change: toJson() of any value holding them shares them rather than copying.
 */
export function jsonRows<T extends Json[]>(rows: T): T {
  READY.add(rows);
  return rows;
}

/** The copy of one value: a scalar at once; an object or array empty, pushed to be filled. */
function place(v: unknown, sorted: boolean, stack: Frame[]): Json {
  if (typeof v === 'bigint') return v.toString();
  if (isJsonSerializable(v)) return place(v.toJSON(), sorted, stack);
  if (Array.isArray(v)) {
    if (!sorted && READY.has(v)) return v as Json[];
    const out: Json[] = new Array<Json>(v.length);
    stack.push({ src: v, out, keys: null, i: 0 });
    return out;
  }
  if (v && typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    stack.push({ src: v, out, keys: sorted ? sortedKeys(v) : Object.keys(v), i: 0 });
    return out;
  }
  return v as Json;
}

/** How deep the recursive copy goes before the rest of a value is copied with an explicit stack. */
const RECURSIVE_DEPTH = 200;

/**
 * A deep copy as JSON would write it: every bigint as its decimal string, toJSON() honoured,
 * undefined, function and symbol fields dropped; with `sorted`, every object's keys in order.
 * Recursive (fast) for the shallow values events hold; any part deeper than RECURSIVE_DEPTH is
 * copied by encodeDeep, so a value of any depth copies without exhausting the call stack.
 */
function encode(v: unknown, sorted: boolean, depth = 0): Json {
  if (typeof v === 'bigint') return v.toString();
  if (isJsonSerializable(v)) return encode(v.toJSON(), sorted, depth);
  if (depth >= RECURSIVE_DEPTH && v !== null && typeof v === 'object') return encodeDeep(v, sorted);
  if (Array.isArray(v)) return !sorted && READY.has(v) ? (v as Json[]) : v.map((x) => encode(x, sorted, depth + 1));
  if (v && typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const k of sorted ? sortedKeys(v) : Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
      if (k === '__proto__') defineKey(out, k, encode(x, sorted, depth + 1));
      else out[k] = encode(x, sorted, depth + 1);
    }
    return out;
  }
  return v as Json;
}

/** encode() with an explicit stack instead of the call stack, for values of any depth. */
function encodeDeep(v: unknown, sorted: boolean): Json {
  const stack: Frame[] = [];
  const root = place(v, sorted, stack);
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.keys === null) {
      const src = f.src as unknown[];
      if (f.i >= src.length) stack.pop();
      else {
        const i = f.i++;
        (f.out as Json[])[i] = place(src[i], sorted, stack);
      }
    } else if (f.i >= f.keys.length) stack.pop();
    else {
      const k = f.keys[f.i++]!;
      const x = (f.src as Record<string, unknown>)[k];
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
      const y = place(x, sorted, stack);
      if (k === '__proto__') defineKey(f.out as Record<string, unknown>, k, y);
      else (f.out as { [k: string]: Json })[k] = y;
    }
  }
  return root;
}

/** Deep copy with every bigint as its decimal string, as JSON would write it (keys in their order). */
export function toJson(v: unknown): Json {
  return encode(v, false);
}

/**
 * toJson() with every object's keys in sorted order: what the log stores (canonical JSON), built
 * in that order at once so the store has nothing to reorder.
 */
export function toSortedJson(v: unknown): Json {
  return encode(v, true);
}

/** The hardware inputs of one instant, as stored in an event. */
export interface HwJson {
  tsc: string;
  rawNs: string;
  realNs: string;
  /** the host at the guest tick a software TSC catch-up exit happened at (HostSample.tick), with its instant */
  tick?: HwJson & { t: string };
}

export function hwToJson(s: HostSample): HwJson {
  const hw: HwJson = { rawNs: s.rawNs.toString(), realNs: s.realNs.toString(), tsc: s.tsc.toString() };
  if (!s.tick) return hw;
  // (keys in canonical order: tick sorts between realNs and tsc)
  const { t, tsc, rawNs, realNs } = s.tick;
  return {
    rawNs: hw.rawNs,
    realNs: hw.realNs,
    tick: { rawNs: rawNs.toString(), realNs: realNs.toString(), t: t.toString(), tsc: tsc.toString() },
    tsc: hw.tsc,
  };
}

/**
 * A recorded sample: each u64 is converted from its decimal string when the kernel first reads it
 * (an event reads one or two of them: a guest's rdtsc only the TSC), then kept. Its values are
 * getters: a spread or a structured copy of it keeps only `t`, so the kernel reads it, never stores it.
 */
class RecordedSample implements HostSample {
  readonly #h: HwJson;
  #tsc: bigint | undefined;
  #rawNs: bigint | undefined;
  #realNs: bigint | undefined;
  #tick: HostSample | undefined;
  constructor(
    h: HwJson,
    readonly t: bigint,
  ) {
    this.#h = h;
  }
  get tsc(): bigint {
    return (this.#tsc ??= BigInt(this.#h.tsc));
  }
  get rawNs(): bigint {
    return (this.#rawNs ??= BigInt(this.#h.rawNs));
  }
  get realNs(): bigint {
    return (this.#realNs ??= BigInt(this.#h.realNs));
  }
  get tick(): HostSample | undefined {
    const k = this.#h.tick;
    return k ? (this.#tick ??= new RecordedSample(k, BigInt(k.t))) : undefined;
  }
}

/** The host sample an event recorded (read-only: the kernel reads a sample, never writes it). */
export function hwFromJson(h: HwJson, t: bigint): HostSample {
  return new RecordedSample(h, t);
}

/** How deeply objects and arrays nest in a JSON value (a scalar: 0), counted without recursion up to `cap`. */
export function nestingDepth(v: unknown, cap = Infinity): number {
  let max = 0;
  const stack: { v: unknown; d: number }[] = [{ v, d: 0 }];
  while (stack.length) {
    const { v: x, d } = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d + 1 > max) max = d + 1;
    if (max >= cap) return max;
    for (const y of Array.isArray(x) ? x : Object.values(x)) if (y !== null && typeof y === 'object') stack.push({ v: y, d: d + 1 });
  }
  return max;
}

/**
 * JSON.stringify(v) for plain JSON values of any depth (the native serializer recurses and
 * overflows the call stack some thousands of levels down).
 */
export function jsonTextDeep(v: Json): string {
  const parts: string[] = [];
  // each item: a value to write, or a literal piece of punctuation
  const todo: ({ lit: string } | { v: Json })[] = [{ v }];
  while (todo.length) {
    const t = todo.pop()!;
    if ('lit' in t) {
      parts.push(t.lit);
      continue;
    }
    const x = t.v;
    if (Array.isArray(x)) {
      parts.push('[');
      todo.push({ lit: ']' });
      for (let i = x.length - 1; i >= 0; i--) {
        todo.push({ v: x[i] === undefined ? null : x[i]! });
        if (i > 0) todo.push({ lit: ',' });
      }
    } else if (x !== null && typeof x === 'object') {
      parts.push('{');
      todo.push({ lit: '}' });
      const keys = Object.keys(x).filter((k) => x[k] !== undefined);
      for (let i = keys.length - 1; i >= 0; i--) {
        todo.push({ v: x[keys[i]!]! });
        todo.push({ lit: `${JSON.stringify(keys[i])}:` });
        if (i > 0) todo.push({ lit: ',' });
      }
    } else parts.push(JSON.stringify(x) ?? 'null');
  }
  return parts.join('');
}
