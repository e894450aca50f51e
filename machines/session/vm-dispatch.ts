// VM commands in a unit of work: the VM decider (vm/decider.ts) accepts or refuses the command
// through the VM's lifecycle machine (a refusal is a DomainError), samples the host's clocks for
// it and runs the kernel once; its events are recorded on the VM's stream at that instant.
import { sampleHost } from '../../kvm/host.js';
import { dueTimer } from '../../kvm/x86/vm.js';
import type { Json } from '../codec.js';
import { vmStreamId, type VmEvent } from '../vm/events.js';
import type { VmRecord } from '../vm/evolve.js';
import { vmDecider, type HostClocks } from '../vm/decider.js';
import type { VmCommandInput } from '../vm/machine.js';
import { requireHost, type HostWork } from './hosts.js';
import { requireState, stateOf, type EventRef, type UnitOfWork } from './unit-of-work.js';

export function vmOf(work: UnitOfWork, vmId: string): VmRecord | null {
  return stateOf<VmRecord>(work, vmStreamId(vmId));
}

export function requireVm(work: UnitOfWork, vmId: string): VmRecord {
  return requireState<VmRecord>(work, vmStreamId(vmId), { noun: 'VM', key: 'vmId', id: vmId });
}

/** The hosts' clocks at the session's time (or at an earlier instant), as the decider samples them. */
function clocksOf({ work, now }: HostWork): HostClocks {
  return (hostId, at) => sampleHost(requireHost(work, hostId), at ?? now());
}

/**
 * Decide a VM command (a batch records one event per operation) and record its events: the VM
 * decider accepts or refuses it, then runs the kernel once for it.
 */
export function dispatchVm(uses: HostWork, vmId: string, cmd: VmCommandInput): { events: VmEvent[]; results: Json[]; refs: EventRef[] } {
  const { work } = uses;
  const sid = vmStreamId(vmId);
  const l = work.load(sid);
  // (a record this session made itself is changed in place; one read from the log or the cache is copied first)
  const d = vmDecider.decision(cmd, l.state as VmRecord | null, { vmId, clocks: clocksOf(uses), inPlace: l.owned });
  const next = d.state;
  // (the decider builds its events' data in the log's canonical key order)
  const refs = d.events.map((ev) => work.record(sid, ev, d.time, next, { profile: next.profile }, ev.type !== 'VmCreated'));
  l.owned = true;
  return { events: d.events, results: d.results, refs };
}

/** Run a VM's delayed kernel work that falls due at `at` (the scheduler's clock stands there). */
export function fireDueTimer(uses: HostWork, vmId: string, at: bigint): void {
  const timer = dueTimer(vmOf(uses.work, vmId)!.x86!, at)!;
  dispatchVm(uses, vmId, { type: 'timer', timer });
}
