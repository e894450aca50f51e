// VM and vCPU lifetime: kvm_arch_init_vm(), kvm_vm_ioctl_create_vcpu() with kvm_arch_vcpu_create()
// and kvm_arch_vcpu_postcreate(), vcpu_load() and KVM_RUN entry, and the delayed clock works.
import { s64 } from '../u64.js';
import { kvmclockSyncFn, kvmclockUpdateFn, pvclockUpdateVmGtodCopy, serviceClockRequests } from './clock.js';
import type { X86Ctx, X86Vcpu, X86Vm } from './state.js';
import { findVcpu } from './state.js';
import {
  defaultRatio,
  KVMCLOCK_SYNC_PERIOD_NS,
  KVMCLOCK_UPDATE_DELAY_NS,
  kvmComputeL1TscOffset,
  kvmSetTscKhz,
  kvmSynchronizeTsc,
  kvmVcpuWriteTscOffset,
} from './tsc.js';

/** arch/x86/include/asm/kvm_host.h: KVM_MAX_VCPUS and KVM_MAX_VCPU_IDS */
export const KVM_MAX_VCPUS = 1024;
export const KVM_MAX_VCPU_IDS = 4096;

/** arch/x86/kvm/x86.c: kvm_arch_init_vm(): kvmclock starts at 0, the master clock is evaluated with no vCPUs (off) */
export function kvmArchInitVm(ctx: X86Ctx, opts: { secureTsc?: boolean; guestWallClockNs?: bigint } = {}): X86Vm {
  const vm: X86Vm = {
    arch: 'x86',
    secureTsc: opts.secureTsc === true,
    protectedTscOffset: null,
    kvmclockOffset: s64(-ctx.hw.rawNs),
    useMasterClock: false,
    masterKernelNs: 0n,
    masterCycleNow: 0n,
    defaultTscKhz: ctx.caps.tscKhz,
    userSetTsc: false,
    lastTscNsec: 0n,
    lastTscWrite: 0n,
    lastTscKhz: 0,
    lastTscOffset: 0n,
    lastTscScalingRatio: 0n,
    masterTscScalingRatio: 0n,
    masterTscMul: 0n,
    masterTscShift: 0,
    curTscGeneration: 0,
    curTscNsec: 0n,
    curTscWrite: 0n,
    curTscOffset: 0n,
    nrVcpusMatchedTsc: 0,
    backwardsTscObserved: false,
    bootVcpuRunsOldKvmclock: false,
    wallClockGpa: 0n,
    wallClockNs: null,
    guestWallClockNs: opts.guestWallClockNs ?? null,
    createdVcpus: 0,
    vcpus: [],
    kvmclockUpdateWorkAt: null,
    kvmclockSyncWorkAt: null,
  };
  pvclockUpdateVmGtodCopy(ctx, vm);
  return vm;
}

function newVcpu(ctx: X86Ctx, id: number): X86Vcpu {
  return {
    id,
    l1TscOffset: 0n,
    l1TscScalingRatio: defaultRatio(ctx),
    virtualTscKhz: 0,
    virtualTscMult: 0n,
    virtualTscShift: 0,
    tscCatchup: false,
    tscAlwaysCatchup: false,
    thisTscGeneration: 0,
    thisTscNsec: 0n,
    thisTscWrite: 0n,
    lastGuestTsc: 0n,
    ia32TscAdjustMsr: 0n,
    tscDeadline: 0n,
    tscDeadlineFiresAt: null,
    hwTscHz: 0n,
    pvclockTscMul: 0n,
    pvclockTscShift: 0,
    systemTimeMsr: 0n,
    pvTimeActive: false,
    pvclockSetGuestStoppedRequest: false,
    pvti: null,
    requests: { masterclockUpdate: false, globalClockUpdate: false, clockUpdate: false },
    loaded: false,
    running: false,
    guestTscProtected: false,
  };
}

