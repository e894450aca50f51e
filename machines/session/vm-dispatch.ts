// VM commands in a unit of work: the VM's lifecycle machine accepts or refuses the command (its
// refusal becomes a DomainError), the decider runs the kernel once for it, and its events are
// recorded on the VM's stream at the host's sampled instant.
import { sampleHost } from '../../kvm/host.js';
import { catchupTickDue, dueTimer } from '../../kvm/x86/vm.js';
import type { Json } from '../codec.js';
import { vmStreamId, type VmEvent } from '../vm/events.js';
import type { VmRecord } from '../vm/evolve.js';
import { decideVm } from '../vm/decider.js';
import { vmRefusal, vmSnapshotOf, type VmCommand, type VmCommandInput } from '../vm/machine.js';
import { DomainError } from './errors.js';
import { requireHost, sample, type HostWork } from './hosts.js';
import { requireState, stateOf, type EventRef, type UnitOfWork } from './unit-of-work.js';

export function vmOf(work: UnitOfWork, vmId: string): VmRecord | null {
  return stateOf<VmRecord>(work, vmStreamId(vmId));
}

export function requireVm(work: UnitOfWork, vmId: string): VmRecord {
  return requireState<VmRecord>(work, vmStreamId(vmId), { noun: 'VM', key: 'vmId', id: vmId });
}

/**
 * Decide a VM command (a batch records one event per operation) and record its events: the VM's
 * lifecycle machine accepts or refuses it, then the decider runs the kernel once for it.
 */
export function dispatchVm(uses: HostWork, vmId: string, cmd: VmCommandInput): { events: VmEvent[]; results: Json[]; refs: EventRef[] } {
  const { work } = uses;
  const sid = vmStreamId(vmId);
  const l = work.load(sid);
  const rec = l.state as VmRecord | null;
  const refused = vmRefusal(vmId, vmSnapshotOf(rec), cmd);
  if (refused) throw new DomainError(refused.code, refused.message, refused.details);
  const hostId = rec ? rec.hostId : (cmd as Extract<VmCommandInput, { type: 'create' }>).data.hostId;
  const hw = sample(uses, hostId);
  // a guest in software TSC catch-up exited at its last tick: the kernel needs the host as it was then
  const tick = rec?.x86 ? catchupTickDue(rec.x86, rec.lastTime, hw.t) : null;
  if (tick !== null) hw.tick = sampleHost(requireHost(work, hostId), tick);
  // (a record this session made itself is changed in place; one read from the log or the cache is copied first)
  const decision = decideVm({ ...cmd, hw } as VmCommand, rec, l.owned);
  const next = decision.state;
  // (the decider builds its events' data in the log's canonical key order)
  const refs = decision.events.map((ev) => work.record(sid, ev, hw.t, next, { profile: next.profile }, ev.type !== 'VmCreated'));
  l.owned = true;
  return { events: decision.events, results: decision.results, refs };
}

/** Run a VM's delayed kernel work that falls due at `at` (the scheduler's clock stands there). */
export function fireDueTimer(uses: HostWork, vmId: string, at: bigint): void {
  const timer = dueTimer(vmOf(uses.work, vmId)!.x86!, at)!;
  dispatchVm(uses, vmId, { type: 'timer', timer });
}
