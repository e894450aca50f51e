// The template stream (template-<id>): one VM's clock state as a VMM strategy saved it once (its
// pause and save ioctls are in the VM's stream), the saved state itself, and every clone restored
// from it since. Firecracker's snapshot/restore is the use: one snapshot, many microVMs restored
// from the same file, each on its own at its own instant.
import type { Json } from '../codec.js';
import type { MigrationFailure, PhaseMarks } from './state.js';

export { templateStreamId } from '../stream-ids.js';

/** The save half of a migration, as a template records it (the phases a clone's audit starts from). */
export interface TemplatePhase {
  phase: 'pausing' | 'saving' | 'transferring';
  time: string;
  marks: PhaseMarks;
}

export interface TemplateSavedData {
  templateId: string;
  vmId: string;
  hostId: string;
  arch: 'x86' | 'arm64';
  /** the strategy's name; release and switches as a migration records them (absent: its baseline) */
  strategy: string;
  release?: string;
  switches?: { [k: string]: boolean };
  /** the save side's parameters (vmmLatencyNs, readSpacingNs, preSaveGapNs, options) */
  params: { [k: string]: Json };
  phases: TemplatePhase[];
  /** the save's end: its instant and the VM's stream version after the last save ioctl */
  end: { time: string; version: number };
  /** the strategy's saved state (savedToJson), restored by every clone as it was saved */
  saved: Json;
  /** what the guest's memory holds that a new VM takes with it (as a migration's destination does) */
  memory: { secureTsc: boolean; guestWallClockNs: string | null };
  /** what became of the VM after the save: kept paused, or destroyed */
  afterSave: 'keep' | 'destroy';
}

export type TemplateEvent =
  | { type: 'TemplateSaved'; data: TemplateSavedData }
  | { type: 'TemplateFailed'; data: { templateId: string; vmId: string; hostId: string; strategy: string; failure: MigrationFailure } }
  | { type: 'TemplateCloned'; data: { migrationId: string; vmId: string; hostId: string; status: 'completed' | 'failed' } };

export interface TemplateState {
  templateId: string;
  vmId: string;
  hostId: string;
  strategy: string;
  status: 'saved' | 'failed';
  savedAt: string;
  /** the record of a saved template (null: failed) */
  saved: TemplateSavedData | null;
  failure: MigrationFailure | null;
  clones: { migrationId: string; vmId: string; hostId: string; status: 'completed' | 'failed'; time: string }[];
}

export function applyTemplateEvent(state: TemplateState | null, ev: TemplateEvent, time: bigint): TemplateState {
  switch (ev.type) {
    case 'TemplateSaved': {
      const d = ev.data;
      return {
        templateId: d.templateId,
        vmId: d.vmId,
        hostId: d.hostId,
        strategy: d.strategy,
        status: 'saved',
        savedAt: time.toString(),
        saved: d,
        failure: null,
        clones: [],
      };
    }
    case 'TemplateFailed': {
      const d = ev.data;
      return { ...d, status: 'failed', savedAt: time.toString(), saved: null, failure: d.failure, clones: [] };
    }
    case 'TemplateCloned':
      if (!state) throw new Error('TemplateCloned before the template was saved');
      state.clones.push({ ...ev.data, time: time.toString() });
      return state;
  }
}

/**
 * A strategy's saved state as the log holds it. Saved states are plain data: numbers, strings,
 * booleans, null, arrays, objects, u64s (bigint) and per-vCPU Maps; a bigint is written
 * { u64: "decimal" } and a Map { map: [[key, value], ...] } so that reading it back gives the
 * very values the strategy saved (every u64 still a decimal string in the log).
 */
export function savedToJson(v: unknown): Json {
  if (typeof v === 'bigint') return { u64: v.toString() };
  if (v instanceof Map) return { map: [...v].map(([k, x]) => [savedToJson(k), savedToJson(x)]) };
  if (Array.isArray(v)) return v.map(savedToJson);
  if (v !== null && typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = savedToJson(x);
    }
    return out;
  }
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') throw new Error(`a saved state holds ${typeof v}`);
  return v as Json;
}

export function savedFromJson(j: Json): unknown {
  if (Array.isArray(j)) return j.map(savedFromJson);
  if (j !== null && typeof j === 'object') {
    const keys = Object.keys(j);
    if (keys.length === 1 && keys[0] === 'u64' && typeof j.u64 === 'string') return BigInt(j.u64);
    if (keys.length === 1 && keys[0] === 'map' && Array.isArray(j.map)) {
      return new Map((j.map as Json[][]).map(([k, x]) => [savedFromJson(k!), savedFromJson(x!)]));
    }
    return Object.fromEntries(keys.map((k) => [k, savedFromJson(j[k]!)]));
  }
  return j;
}