/** virt/kvm/kvm_main.c: kvm_vm_ioctl_create_vcpu(): create, bring online, then kvm_arch_vcpu_postcreate() */
export function kvmVmIoctlCreateVcpu(ctx: X86Ctx, vm: X86Vm, id: number): 0 | 'EINVAL' | 'EEXIST' {
  if (id < 0 || id >= KVM_MAX_VCPU_IDS) return 'EINVAL';
  if (vm.createdVcpus >= KVM_MAX_VCPUS) return 'EINVAL';
  if (findVcpu(vm, id)) return 'EEXIST';
  vm.createdVcpus++;
  // kvm_arch_vcpu_create()
  const vcpu = newVcpu(ctx, id);
  kvmSetTscKhz(ctx, vm, vcpu, vm.defaultTscKhz);
  if (vm.secureTsc) {
    // tdx_vcpu_create() / SNP Secure TSC: the offset is the guest's (the TD's), fixed by the platform when the first
    // vCPU is created so the guest TSC starts at 0 then, the same on every vCPU; KVM only records it and is locked out
    vm.protectedTscOffset ??= kvmComputeL1TscOffset(ctx, vcpu, 0n);
    vcpu.l1TscOffset = vm.protectedTscOffset;
    vcpu.guestTscProtected = true;
  }
  // atomic_inc(&kvm->online_vcpus)
  vm.vcpus.push(vcpu);
  // kvm_arch_vcpu_postcreate()
  vcpuLoad(ctx, vm, vcpu);
  kvmSynchronizeTsc(ctx, vm, vcpu, null);
  // until 6.18: the first vCPU arms the periodic kvmclock_sync_work (reverted in 6.19 by 43ddbf16edf5)
  if (ctx.sw.periodicClockSync && vm.vcpus.length === 1 && vm.kvmclockSyncWorkAt === null) vm.kvmclockSyncWorkAt = ctx.hw.t + KVMCLOCK_SYNC_PERIOD_NS;
  return 0;
}

/** arch/x86/kvm/x86.c: kvm_arch_vcpu_load(): the clock work done when a vCPU is loaded on a physical CPU */
export function vcpuLoad(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu): void {
  // Each vCPU is pinned to one physical CPU, so only the first load (and every load on an
  // unstable-TSC host) does the work below.
  if (vcpu.loaded && !ctx.caps.tscUnstable) return;
  if (ctx.caps.tscUnstable) {
    // Resume the guest TSC where it stopped and let the catch-up code make up for the gap (not for a protected TSC).
    kvmVcpuWriteTscOffset(ctx, vcpu, kvmComputeL1TscOffset(ctx, vcpu, vcpu.lastGuestTsc));
    if (!vcpu.guestTscProtected) vcpu.tscCatchup = true;
  }
  if (!vm.useMasterClock || !vcpu.loaded) requestGlobalClockUpdateOnLoad(ctx, vm, vcpu);
  vcpu.loaded = true;
}

/**
 * kvm_arch_vcpu_load()'s KVM_REQ_GLOBAL_CLOCK_UPDATE. 7.1 (8fe2e698fce4) rate-limits it again without
 * delayed work: within KVMCLOCK_UPDATE_DELAY of the last one a load refreshes only its own vCPU (the
 * interval and the in-between request are modelled, not confirmed: kvm/profiles.ts). On the true-time axis.
 */
function requestGlobalClockUpdateOnLoad(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu): void {
  if (!ctx.sw.globalClockUpdateRateLimit) {
    vcpu.requests.globalClockUpdate = true;
    return;
  }
  const last = vm.globalClockUpdateOnLoadAt;
  if (last !== undefined && ctx.hw.t - last < KVMCLOCK_UPDATE_DELAY_NS) {
    vcpu.requests.clockUpdate = true;
    return;
  }
  vm.globalClockUpdateOnLoadAt = ctx.hw.t;
  vcpu.requests.globalClockUpdate = true;
}

/** arch/x86/kvm/x86.c: kvm_arch_vcpu_ioctl_run(): enter the guest, serving pending requests first (vcpu_enter_guest()) */
export function kvmArchVcpuIoctlRun(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu): void {
  vcpuLoad(ctx, vm, vcpu);
  vcpu.running = true;
  serviceClockRequests(ctx, vm, vcpu);
}

