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

export function outcomeEqual(a: Outcome, b: Outcome): boolean {
  return jsonEqual(a.result, b.result) && jsonEqual(a.trace, b.trace);
}
