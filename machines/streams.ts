// Which reducer evolves which stream: the stream id's prefix names its kind.
import type { HostState } from '../kvm/host.js';
import type { Json } from './codec.js';
import { applyHostEvent, type HostEvent } from './host/host.js';
import { applyLedgerEvent, LEDGER_STREAM, type LedgerEvent, type LedgerState } from './ledger/ledger.js';
import type { VmEvent } from './vm/events.js';
import {
  GUEST_STREAM_PREFIX,
  HOST_STREAM_PREFIX,
  MATRIX_STREAM_PREFIX,
  MIGRATION_STREAM_PREFIX,
  TEMPLATE_STREAM_PREFIX,
  TRACE_STREAM_PREFIX,
  VM_STREAM_PREFIX,
} from './stream-ids.js';
import { applyVmEvent, cloneVmRecord, type EvolveOptions, type VmRecord } from './vm/evolve.js';
import { applyMigrationEvent, type MigrationEvent, type MigrationState } from './migration/state.js';
import { applyTraceEvent, type TraceEvent, type TraceState } from './trace/state.js';
import { applyMatrixEvent, type MatrixEvent, type MatrixState } from './matrix/state.js';
import { applyTemplateEvent, type TemplateEvent, type TemplateState } from './migration/template.js';
import { applyGuestConfigEvent, type GuestConfigEvent, type GuestConfigState } from './life/config.js';

export type StreamKind = 'ledger' | 'host' | 'vm' | 'migration' | 'trace' | 'matrix' | 'guest' | 'template';

export function streamKind(streamId: string): StreamKind {
  if (streamId === LEDGER_STREAM) return 'ledger';
  if (streamId.startsWith(HOST_STREAM_PREFIX)) return 'host';
  if (streamId.startsWith(VM_STREAM_PREFIX)) return 'vm';
  if (streamId.startsWith(MIGRATION_STREAM_PREFIX)) return 'migration';
  if (streamId.startsWith(TRACE_STREAM_PREFIX)) return 'trace';
  if (streamId.startsWith(MATRIX_STREAM_PREFIX)) return 'matrix';
  if (streamId.startsWith(GUEST_STREAM_PREFIX)) return 'guest';
  if (streamId.startsWith(TEMPLATE_STREAM_PREFIX)) return 'template';
  throw new Error(`unknown stream kind: ${streamId}`);
}

export type StreamState = LedgerState | HostState | VmRecord | MigrationState | TraceState | MatrixState | GuestConfigState | TemplateState;

export interface DomainEvent {
  type: string;
  data: Json | object;
}

/** Apply one event to a stream's state, mutating it (or creating it). Returns the new state and the kernel's result for VM events. */
export function applyStreamEvent(
  kind: StreamKind,
  state: StreamState | null,
  ev: DomainEvent,
  time: bigint,
  opts?: EvolveOptions,
): { state: StreamState; result: Json } {
  switch (kind) {
    case 'ledger':
      return { state: applyLedgerEvent(state as LedgerState | null, ev as LedgerEvent), result: null };
    case 'host':
      return { state: applyHostEvent(state as HostState | null, ev as HostEvent, time), result: null };
    case 'vm': {
      const r = applyVmEvent(state as VmRecord | null, ev as VmEvent, time, opts);
      return { state: r.rec, result: r.result };
    }
    case 'migration':
      return { state: applyMigrationEvent(state as MigrationState | null, ev as MigrationEvent, time), result: null };
    case 'trace':
      return { state: applyTraceEvent(state as TraceState | null, ev as TraceEvent), result: null };
    case 'matrix':
      return { state: applyMatrixEvent(state as MatrixState | null, ev as MatrixEvent), result: null };
    case 'guest':
      return { state: applyGuestConfigEvent(state as GuestConfigState | null, ev as GuestConfigEvent, time), result: null };
    case 'template':
      return { state: applyTemplateEvent(state as TemplateState | null, ev as TemplateEvent, time), result: null };
  }
}

/** A private deep copy of a stream's state (VM records by the kernel-aware copy the VM machine uses). */
export function copyStreamState(kind: StreamKind, state: StreamState): StreamState {
  return kind === 'vm' ? cloneVmRecord(state as VmRecord) : structuredClone(state);
}