/** The vCPU leaves KVM_RUN for userspace (the VMM paused it). */
export function kvmVcpuExitToUser(vcpu: X86Vcpu): void {
  vcpu.running = false;
}

function hasClockRequest(v: X86Vcpu): boolean {
  return v.requests.masterclockUpdate || v.requests.globalClockUpdate || v.requests.clockUpdate;
}

/** Requests raised on a vCPU in guest mode kick it out; it serves them as it re-enters, at once. */
export function kickRunningVcpus(ctx: X86Ctx, vm: X86Vm): void {
  for (const v of vm.vcpus) if (v.running && v.tscAlwaysCatchup) v.requests.clockUpdate = true; // after every exit
  // Serving a master clock update on one vCPU requests updates on all: repeat until quiet.
  for (let pass = 0; pass < 3; pass++) {
    let served = false;
    for (const v of vm.vcpus) {
      if (v.running && hasClockRequest(v)) {
        serviceClockRequests(ctx, vm, v);
        served = true;
      }
    }
    if (!served) return;
  }
}

/**
 * The guest's timer tick (HZ=250). A model setting, not a kernel constant: a running guest takes at
 * least one exit per tick (its LAPIC timer), and with tsc_always_catchup vcpu_enter_guest()
 * requests KVM_REQ_CLOCK_UPDATE after every exit, so kvm_guest_time_update() catches the TSC up at
 * each tick. Ticks fall at whole multiples of GUEST_TICK_NS on the true-time axis; between them the
 * guest TSC runs at the host's rate.
 */
export const GUEST_TICK_NS = 4_000_000n;

/**
 * The tick at which a catch-up exit happened since the VM's last event at lastT, as seen at t: the
 * last tick boundary in (lastT, t], if some vCPU is in KVM_RUN with tsc_always_catchup; else null.
 * Only the last one matters: each catch-up sets the TSC to compute_guest_tsc() of its instant,
 * which outruns what the host TSC adds until the next, so earlier ticks leave no trace.
 */
export function catchupTickDue(vm: X86Vm, lastT: bigint, t: bigint): bigint | null {
  if (!vm.vcpus.some((v) => v.running && v.tscAlwaysCatchup)) return null;
  const tick = t - (t % GUEST_TICK_NS);
  return tick > lastT ? tick : null;
}

/**
 * The exit and re-entry of every running vCPU at the tick ctx.hw.tick: vcpu_enter_guest()'s
 * KVM_REQ_CLOCK_UPDATE after the exit, served by kvm_guest_time_update() on the way back in,
 * with the host as it was at the tick. Nothing without a tick sample.
 */
export function kvmCatchupTick(ctx: X86Ctx, vm: X86Vm): void {
  const tick = ctx.hw.tick;
  if (tick) kickRunningVcpus({ ...ctx, hw: tick }, vm);
}

/** The next pending delayed work of the VM (host true time), or null. */
export function nextTimerAt(vm: X86Vm): bigint | null {
  const a = vm.kvmclockUpdateWorkAt;
  const b = vm.kvmclockSyncWorkAt;
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

export type X86TimerName = 'kvmclock_update_work' | 'kvmclock_sync_work';

/** Which work is due at `at`: the update work first when both are. */
export function dueTimer(vm: X86Vm, at: bigint): X86TimerName | null {
  if (vm.kvmclockUpdateWorkAt !== null && vm.kvmclockUpdateWorkAt <= at) return 'kvmclock_update_work';
  if (vm.kvmclockSyncWorkAt !== null && vm.kvmclockSyncWorkAt <= at) return 'kvmclock_sync_work';
  return null;
}

/** Run one delayed work item (ctx.hw sampled at its due instant). */
export function runTimer(ctx: X86Ctx, vm: X86Vm, timer: X86TimerName): void {
  if (timer === 'kvmclock_update_work') kvmclockUpdateFn(vm);
  else kvmclockSyncFn(ctx, vm);
  kickRunningVcpus(ctx, vm);
}
