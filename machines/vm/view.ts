// What a VM looks like at an instant: its recorded kernel state plus what the guest would read
// at that instant (each vCPU's TSC and kvmclock) and what KVM_GET_CLOCK would return.
import { sampleHost, type HostState } from '../../kvm/host.js';
import { getKvmclock, guestPvclockRead } from '../../kvm/x86/clock.js';
import { kvmReadL1Tsc } from '../../kvm/x86/tsc.js';
import type { JsonOf } from '../../lib/json-of.js';
import { toJson } from '../codec.js';
import type { VmRecord } from './evolve.js';
import { arm64Ctx, cloneVmRecord, x86Ctx } from './evolve.js';
import { catchupTickDue, kvmCatchupTick } from '../../kvm/x86/vm.js';
import { timerCounter } from '../../kvm/arm64/timer.js';
import { vmLifecycle } from './machine.js';

export interface GuestClockView {
  vcpu: number;
  running: boolean;
  tsc: bigint;
  kvmclock: bigint | null;
  pvclockFlags: number | null;
}

/** The guest-visible clocks of every vCPU at true time t, computed without changing anything. */
export function guestClocksAt(rec: VmRecord, host: HostState, t: bigint): { kvmclock: bigint | null; vcpus: GuestClockView[] } {
  if (!rec.x86) return { kvmclock: null, vcpus: [] };
  const ctx = x86Ctx(rec, sampleHost(host, t));
  // a guest in software TSC catch-up has exited at its last tick since: on a copy, as the kernel would have
  let vm = rec.x86;
  const tick = catchupTickDue(vm, rec.lastTime, t);
  if (tick !== null) {
    vm = cloneVmRecord(rec).x86!;
    kvmCatchupTick({ ...ctx, hw: { ...ctx.hw, tick: sampleHost(host, tick) } }, vm);
  }
  return {
    kvmclock: getKvmclock(ctx, vm).clock,
    vcpus: vm.vcpus.map((v) => {
      const tsc = kvmReadL1Tsc(ctx, v, ctx.hw.tsc);
      return { vcpu: v.id, running: v.running, tsc, kvmclock: v.pvti ? guestPvclockRead(v.pvti, tsc) : null, pvclockFlags: v.pvti?.flags ?? null };
    }),
  };
}

export interface CounterView {
  vcpu: number;
  running: boolean;
  cntvct: bigint;
  cntpct: bigint;
  trappedPhysReads: number;
}

/** The guest's virtual and physical counters on every arm64 vCPU at true time t. */
export function guestCountersAt(rec: VmRecord, host: HostState, t: bigint): CounterView[] {
  const vm = rec.arm64;
  if (!vm) return [];
  const ctx = arm64Ctx(rec, sampleHost(host, t));
  return vm.vcpus.map((v) => ({
    vcpu: v.id,
    running: v.running,
    cntvct: timerCounter(ctx, vm, v, 'vtimer'),
    cntpct: timerCounter(ctx, vm, v, 'ptimer'),
    trappedPhysReads: v.trappedPhysReads,
  }));
}

/** A VM as users see it: its recorded state and, viewed at an instant on a live host, what its guest reads then. */
function view(rec: VmRecord, host: HostState | null, at?: bigint) {
  const base = {
    vmId: rec.vmId,
    hostId: rec.hostId,
    arch: rec.arch,
    profile: rec.profile,
    lifecycle: vmLifecycle(rec),
    destroyReason: rec.destroyReason,
    version: rec.version,
    lastEventTime: rec.lastTime,
    kvm: rec.x86 ?? rec.arm64,
  };
  // viewed at an instant on a live host: what the guest reads then (its TSC and kvmclock, or its counters)
  const viewed: { at?: bigint; guest?: ReturnType<typeof guestClocksAt> | { vcpus: CounterView[] } } =
    at === undefined || !host || rec.destroyed ? {} : { at, guest: rec.arm64 ? { vcpus: guestCountersAt(rec, host, at) } : guestClocksAt(rec, host, at) };
  return { ...base, ...viewed };
}

/** The VM view's fields (before JSON: u64s as bigints). */
export type VmView = ReturnType<typeof view>;

/** The JSON users see for a VM (the same whether computed live or rebuilt later). */
export function vmView(rec: VmRecord, host: HostState | null, at?: bigint): JsonOf<VmView> {
  return toJson(view(rec, host, at)) as JsonOf<VmView>;
}
