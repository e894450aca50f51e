// The VM as a decider: decide(command, state) runs the emulated kernel once and returns the
// events the command records, the kernel's results in them (ret, errno, out, result, trace), so
// the log holds exactly what replay recomputes; evolve(state, event) re-executes one recorded
// event, through the same function replay folds the log with (applyVmEvent). Acceptance is the
// lifecycle machine's (machine.ts), asked before anything runs. The session decides through
// vmDecider.decision(), which decide() is the events of: the code the given/when/then tests check
// is the code that runs.
import { catchupTickDue } from '../../kvm/x86/vm.js';
import type { HostSample } from '../../kvm/host.js';
import { hwToJson, toSortedJson, type Json } from '../codec.js';
import type { Decider } from '../decider.js';
import { DomainError } from '../domain-error.js';
import type { VmEvent, VmLogEvent } from './events.js';
import { applyVmEvent, cloneVmRecord, type VmRecord } from './evolve.js';
import { vmRefusal, vmSnapshotOf, type VmCommand, type VmCommandInput, type VmRefusal } from './machine.js';

/** A command the VM refuses in its state (thrown by decide; a kernel usage error is thrown as the kernel's KvmUsageError). */
export class VmCommandRefused extends DomainError {
  constructor(r: VmRefusal) {
    super(r.code, r.message, r.details);
  }
}

/** A command that records exactly one event. */
type SingleCommand = Exclude<VmCommand, { type: 'guests' | 'exits' }>;

/** What one kernel run decided: the events (all at the command's instant), the kernel's result for each, the state they lead to. */
export interface VmDecision {
  time: bigint;
  events: VmEvent[];
  results: Json[];
  state: VmRecord;
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

/** A batch's single commands: its operations share one instant, and the tick before it (if any) is taken once, with the first. */
function singlesOf(cmd: VmCommand): SingleCommand[] {
  if (cmd.type !== 'guests' && cmd.type !== 'exits') return [cmd];
  const { tick: _tick, ...untick } = cmd.hw;
  const hwOf = (i: number): HostSample => (i === 0 ? cmd.hw : untick);
  return cmd.type === 'guests'
    ? cmd.ops.map((o, i) => ({ type: 'guest', hw: hwOf(i), ...o }))
    : cmd.vcpus.map((vcpu, i) => ({ type: 'exit', vcpu, hw: hwOf(i) }));
}

/** The host's clocks at the command's instant (no `at`), or at an earlier instant (a catch-up tick). */
export type HostClocks = (hostId: string, at?: bigint) => HostSample;

export interface VmDecideOptions {
  /** the VM's id, for a refusal's wording where the state cannot name it (no VM yet) */
  vmId?: string;
  /** the host's clocks: the command (given without its sample) is sampled through them once the VM accepts it */
  clocks?: HostClocks;
  /**
   * the state is the caller's own (nothing else holds it): a single command without a catch-up
   * tick then changes it instead of a copy. The session's hot path (a session changes the records
   * it made itself); the decision is the same either way (test/machines/vm-decider.test.ts).
   */
  inPlace?: boolean;
}

export interface VmDecider extends Decider<VmRecord | null, VmCommand, VmLogEvent> {
  /**
   * decide() as the session calls it: the same refusal and the same kernel run, with what that run
   * also produced (each event's result, the state the events lead to) and the options above.
   */
  decision(cmd: VmCommand | VmCommandInput, state: VmRecord | null, opts?: VmDecideOptions): VmDecision;
}

/** The VM decider: the state is the VM's record (null before VmCreated). */
export const vmDecider: VmDecider = {
  decision(cmd, state, opts = {}) {
    const vmId = opts.vmId ?? state?.vmId ?? (cmd.type === 'create' ? cmd.data.vmId : '?');
    const refused = vmRefusal(vmId, vmSnapshotOf(state), cmd);
    if (refused) throw new VmCommandRefused(refused);
    return runKernel(opts.clocks ? sampled(cmd, state, opts.clocks) : sampleGiven(cmd), state, opts.inPlace ?? false);
  },
  decide(cmd, state) {
    const d = vmDecider.decision(cmd, state);
    return d.events.map((ev) => ({ ...ev, time: d.time }) as VmLogEvent);
  },
  evolve(state, ev) {
    return applyVmEvent(state === null ? null : cloneVmRecord(state), ev, ev.time).rec;
  },
  initialState: () => null,
};

/** A command given with its host sample (as a test or a replay gives it). */
function sampleGiven(cmd: VmCommand | VmCommandInput): VmCommand {
  if (!('hw' in cmd)) throw new TypeError(`a '${cmd.type}' command without its host sample needs the host's clocks`);
  return cmd;
}

/** An accepted command with the host's clocks as it runs: now, and at the guest's last tick if it is in software TSC catch-up. */
function sampled(cmd: VmCommandInput, state: VmRecord | null, clocks: HostClocks): VmCommand {
  const hostId = state ? state.hostId : (cmd as Extract<VmCommandInput, { type: 'create' }>).data.hostId;
  const hw = clocks(hostId);
  // a guest in software TSC catch-up exited at its last tick: the kernel needs the host as it was then
  const tick = state?.x86 ? catchupTickDue(state.x86, state.lastTime, hw.t) : null;
  if (tick !== null) hw.tick = clocks(hostId, tick);
  return { ...cmd, hw } as VmCommand;
}

/**
 * Run the kernel for a command the lifecycle machine accepted (each of a batch's operations, in
 * order) and complete its events with the results: decide and evolve in one run.
 *
 * `inPlace`: the state is this caller's own (nothing else holds it), so a single command without
 * a catch-up tick changes it in place (the hot path: the kernel checks an operation before it
 * changes anything, so a refusal leaves it whole). Otherwise, and for a batch or a tick (a later
 * operation may be refused after earlier ones changed the record; a tick's catch-up changes it
 * before the operation is checked), the kernel works on a copy and the state given stays whole.
 */
function runKernel(cmd: VmCommand, state: VmRecord | null, inPlace: boolean): VmDecision {
  const singles = singlesOf(cmd);
  let rec = state !== null && (!inPlace || singles.length > 1 || cmd.hw.tick) ? cloneVmRecord(state) : state;
  const events: VmEvent[] = [];
  const results: Json[] = [];
  for (const one of singles) {
    const ev = commandToEvent(one);
    const a = applyVmEvent(rec, ev, one.hw.t, { trace: true });
    rec = a.rec;
    // What the kernel traced while handling it is part of the record: replay compares it too.
    if (a.trace?.length) (ev.data as { trace?: Json[] }).trace = a.trace;
    if (ev.type === 'IoctlIssued') {
      const r = a.result as unknown as { ret: number; errno?: string; out?: Json };
      ev.data.ret = r.ret;
      if (r.errno !== undefined) ev.data.errno = r.errno;
      if (r.out !== undefined) ev.data.out = r.out;
    } else if (ev.type === 'GuestExecuted') {
      ev.data.result = a.result;
    }
    events.push(ev);
    results.push(a.result);
  }
  return { time: cmd.hw.t, events, results, state: rec! };
}
