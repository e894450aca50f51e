// The VM as an XState machine: it decides whether a command is acceptable in the VM's current
// lifecycle state and what to record for it. Deciding runs the emulated kernel once (through
// applyVmEvent on an immer draft), so the recorded result is exactly what replay will recompute.
import { assign, createActor, initialTransition, setup, type Actor, type SnapshotFrom } from 'xstate';
import type { HostSample } from '../../kvm/host.js';
import { parseIoctlName } from '../../kvm/ioctl.js';
import { hwToJson, toSortedJson, type Json } from '../codec.js';
import type { VmCreatedData, VmEvent } from './events.js';
import { applyVmEvent, cloneVmRecord, vcpusOf, type VmRecord } from './evolve.js';

/** What the guest executes on one vCPU. */
export interface GuestOp {
  vcpu: number;
  op: string;
  msr?: unknown;
  value?: unknown;
}

export type VmCommand =
  | { type: 'create'; data: Omit<VmCreatedData, 'hw'>; hw: HostSample }
  | { type: 'ioctl'; vcpu: number | null; ioctl: string; arg: unknown; hw: HostSample }
  | ({ type: 'guest'; hw: HostSample } & GuestOp)
  /** the guest executing on several vCPUs at one instant (one event per operation) */
  | { type: 'guests'; ops: GuestOp[]; hw: HostSample }
  | { type: 'exit'; vcpu: number; hw: HostSample }
  /** several vCPUs leaving KVM_RUN at one instant (one event per vCPU) */
  | { type: 'exits'; vcpus: number[]; hw: HostSample }
  | { type: 'timer'; timer: string; hw: HostSample }
  | { type: 'destroy'; reason: string; hw: HostSample };

/** The machine's own bookkeeping, not a VM command: its record is now shared. */
type VmMachineEvent = VmCommand | { type: 'share' };

/** A command that records exactly one event. */
type SingleCommand = Exclude<VmCommand, { type: 'guests' | 'exits' }>;

export interface VmMachineContext {
  rec: VmRecord | null;
  /** rec was made by this machine's own last decision, and nothing else holds it: it may be changed in place */
  owned: boolean;
  /** what the last command recorded, and the kernel's result for each event */
  recorded: VmEvent[] | null;
  results: Json[];
}

/**
 * The event a command records, before the kernel's result is filled in. Its data is built with
 * its keys in sorted order, the fields the kernel fills in already in place (undefined until
 * then), so the log's canonical JSON needs no reordering.
 */
function commandToEvent(cmd: SingleCommand): VmEvent {
  const hw = hwToJson(cmd.hw);
  switch (cmd.type) {
    case 'create':
      return { type: 'VmCreated', data: { ...cmd.data, hw } };
    case 'ioctl':
      return {
        type: 'IoctlIssued',
        data: { arg: toSortedJson(cmd.arg ?? null), errno: undefined, hw, ioctl: cmd.ioctl, out: undefined, ret: 0, trace: undefined, vcpu: cmd.vcpu },
      };
    case 'guest':
      return {
        type: 'GuestExecuted',
        data: {
          hw,
          msr: cmd.msr === undefined ? undefined : toSortedJson(cmd.msr),
          op: cmd.op,
          result: null,
          trace: undefined,
          value: cmd.value === undefined ? undefined : toSortedJson(cmd.value),
          vcpu: cmd.vcpu,
        },
      };
    case 'exit':
      return { type: 'VcpuExited', data: { hw, trace: undefined, vcpu: cmd.vcpu } };
    case 'timer':
      return { type: 'TimerFired', data: { hw, timer: cmd.timer, trace: undefined } };
    case 'destroy':
      return { type: 'VmDestroyed', data: { hw, reason: cmd.reason, trace: undefined } };
  }
}

