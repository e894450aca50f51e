// Structural equality of JSON values (the recorded and the re-executed results), and the part
// of each VM event that a re-execution must reproduce.
import type { Json } from '../codec.js';
import type { VmEvent } from '../vm/events.js';

export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!jsonEqual(a[k], (b as Record<string, Json>)[k])) return false;
  return true;
}

/** What the kernel produced for an event: its result and its tracepoints. */
export interface Outcome {
  result: Json;
  trace: Json[];
}

/** The outcome a recorded event carries. */
export function recordedOutcome(ev: VmEvent): Outcome {
  const d = ev.data as { ret?: number; errno?: string; out?: Json; result?: Json; trace?: Json[] };
  let result: Json = null;
  if (ev.type === 'IoctlIssued') {
    const r: Record<string, Json> = { ret: d.ret! };
    if (d.errno !== undefined) r.errno = d.errno;
    if (d.out !== undefined) r.out = d.out;
    result = r;
  } else if (ev.type === 'GuestExecuted') result = d.result ?? null;
  return { result, trace: d.trace ?? [] };
}

/**
 * Whether a value as the kernel produced it (bigints included) equals its recorded JSON, without
 * encoding it: replay compares every event, and encodes only the ones that differ.
 */
export function matchesJson(live: unknown, rec: Json | undefined): boolean {
  if (typeof live === 'bigint') return typeof rec === 'string' && rec === live.toString();
  if (live === undefined) return rec === undefined;
  if (live === null || typeof live !== 'object') return live === rec;
  if (rec === null || rec === undefined || typeof rec !== 'object') return false;
  if (Array.isArray(live)) {
    if (!Array.isArray(rec) || rec.length !== live.length) return false;
    for (let i = 0; i < live.length; i++) if (!matchesJson(live[i], rec[i])) return false;
    return true;
  }
  if (Array.isArray(rec)) return false;
  let n = 0;
  for (const k in live as Record<string, unknown>) {
    const v = (live as Record<string, unknown>)[k];
    if (v === undefined) continue;
    n++;
    if (!matchesJson(v, (rec as Record<string, Json>)[k])) return false;
  }
  let m = 0;
  for (const _ in rec) m++;
  return n === m;
}

/** The same comparison for a whole event: the kernel's outcome against what the event recorded. */
export function matchesRecorded(ev: VmEvent, result: unknown, trace: unknown[]): boolean {
  const d = ev.data as { ret?: number; errno?: string; out?: Json; result?: Json; trace?: Json[] };
  if (!matchesJson(trace.length ? trace : undefined, d.trace?.length ? d.trace : undefined)) return false;
  if (ev.type === 'IoctlIssued') {
    const r = result as { ret: number; errno?: string; out?: unknown };
    return r.ret === d.ret && r.errno === d.errno && matchesJson(r.out, d.out);
  }
  if (ev.type === 'GuestExecuted') return matchesJson(result, d.result ?? null);
  return true;
}
