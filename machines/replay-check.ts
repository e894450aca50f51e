// What verify cannot judge from the store's tables alone, judged by replay: a snapshot's state is
// the state its stream's events give up to it (a binding recomputed over a forged state passes
// every hash, not this), and a VM stream's wake instant is when its state's next timer falls due.
// The store feeds one stream at a time (store/types.ts StreamReplayer); this evolves it with the
// same reducers a rebuild uses.
import { deserialize } from 'node:v8';
import type { EventRow, StreamReplay, StreamReplayer } from '../store/types.js';
import { wakeAtOf } from './session/scheduler.js';
import { applyStreamEvent, streamKind, type StreamKind, type StreamState } from './streams.js';
import { CODE_VERSION } from './version.js';
import type { VmRecord } from './vm/evolve.js';

/** The replayer verify runs with: this code version's reducers. */
export function streamReplayer(): StreamReplayer {
  return {
    codeVersion: CODE_VERSION,
    hasWake: (streamId) => kindOf(streamId) === 'vm',
    replay: (streamId) => replayOf(streamId),
  };
}

function kindOf(streamId: string): StreamKind | null {
  try {
    return streamKind(streamId);
  } catch {
    return null;
  }
}

function replayOf(streamId: string): StreamReplay {
  const kind = kindOf(streamId);
  let state: StreamState | null = null;
  return {
    apply(row: EventRow) {
      if (kind === null) return;
      state = applyStreamEvent(kind, state, { type: row[3], data: JSON.parse(row[5]) as object }, BigInt(row[4]), { noResult: true }).state;
    },
    differs(bytes: Buffer) {
      if (kind === null) return `no reducer evolves stream ${streamId}`;
      let kept: unknown;
      try {
        kept = deserialize(bytes);
      } catch (e) {
        return `its bytes do not decode: ${(e as Error).message}`;
      }
      return sameState(kept, state) ? undefined : firstDifference(kept, state, '');
    },
    wakeAt() {
      return kind === 'vm' ? wakeAtOf(state as VmRecord | null) : null;
    },
  };
}

/**
 * Two states are the same when their values are, bigints included: a field set to undefined is the
 * same as one absent (a state copied by the session and the same state evolved by replay may differ
 * only there).
 */
function sameState(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return Number.isNaN(a) && Number.isNaN(b);
  if (Array.isArray(a) !== Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((x, i) => sameState(x, (b as unknown[])[i]));
  const keys = (o: object) => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const ka = keys(a);
  if (ka.length !== keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameState((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function shown(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'an array' : 'an object';
  return JSON.stringify(v) ?? String(v);
}

/** Where two values first differ, as "path: x in the snapshot, y by replay". */
function firstDifference(kept: unknown, replayed: unknown, path: string): string {
  const at = path || '(the state)';
  if (kept === null || replayed === null || typeof kept !== 'object' || typeof replayed !== 'object' || Array.isArray(kept) !== Array.isArray(replayed)) {
    return `${at}: ${shown(kept)} in the snapshot, ${shown(replayed)} by replay`;
  }
  const a = kept as Record<string, unknown>;
  const b = replayed as Record<string, unknown>;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!sameState(a[k], b[k])) return firstDifference(a[k], b[k], path ? `${path}.${k}` : k);
  }
  return `${at}: differs in kind (${Object.getPrototypeOf(a)?.constructor?.name} in the snapshot, ${Object.getPrototypeOf(b)?.constructor?.name} by replay)`;
}
