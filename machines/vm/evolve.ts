// Evolving a VM's state from its recorded events: each event is re-executed against the
// emulated kernel with the hardware inputs it recorded, so the state that was live is rebuilt
// exactly, and a different kernel profile can be substituted to see what would have changed.
import type { Arch, HostSample } from '../../kvm/host.js';
import { getProfile, resolveProfile, type KernelProfile } from '../../kvm/profiles.js';
import type { IoctlRequest, TraceEntry } from '../../kvm/ioctl.js';
import * as arm64 from '../../kvm/arm64/index.js';
import type { Arm64Ctx, Arm64Vcpu, Arm64Vm } from '../../kvm/arm64/state.js';
import * as x86 from '../../kvm/x86/index.js';
import type { X86Ctx, X86Vcpu, X86Vm } from '../../kvm/x86/state.js';
import { requireVcpu } from '../../kvm/errors.js';
import { hwFromJson, toSortedJson, type Json } from '../codec.js';
import { hostInfoFromJson, type GuestExecutedData, type VmEvent, type VmHostInfo } from './events.js';

/** The state of one VM stream. */
export interface VmRecord {
  vmId: string;
  hostId: string;
  arch: Arch;
  /** the profile of the host's kernel, as recorded */
  profile: string;
  /** x86: created as a confidential VM with a protected guest TSC */
  secureTsc: boolean;
  host: VmHostInfo;
  destroyed: boolean;
  destroyReason: string | null;
  x86: X86Vm | null;
  arm64: Arm64Vm | null;
  /** the simulated instant of the last event */
  lastTime: bigint;
  /** the stream version this state reflects */
  version: number;
}

export interface EvolveOptions {
  /** re-execute under this profile instead of the recorded one */
  profile?: KernelProfile;
  /** skip encoding the kernel's result as JSON (a plain rebuild does not look at it) */
  noResult?: boolean;
  /** collect the kernel's tracepoints (as JSON) for each event */
  trace?: boolean;
  /** hand back the result and tracepoints as the kernel produced them (bigints, not JSON): for comparing without encoding */
  raw?: boolean;
}

const profileCache = new Map<string, KernelProfile>();
function profileOf(rec: VmRecord, opts?: EvolveOptions): KernelProfile {
  if (opts?.profile) return opts.profile;
  let p = profileCache.get(rec.profile);
  if (!p) {
    p = rec.profile.includes('+') ? resolveProfile(rec.profile) : getProfile(rec.profile);
    profileCache.set(rec.profile, p);
  }
  return p;
}

export function x86Ctx(rec: VmRecord, hw: HostSample, opts?: EvolveOptions): X86Ctx {
  const ctx: X86Ctx = { caps: rec.host.x86!, sw: profileOf(rec, opts).x86, hw, tscClocksource: rec.host.counterClocksource };
  if (opts?.trace) ctx.trace = [];
  return ctx;
}

/**
 * A private copy of a VM record, cheap enough to take for every live decision: the kernel code
 * then mutates plain objects at full speed, and the record it came from (possibly frozen and
 * shared by the rebuild cache) stays untouched.
 */
export function cloneVmRecord(rec: VmRecord): VmRecord {
  const vm = rec.x86;
  const a = rec.arm64;
  return {
    ...rec,
    host: rec.host,
    x86: vm
      ? {
          ...vm,
          vcpus: vm.vcpus.map((v) => ({ ...v, requests: { ...v.requests }, pvti: v.pvti ? { ...v.pvti } : null })),
        }
      : null,
    arm64: a ? { ...a, vcpus: a.vcpus.map((v) => ({ ...v })) } : null,
  };
}

/** The vCPUs of a VM of either architecture (id and whether it is in KVM_RUN). */
export function vcpusOf(rec: VmRecord | null): readonly { id: number; running: boolean }[] {
  return rec?.x86?.vcpus ?? rec?.arm64?.vcpus ?? [];
}

export function arm64Ctx(rec: VmRecord, hw: HostSample, opts?: EvolveOptions): Arm64Ctx {
  const ctx: Arm64Ctx = { caps: { ecv: rec.host.arm64?.ecv ?? false, cntfrqHz: rec.host.counterHz }, sw: profileOf(rec, opts).arm64, hw };
  if (opts?.trace) ctx.trace = [];
  return ctx;
}

/** The result of applying one event: the record, the kernel's result and its tracepoints (JSON). */
export interface Applied {
  rec: VmRecord;
  result: Json;
  trace: Json[] | null;
}

// (as the log stores them: keys in canonical order)
const traced = (ctx: { trace?: TraceEntry[] }, opts?: EvolveOptions): Json[] | null =>
  ctx.trace ? (opts?.raw ? (ctx.trace as unknown as Json[]) : (ctx.trace.map((t) => toSortedJson(t)) as Json[])) : null;
const encoded = (r: unknown, opts?: EvolveOptions): Json => (opts?.noResult ? null : opts?.raw ? (r as Json) : toSortedJson(r));

/**
 * Apply one event to a VM record (mutated in place; pass an immer draft or a private copy).
 * Returns the record (new for VmCreated) and the result the kernel computed, as JSON.
 */