/** Run the kernel for a command (each of a batch's, in order) and complete its events with the results. */
function decide(rec: VmRecord | null, owned: boolean, cmd: VmCommand): VmMachineContext {
  // a batch's operations share one instant: the tick before it (if any) is taken once, with the first
  const { tick: _tick, ...untick } = cmd.hw;
  const hwOf = (i: number): HostSample => (i === 0 ? cmd.hw : untick);
  const singles: SingleCommand[] =
    cmd.type === 'guests'
      ? cmd.ops.map((o, i) => ({ type: 'guest', hw: hwOf(i), ...o }))
      : cmd.type === 'exits'
        ? cmd.vcpus.map((vcpu, i) => ({ type: 'exit', vcpu, hw: hwOf(i) }))
        : [cmd];
  // The kernel checks each operation before it changes anything, but a batch's later operation
  // may be refused after earlier ones changed the record, and a tick's catch-up changes it before
  // the operation is checked: those work on a copy, so a refusal leaves the record it started
  // from whole (the first decision copies a shared one anyway).
  if (owned && rec !== null && (singles.length > 1 || cmd.hw.tick)) rec = cloneVmRecord(rec);
  const recorded: VmEvent[] = [];
  const results: Json[] = [];
  for (const one of singles) {
    const d = decideOne(rec, owned, one);
    rec = d.rec;
    owned = true;
    recorded.push(d.event);
    results.push(d.result);
  }
  return { rec, owned, recorded, results };
}

function decideOne(rec: VmRecord | null, owned: boolean, cmd: SingleCommand): { rec: VmRecord; event: VmEvent; result: Json } {
  const ev = commandToEvent(cmd);
  let result: Json = null;
  let trace: Json[] | null = null;
  let next: VmRecord;
  if (rec === null) {
    const a = applyVmEvent(null, ev, cmd.hw.t, { trace: true });
    next = a.rec;
    trace = a.trace;
  } else {
    // Copy-on-write by hand (VM decisions are the hot path, and immer drafts slow the kernel code):
    // a record this machine made itself is not shared, so later decisions change it in place.
    // The kernel validates a command before it changes anything, so a refusal leaves it whole.
    const a = applyVmEvent(owned ? rec : cloneVmRecord(rec), ev, cmd.hw.t, { trace: true });
    next = a.rec;
    result = a.result;
    trace = a.trace;
  }
  // What the kernel traced while handling it is part of the record: replay compares it too.
  if (trace && (trace as Json[]).length) (ev.data as { trace?: Json[] }).trace = trace;
  if (ev.type === 'IoctlIssued') {
    const r = result as unknown as { ret: number; errno?: string; out?: Json };
    ev.data.ret = r.ret;
    if (r.errno !== undefined) ev.data.errno = r.errno;
    if (r.out !== undefined) ev.data.out = r.out;
  } else if (ev.type === 'GuestExecuted') {
    ev.data.result = result;
  }
  return { rec: next, event: ev, result };
}

const anyRunning = (rec: VmRecord | null) => vcpusOf(rec).some((v) => v.running);
const isRunning = (rec: VmRecord | null, id: number) => vcpusOf(rec).some((v) => v.id === id && v.running);

/** The vCPUs a guest or exit command names (none for the others). */
export function targetVcpus(cmd: VmMachineEvent): number[] {
  switch (cmd.type) {
    case 'guest':
    case 'exit':
      return [cmd.vcpu];
    case 'guests':
      return cmd.ops.map((o) => o.vcpu);
    case 'exits':
      return cmd.vcpus;
    default:
      return [];
  }
}

/** Whether an ioctl named by UAPI name or request number is KVM_RUN (an unknown one is left to the kernel to refuse). */
function isKvmRun(ioctl: string): boolean {
  if (ioctl === 'KVM_RUN') return true;
  try {
    return parseIoctlName(ioctl) === 'KVM_RUN';
  } catch {
    return false;
  }
}

