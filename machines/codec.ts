// JSON codecs at the edge of the event log: u64/s64 travel as decimal strings, in memory they
// are bigint. Hardware samples are stored in every event so replay never consults a host.
import type { HostSample } from '../kvm/host.js';
import { defineKey, sortedKeys } from '../store/canonical.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** An object with its own JSON form (JSON.stringify would write what toJSON() gives). */
function isJsonSerializable(v: unknown): v is { toJSON: () => unknown } {
  return v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function';
}

/**
 * A deep copy as JSON would write it: every bigint as its decimal string, toJSON() honoured,
 * undefined, function and symbol fields dropped; with `sorted`, every object's keys in order.
 */
function encode(v: unknown, sorted: boolean): Json {
  if (typeof v === 'bigint') return v.toString();
  if (isJsonSerializable(v)) return encode(v.toJSON(), sorted);
  if (Array.isArray(v)) return v.map((x) => encode(x, sorted));
  if (v && typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const k of sorted ? sortedKeys(v) : Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
      if (k === '__proto__') defineKey(out, k, encode(x, sorted));
      else out[k] = encode(x, sorted);
    }
    return out;
  }
  return v as Json;
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
  return { rawNs: hw.rawNs, realNs: hw.realNs, tick: { rawNs: rawNs.toString(), realNs: realNs.toString(), t: t.toString(), tsc: tsc.toString() }, tsc: hw.tsc };
}

export function hwFromJson(h: HwJson, t: bigint): HostSample {
  const s: HostSample = { t, tsc: BigInt(h.tsc), rawNs: BigInt(h.rawNs), realNs: BigInt(h.realNs) };
  if (h.tick) s.tick = hwFromJson(h.tick, BigInt(h.tick.t));
  return s;
}
