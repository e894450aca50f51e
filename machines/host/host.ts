// The host stream (host-<id>): the host's creation with its hardware, and the CLOCK_REALTIME
// adjustments (NTP steps and slews) made to it over time.
import { createHost, setRealtimeSlew, stepRealtime, type HostSpec, type HostState } from '../../kvm/host.js';
import { toJson, type Json } from '../codec.js';

export interface HostSpecJson {
  [k: string]: Json;
}

export type HostEvent =
  | { type: 'HostCreated'; data: { spec: HostSpecJson } }
  | { type: 'RealtimeStepped'; data: { deltaNs: string } }
  | { type: 'RealtimeSlewSet'; data: { slewPpb: string } };

export { hostStreamId } from '../stream-ids.js';

const BIGINT_SPEC_FIELDS = ['cntfrqHz', 'actualHz', 'initialCounter', 'bootNsAtZero', 'realtimeOffsetNs'] as const;

export function hostSpecToJson(spec: HostSpec): HostSpecJson {
  return toJson(spec) as HostSpecJson;
}

export function hostSpecFromJson(j: HostSpecJson): HostSpec {
  const spec = { ...j } as unknown as HostSpec & Record<string, unknown>;
  for (const f of BIGINT_SPEC_FIELDS) if (typeof j[f] === 'string') spec[f] = BigInt(j[f] as string);
  return spec;
}

/** Apply one host event (the state is replaced on creation, mutated otherwise). */
export function applyHostEvent(state: HostState | null, ev: HostEvent, time: bigint): HostState {
  if (ev.type === 'HostCreated') return createHost(hostSpecFromJson(ev.data.spec));
  if (!state) throw new Error(`${ev.type} before HostCreated`);
  if (ev.type === 'RealtimeStepped') stepRealtime(state, time, BigInt(ev.data.deltaNs));
  else setRealtimeSlew(state, time, BigInt(ev.data.slewPpb));
  return state;
}