export const vmMachine = setup({
  types: {
    context: {} as VmMachineContext,
    events: {} as VmMachineEvent,
    input: {} as { rec: VmRecord | null } | undefined,
  },
  guards: {
    isKvmRun: ({ event }) => event.type === 'ioctl' && event.vcpu !== null && isKvmRun(event.ioctl),
    // every vCPU the command names is in KVM_RUN (each once, for exits)
    vcpuRunning: ({ context, event }) => {
      const ids = targetVcpus(event);
      return ids.length > 0 && ids.every((id) => isRunning(context.rec, id)) && (event.type !== 'exits' || new Set(ids).size === ids.length);
    },
    // ... and they are all the vCPUs in KVM_RUN: the guest stops
    lastRunningVcpu: ({ context, event }) => {
      if (event.type !== 'exit' && event.type !== 'exits') return false;
      const running = vcpusOf(context.rec).filter((v) => v.running).map((v) => v.id);
      const ids = new Set(targetVcpus(event));
      return ids.size === targetVcpus(event).length && running.length === ids.size && running.every((id) => ids.has(id));
    },
  },
  actions: {
    decide: assign(({ context, event }) => decide(context.rec, context.owned, event as VmCommand)),
    // the record is handed to others (a committed session's state): copy it before changing it again
    share: assign({ owned: false }),
  },
}).createMachine({
  id: 'vm',
  context: ({ input }) => ({ rec: input?.rec ?? null, owned: false, recorded: null, results: [] }),
  initial: 'absent',
  on: { share: { actions: 'share' } },
  states: {
    absent: {
      on: { create: { target: 'stopped', actions: 'decide' } },
    },
    // No vCPU is in KVM_RUN: the guest does not execute. KVM_RUN enters it.
    stopped: {
      on: {
        ioctl: [{ guard: 'isKvmRun', target: 'running', actions: 'decide' }, { actions: 'decide' }],
        timer: { actions: 'decide' },
        destroy: { target: 'destroyed', actions: 'decide' },
      },
    },
    // At least one vCPU is in KVM_RUN; the last one to leave stops the guest.
    running: {
      on: {
        ioctl: { actions: 'decide' },
        guest: { guard: 'vcpuRunning', actions: 'decide' },
        guests: { guard: 'vcpuRunning', actions: 'decide' },
        exit: [
          { guard: 'lastRunningVcpu', target: 'stopped', actions: 'decide' },
          { guard: 'vcpuRunning', actions: 'decide' },
        ],
        exits: [
          { guard: 'lastRunningVcpu', target: 'stopped', actions: 'decide' },
          { guard: 'vcpuRunning', actions: 'decide' },
        ],
        timer: { actions: 'decide' },
        destroy: { target: 'destroyed', actions: 'decide' },
      },
    },
    destroyed: { type: 'final' },
  },
});

export type VmSnapshot = SnapshotFrom<typeof vmMachine>;

/** The machine snapshot for a rebuilt record (restoring an actor from the log, not from a persisted snapshot). */
export function vmSnapshotOf(rec: VmRecord | null): VmSnapshot {
  if (!rec) return initialTransition(vmMachine, { rec: null })[0];
  // the machine's state names are the lifecycle's
  return vmMachine.resolveState({ value: vmLifecycle(rec), context: { rec, owned: false, recorded: null, results: [] } });
}

/** The lifecycle state name of a VM record. */
export function vmLifecycle(rec: VmRecord | null): 'absent' | 'stopped' | 'running' | 'destroyed' {
  if (!rec) return 'absent';
  if (rec.destroyed) return 'destroyed';
  return anyRunning(rec) ? 'running' : 'stopped';
}


/**
 * A running VM machine for a sequence of decisions (one session's commands on one VM): an actor
 * is several times cheaper per event than a fresh transition() each time. A command whose
 * decision throws (a malformed argument) kills the actor; the caller starts a new one.
 */
export class VmDecider {
  private readonly actor: Actor<typeof vmMachine>;
  private failure: { error: unknown } | null = null;

  constructor(rec: VmRecord | null) {
    this.actor = createActor(vmMachine, { snapshot: vmSnapshotOf(rec), input: { rec } });
    this.actor.subscribe({ error: (error) => (this.failure = { error }) });
    this.actor.start();
  }

  get rec(): VmRecord | null {
    return this.actor.getSnapshot().context.rec;
  }

  get alive(): boolean {
    return this.failure === null;
  }

  /** Hand the machine to a later session: its record is shared from now on (copied before the next change). */
  share(): void {
    this.actor.send({ type: 'share' });
  }

  /** The events a command records and the kernel's results (null: the machine refuses it in this state). */
  decide(cmd: VmCommand): { snapshot: VmSnapshot; events: VmEvent[]; results: Json[] } | null {
    const before = this.actor.getSnapshot().context.recorded;
    this.actor.send(cmd);
    if (this.failure) throw this.failure.error;
    const next = this.actor.getSnapshot();
    if (next.context.recorded === before) return null;
    return { snapshot: next, events: next.context.recorded!, results: next.context.results };
  }
}