export function applyVmEvent(rec: VmRecord | null, ev: VmEvent, time: bigint, opts?: EvolveOptions): Applied {
  if (ev.type === 'VmCreated') {
    const d = ev.data;
    const created: VmRecord = {
      vmId: d.vmId,
      hostId: d.hostId,
      arch: d.arch,
      profile: d.profile,
      secureTsc: d.secureTsc === true,
      host: hostInfoFromJson(d.host),
      destroyed: false,
      destroyReason: null,
      x86: null,
      arm64: null,
      lastTime: time,
      version: 1,
    };
    const hw = hwFromJson(d.hw, time);
    return withKernel(d.arch, (k) => {
      const ctx = k.ctx(created, hw, opts);
      k.initVm(created, ctx);
      if (created.x86 && d.guestWallClockNs !== undefined) created.x86.guestWallClockNs = BigInt(d.guestWallClockNs);
      return { rec: created, result: null, trace: traced(ctx, opts) };
    });
  }
  if (!rec) throw new Error(`${ev.type} before VmCreated`);
  const hw = hwFromJson(ev.data.hw, time);
  // (no closure per event: each architecture's call is written out)
  const applied = rec.arm64 ? applyKernelEvent(ARM64, rec, ev, hw, opts) : applyKernelEvent(X86, rec, ev, hw, opts);
  // counted only once the kernel accepted the event (a refused one leaves the record as it was)
  rec.lastTime = time;
  rec.version++;
  return applied;
}

type KernelCtx = { trace?: TraceEntry[] };
type KernelVcpu = { id: number; running: boolean };

/** What applying an event calls of one architecture's kernel. */
interface ArchKernel<C extends KernelCtx, M, V extends KernelVcpu> {
  ctx(rec: VmRecord, hw: HostSample, opts?: EvolveOptions): C;
  /** kvm_arch_init_vm(), its state attached to the record */
  initVm(rec: VmRecord, ctx: C): void;
  vm(rec: VmRecord): M | null;
  vcpus(vm: M): V[];
  /** what the kernel does before any event (x86: the catch-up exit at the guest tick since the last one) */
  beforeEvent(ctx: C, vm: M): void;
  ioctl(ctx: C, vm: M, req: IoctlRequest): unknown;
  guest(ctx: C, vm: M, d: GuestExecutedData): unknown;
  runTimer(ctx: C, vm: M, timer: string): void;
  exitToUser(v: V): void;
}

const X86: ArchKernel<X86Ctx, X86Vm, X86Vcpu> = {
  ctx: x86Ctx,
  initVm: (rec, ctx) => void (rec.x86 = x86.kvmArchInitVm(ctx, { secureTsc: rec.secureTsc })),
  vm: (rec) => rec.x86,
  vcpus: (vm) => vm.vcpus,
  beforeEvent: x86.kvmCatchupTick,
  ioctl: x86.x86Ioctl,
  guest: (ctx, vm, d) => x86.x86Guest(ctx, vm, { vcpu: d.vcpu, op: d.op, msr: d.msr, value: d.value }),
  runTimer: (ctx, vm, timer) => x86.runTimer(ctx, vm, timer as x86.X86TimerName),
  exitToUser: x86.kvmVcpuExitToUser,
};

const ARM64: ArchKernel<Arm64Ctx, Arm64Vm, Arm64Vcpu> = {
  ctx: arm64Ctx,
  initVm: (rec, ctx) => void (rec.arm64 = arm64.kvmArchInitVm(ctx)),
  vm: (rec) => rec.arm64,
  vcpus: (vm) => vm.vcpus,
  beforeEvent: () => {},
  ioctl: arm64.arm64Ioctl,
  guest: (ctx, vm, d) => arm64.arm64Guest(ctx, vm, { vcpu: d.vcpu, op: d.op }),
  // arm64 KVM schedules no delayed clock work
  runTimer: () => {},
  exitToUser: arm64.kvmVcpuExitToUser,
};

/** Hand an architecture's kernel to code written once for any of them. */
function withKernel<R>(arch: Arch, use: <C extends KernelCtx, M, V extends KernelVcpu>(k: ArchKernel<C, M, V>) => R): R {
  return arch === 'arm64' ? use(ARM64) : use(X86);
}

/** Apply one event after VmCreated through the VM's architecture's kernel. */
function applyKernelEvent<C extends KernelCtx, M, V extends KernelVcpu>(
  k: ArchKernel<C, M, V>,
  rec: VmRecord,
  ev: Exclude<VmEvent, { type: 'VmCreated' }>,
  hw: HostSample,
  opts?: EvolveOptions,
): Applied {
  const vm = k.vm(rec);
  if (!vm) throw new Error(`VM ${rec.vmId} has no kernel state`);
  const ctx = k.ctx(rec, hw, opts);
  k.beforeEvent(ctx, vm);
  switch (ev.type) {
    case 'IoctlIssued': {
      const d = ev.data;
      const r = k.ioctl(ctx, vm, { ioctl: d.ioctl, vcpu: d.vcpu ?? undefined, arg: d.arg ?? undefined });
      return { rec, result: encoded(r, opts), trace: traced(ctx, opts) };
    }
    case 'GuestExecuted':
      return { rec, result: encoded(k.guest(ctx, vm, ev.data), opts), trace: traced(ctx, opts) };
    case 'TimerFired':
      k.runTimer(ctx, vm, ev.data.timer);
      return { rec, result: null, trace: traced(ctx, opts) };
    default:
      return applyLifecycleEvent(rec, k.vcpus(vm), ev, k.exitToUser, traced(ctx, opts));
  }
}

/** What both architectures do alike: a vCPU leaving KVM_RUN, and the VM's end. */
function applyLifecycleEvent<V extends { id: number; running: boolean }>(
  rec: VmRecord,
  vcpus: V[],
  ev: Extract<VmEvent, { type: 'VcpuExited' | 'VmDestroyed' }>,
  exitToUser: (v: V) => void,
  trace: Json[] | null,
): Applied {
  if (ev.type === 'VcpuExited') {
    exitToUser(requireVcpu(vcpus, ev.data.vcpu));
  } else {
    for (const v of vcpus) v.running = false;
    rec.destroyed = true;
    rec.destroyReason = ev.data.reason;
  }
  return { rec, result: null, trace };
}
