// The session: a unit of work with its clock, and the host and VM use cases it runs. Each job
// lives in its own module; this class only puts them together behind one object.
import type { HostSample, HostSpec, HostState } from '../../kvm/host.js';
import type { CommitResult, EventStore, WrittenEvent } from '../../store/types.js';
import type { Json } from '../codec.js';
import type { HostEvent } from '../host/host.js';
import { LEDGER_STREAM } from '../ledger/ledger.js';
import type { VmEvent } from '../vm/events.js';
import type { VmRecord } from '../vm/evolve.js';
import type { VmCommandInput } from '../vm/machine.js';
import * as hosts from './hosts.js';
import type { StreamReader, UnitCommit } from './port.js';
import { Scheduler, wakeAtOf } from './scheduler.js';
import { UnitOfWork, type EventRef, type SessionMeta } from './unit-of-work.js';
import { dispatchVm, fireDueTimer, requireVm, vmOf } from './vm-dispatch.js';

export class Session extends UnitOfWork {
  private readonly clock: Scheduler;
  /** what the use cases need of this session */
  private readonly uses: hosts.HostWork;

  constructor(log: EventStore | StreamReader, meta: SessionMeta) {
    super(log, meta);
    this.uses = { work: this, now: () => this.clock.now() };
    this.clock = new Scheduler(this, (vmId, at) => fireDueTimer(this.uses, vmId, at));
  }

  // ---- time -------------------------------------------------------------------------------

  /** The simulated true time. */
  now(): bigint {
    return this.clock.now();
  }

  /**
   * Let true time pass; the VMs' delayed kernel work fires at its due instants and is recorded.
   * The ledger records the session's whole advance once, at commit, after everything it covers.
   */
  advanceTime(ns: bigint): bigint {
    return this.clock.advanceTime(ns);
  }

  /** The simulated instant the session began at. */
  startTime(): bigint {
    return this.clock.startTime();
  }

  // ---- hosts ------------------------------------------------------------------------------

  host(hostId: string): HostState | null {
    return hosts.hostOf(this, hostId);
  }

  requireHost(hostId: string): HostState {
    return hosts.requireHost(this, hostId);
  }

  createHost(spec: HostSpec): HostState {
    return hosts.createHost(this.uses, spec);
  }

  recordHostEvent(hostId: string, ev: HostEvent): HostState {
    return hosts.recordHostEvent(this.uses, hostId, ev);
  }

  sample(hostId: string): HostSample {
    return hosts.sample(this.uses, hostId);
  }

  // ---- VMs --------------------------------------------------------------------------------

  vm(vmId: string): VmRecord | null {
    return vmOf(this, vmId);
  }

  requireVm(vmId: string): VmRecord {
    return requireVm(this, vmId);
  }

  /** Decide a VM command through the VM machine, record its event, and return the kernel's result. */
  vmCommand(vmId: string, cmd: Exclude<VmCommandInput, { type: 'guests' | 'exits' }>): { event: VmEvent; result: Json; ref: EventRef } {
    const d = dispatchVm(this.uses, vmId, cmd);
    return { event: d.events[0]!, result: d.results[0]!, ref: d.refs[0]! };
  }

  /**
   * Decide a VM command (a batch records one event per operation) and record its events: the VM's
   * lifecycle machine accepts or refuses it, then the decider runs the kernel once for it.
   */
  vmCommands(vmId: string, cmd: VmCommandInput): { events: VmEvent[]; results: Json[]; refs: EventRef[] } {
    return dispatchVm(this.uses, vmId, cmd);
  }

  // ---- commit -----------------------------------------------------------------------------

  /**
   * What this session writes: the ledger's record of the time it let pass comes last. Everything
   * it recorded happened at or after the time it read: if another writer moved time on
   * meanwhile, the commit must fail (the ledger's version is checked) and the work be decided again.
   * Each VM's next delayed work goes into the wake index, set with its stream's last batch.
   */
  prepareCommit(response?: (written: WrittenEvent[]) => unknown): UnitCommit {
    this.clock.recordAdvance();
    return this.unitCommit(response, LEDGER_STREAM, (l) => (l.vmId !== null ? wakeAtOf(l.state as VmRecord | null) : undefined));
  }

  /** Commit to a synchronous log (SQLite); an asynchronous log commits through withSession. */
  commit(response?: (written: WrittenEvent[]) => unknown): CommitResult {
    return this.commitSync(this.prepareCommit(response));
  }
}
