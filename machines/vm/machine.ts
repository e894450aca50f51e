// The VM's lifecycle as an XState machine: which commands a VM accepts in each of its states
// (absent, stopped, running, destroyed), the guards that look at its vCPUs, and the state each
// accepted command leads to. It only accepts or refuses: what an accepted command records is the
// decider's (decider.ts), which runs the kernel. A refusal is found through snapshot.can() and
// worded from the state here.
import { setup, type SnapshotFrom } from 'xstate';
import type { HostSample } from '../../kvm/host.js';
import { parseIoctlName } from '../../kvm/ioctl.js';
import type { VmCreatedData } from './events.js';
import { vcpusOf, type VmRecord } from './evolve.js';

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

/** A command before the host is sampled for it: what the machine accepts or refuses. */
export type VmCommandInput = VmCommand extends infer C ? (C extends { hw: HostSample } ? Omit<C, 'hw'> : never) : never;

export type VmLifecycle = 'absent' | 'stopped' | 'running' | 'destroyed';

/** The lifecycle state name of a VM record. */
export function vmLifecycle(rec: VmRecord | null): VmLifecycle {
  if (!rec) return 'absent';
  if (rec.destroyed) return 'destroyed';
  return vcpusOf(rec).some((v) => v.running) ? 'running' : 'stopped';
}

const isRunning = (rec: VmRecord | null, id: number) => vcpusOf(rec).some((v) => v.id === id && v.running);

/** The vCPUs a guest or exit command names (none for the others). */
export function targetVcpus(cmd: VmCommandInput): number[] {
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
    context: {} as { rec: VmRecord | null },
    events: {} as VmCommandInput,
    input: {} as { rec: VmRecord | null },
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
      const running = vcpusOf(context.rec)
        .filter((v) => v.running)
        .map((v) => v.id);
      const ids = new Set(targetVcpus(event));
      return ids.size === targetVcpus(event).length && running.length === ids.size && running.every((id) => ids.has(id));
    },
  },
}).createMachine({
  id: 'vm',
  context: ({ input }) => ({ rec: input.rec }),
  initial: 'absent',
  // Every accepted command names the state it leads to (its own, when the lifecycle stays).
  states: {
    absent: {
      on: { create: 'stopped' },
    },
    // No vCPU is in KVM_RUN: the guest does not execute. KVM_RUN enters it.
    stopped: {
      on: {
        ioctl: [{ guard: 'isKvmRun', target: 'running' }, { target: 'stopped' }],
        timer: 'stopped',
        destroy: 'destroyed',
      },
    },
    // At least one vCPU is in KVM_RUN; the last one to leave stops the guest.
    running: {
      on: {
        ioctl: 'running',
        guest: { guard: 'vcpuRunning', target: 'running' },
        guests: { guard: 'vcpuRunning', target: 'running' },
        exit: [
          { guard: 'lastRunningVcpu', target: 'stopped' },
          { guard: 'vcpuRunning', target: 'running' },
        ],
        exits: [
          { guard: 'lastRunningVcpu', target: 'stopped' },
          { guard: 'vcpuRunning', target: 'running' },
        ],
        timer: 'running',
        destroy: 'destroyed',
      },
    },
    destroyed: { type: 'final' },
  },
});

export type VmSnapshot = SnapshotFrom<typeof vmMachine>;

const absentSnapshot: VmSnapshot = vmMachine.resolveState({ value: 'absent', context: { rec: null } });
// A record's snapshot is resolved again only when its lifecycle changed: a session decides many
// commands on one record it changes in place, and the snapshot's context is that very record.
const snapshots = new WeakMap<VmRecord, VmSnapshot>();

/** The machine's snapshot for a VM record: its lifecycle state, with the record as context (restored from the log, not persisted). */
export function vmSnapshotOf(rec: VmRecord | null): VmSnapshot {
  if (rec === null) return absentSnapshot;
  const value = vmLifecycle(rec);
  let snap = snapshots.get(rec);
  if (snap === undefined || snap.value !== value) {
    snap = vmMachine.resolveState({ value, context: { rec } });
    snapshots.set(rec, snap);
  }
  return snap;
}

/** Why a VM refuses a command: a stable code, and a message worded from its state. */
export interface VmRefusal {
  code: 'not_found' | 'conflict' | 'invalid_request' | 'invalid_state';
  message: string;
  details: { vmId: string; state?: VmLifecycle };
}

/** Why the VM in this snapshot refuses a command (null: the machine accepts it). */
export function vmRefusal(vmId: string, snapshot: VmSnapshot, cmd: VmCommandInput): VmRefusal | null {
  const state = snapshot.value;
  if (state === 'absent' && cmd.type !== 'create') return { code: 'not_found', message: `no VM '${vmId}'`, details: { vmId } };
  if (state !== 'absent' && cmd.type === 'create') return { code: 'conflict', message: `VM '${vmId}' already exists`, details: { vmId } };
  if ((cmd.type === 'guests' && !cmd.ops.length) || (cmd.type === 'exits' && !cmd.vcpus.length)) {
    return { code: 'invalid_request', message: `a '${cmd.type}' command must name at least one vCPU`, details: { vmId } };
  }
  if (snapshot.can(cmd)) return null;
  const vcpus = targetVcpus(cmd);
  const message =
    state === 'destroyed'
      ? `VM '${vmId}' was destroyed (${snapshot.context.rec!.destroyReason})`
      : vcpus.length
        ? vcpus.length === 1
          ? `vCPU ${vcpus[0]} of VM '${vmId}' is not in KVM_RUN`
          : `vCPUs ${vcpus.join(', ')} of VM '${vmId}' are not all in KVM_RUN (each named once)`
        : `VM '${vmId}' is ${state}`;
  return { code: 'invalid_state', message, details: { vmId, state } };
}
