// Host use cases in a unit of work: read, create, record a host event, sample its clocks.
import { sampleHost, type HostSample, type HostSpec, type HostState } from '../../kvm/host.js';
import { hostSpecToJson, hostStreamId, type HostEvent } from '../host/host.js';
import { DomainError } from './errors.js';
import { requireState, stateOf, type UnitOfWork } from './unit-of-work.js';

/** What host use cases need of the session: its streams and its clock. */
export interface HostWork {
  work: UnitOfWork;
  now(): bigint;
}

export function hostOf(work: UnitOfWork, hostId: string): HostState | null {
  return stateOf<HostState>(work, hostStreamId(hostId));
}

export function requireHost(work: UnitOfWork, hostId: string): HostState {
  return requireState<HostState>(work, hostStreamId(hostId), { noun: 'host', key: 'hostId', id: hostId });
}

export function createHost({ work, now }: HostWork, spec: HostSpec): HostState {
  if (hostOf(work, spec.id)) throw new DomainError('conflict', `host '${spec.id}' already exists`, { hostId: spec.id });
  const ev: HostEvent = { type: 'HostCreated', data: { spec: hostSpecToJson(spec) } };
  work.record(hostStreamId(spec.id), ev, now());
  return hostOf(work, spec.id)!;
}

export function recordHostEvent({ work, now }: HostWork, hostId: string, ev: HostEvent): HostState {
  requireHost(work, hostId);
  work.record(hostStreamId(hostId), ev, now());
  return hostOf(work, hostId)!;
}

/** The host's clocks at the session's time. */
export function sample({ work, now }: HostWork, hostId: string): HostSample {
  return sampleHost(requireHost(work, hostId), now());
}
