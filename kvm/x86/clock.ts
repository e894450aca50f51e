// kvmclock: the master clock, KVM_[GS]ET_CLOCK, the guest's pvclock page and the requests that
// refresh it (arch/x86/kvm/x86.c), plus the clock-cleanup proposal's KVM_[GS]ET_CLOCK_GUEST.
import { getTimeScale, hvclockToHz, NSEC_PER_SEC, pvclockReadCycles, pvclockScaleDelta, type TimeScale } from '../arith.js';
import { s64, u64 } from '../u64.js';
import { KVM_CLOCK_HOST_TSC, KVM_CLOCK_REALTIME, KVM_CLOCK_TSC_STABLE, KVM_CLOCK_VALID_FLAGS, PVCLOCK_GUEST_STOPPED, PVCLOCK_TSC_STABLE_BIT } from '../uapi.js';
import { tracepoint, type Pvti, type X86Ctx, type X86Vcpu, type X86Vm } from './state.js';
import { adjustTscOffsetGuest, computeGuestTsc, defaultRatio, KVMCLOCK_SYNC_PERIOD_NS, KVMCLOCK_UPDATE_DELAY_NS, kvmReadL1Tsc, kvmScaleTsc } from './tsc.js';

/** struct kvm_clock_data */
export interface KvmClockData {
  clock: bigint;
  flags: number;
  realtime: bigint;
  hostTsc: bigint;
}

// kvm_get_time_scale() of a fixed frequency is recomputed by the kernel on every call; cache it.
const timeScaleCache = new Map<bigint, TimeScale>();
/** kvm_get_time_scale(NSEC_PER_SEC, hz), memoized */
export function nsTimeScale(hz: bigint): TimeScale {
  let s = timeScaleCache.get(hz);
  if (!s) {
    s = getTimeScale(NSEC_PER_SEC, hz);
    timeScaleCache.set(hz, s);
  }
  return s;
}

/** pvclock_update_vm_gtod_copy(): a new master reference point, and whether to use it */
export function pvclockUpdateVmGtodCopy(ctx: X86Ctx, vm: X86Vm): void {
  const vcpusMatched = vm.nrVcpusMatchedTsc + 1 === vm.vcpus.length || (ctx.sw.masterClockAtInit && vm.vcpus.length === 0);
  // kvm_get_time_and_clockread(): only a TSC clocksource yields a (ns, tsc) pair
  const hostTscClocksource = ctx.tscClocksource;
  if (hostTscClocksource) {
    vm.masterKernelNs = ctx.hw.rawNs;
    vm.masterCycleNow = ctx.hw.tsc;
  }
  vm.useMasterClock = hostTscClocksource && vcpusMatched && !vm.backwardsTscObserved && !vm.bootVcpuRunsOldKvmclock;
  if (ctx.trace)
    tracepoint(ctx, { tp: 'kvm_update_master_clock', use_master_clock: vm.useMasterClock, host_clock: hostTscClocksource, offset_matched: vcpusMatched });
  if (ctx.sw.getClockScaled && vm.useMasterClock) {
    // proposal: the master clock carries the guest's scaled frequency
    const ratio = vm.lastTscScalingRatio || defaultRatio(ctx);
    vm.masterTscScalingRatio = ratio;
    let hz = BigInt(ctx.caps.tscKhz) * 1000n;
    if (ctx.caps.tscScaling) hz = kvmScaleTsc(ctx, hz, ratio);
    const s = nsTimeScale(hz || 1n);
    vm.masterTscMul = s.mul;
    vm.masterTscShift = s.shift;
  }
}

/** kvm_make_all_cpus_request(kvm, KVM_REQ_CLOCK_UPDATE) */
function requestClockUpdateAll(vm: X86Vm): void {
  for (const v of vm.vcpus) v.requests.clockUpdate = true;
}

/** kvm_end_pvclock_update(): every vCPU refreshes its clock page */
export function kvmEndPvclockUpdate(vm: X86Vm): void {
  requestClockUpdateAll(vm);
}

/** kvm_update_masterclock() */
export function kvmUpdateMasterclock(ctx: X86Ctx, vm: X86Vm): void {
  pvclockUpdateVmGtodCopy(ctx, vm);
  kvmEndPvclockUpdate(vm);
}

/** __get_kvmclock() / get_kvmclock(): what KVM_GET_CLOCK returns */
export function getKvmclock(ctx: X86Ctx, vm: X86Vm): KvmClockData {
  const data: KvmClockData = { clock: 0n, flags: 0, realtime: 0n, hostTsc: 0n };
  // The kernel asks for CONSTANT_TSC or a non-zero per-CPU kHz; the latter holds on any online CPU.
  if (vm.useMasterClock) {
    // kvm_get_walltime_and_clockread(): realtime and host TSC from one read, TSC clocksource only
    if (ctx.tscClocksource && ctx.sw.clockRealtime) {
      data.realtime = ctx.hw.realNs;
      data.hostTsc = ctx.hw.tsc;
      data.flags |= KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
    } else if (ctx.sw.clockRealtime) {
      data.hostTsc = ctx.hw.tsc;
    }
    data.flags |= KVM_CLOCK_TSC_STABLE;
    const systemTime = u64(vm.masterKernelNs + vm.kvmclockOffset);
    const hostTsc = ctx.hw.tsc;
    if (ctx.sw.getClockScaled && ctx.caps.tscScaling) {
      // proposal: scale the host TSC delta by the guest ratio, as the guest's own read does
      const delta = kvmScaleTsc(ctx, u64(hostTsc - vm.masterCycleNow), vm.masterTscScalingRatio);
      data.clock = u64(systemTime + pvclockScaleDelta(delta, vm.masterTscMul, vm.masterTscShift));
    } else {
      const s = ctx.sw.getClockScaled ? { mul: vm.masterTscMul, shift: vm.masterTscShift } : nsTimeScale(BigInt(ctx.caps.tscKhz) * 1000n);
      data.clock = pvclockReadCycles({ systemTime, tscTimestamp: vm.masterCycleNow, mul: s.mul, shift: s.shift }, hostTsc);
    }
  } else {
    data.clock = u64(ctx.hw.rawNs + vm.kvmclockOffset);
  }
  return data;
}

/** get_kvmclock_ns() */
export function getKvmclockNs(ctx: X86Ctx, vm: X86Vm): bigint {
  return getKvmclock(ctx, vm).clock;
}

/** kvm_vm_ioctl_set_clock(): 0 or a negative errno value */
export function kvmVmIoctlSetClock(ctx: X86Ctx, vm: X86Vm, data: KvmClockData): 0 | 'EINVAL' {
  // Before 5.16 any flag was refused; since, the result of KVM_GET_CLOCK may be passed back.
  if (ctx.sw.clockRealtime ? (data.flags & ~KVM_CLOCK_VALID_FLAGS) !== 0 : data.flags !== 0) return 'EINVAL';
  pvclockUpdateVmGtodCopy(ctx, vm);
  let clock = data.clock;
  if (data.flags & KVM_CLOCK_REALTIME) {
    // Add the time that passed since realtime; never step kvmclock backwards.
    const nowRealNs = u64(ctx.hw.realNs);
    if (nowRealNs > data.realtime) clock = u64(clock + nowRealNs - data.realtime);
  }
  // master_kernel_ns pairs with kvm_guest_time_update()'s system_time, so a tiny clock never goes negative.
  const nowRawNs = vm.useMasterClock ? vm.masterKernelNs : ctx.hw.rawNs;
  vm.kvmclockOffset = s64(clock - nowRawNs);
  if (ctx.trace) tracepoint(ctx, { tp: 'clockledger_kvmclock_offset', kvmclock_offset: vm.kvmclockOffset });
  kvmEndPvclockUpdate(vm);
  return 0;
}

/** kvm_gen_kvmclock_update(): update this vCPU now and every vCPU after KVMCLOCK_UPDATE_DELAY */
export function kvmGenKvmclockUpdate(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu): void {
  // 6.19+ (446fcce2a52b): KVM_REQ_CLOCK_UPDATE on every vCPU at once, no delayed work
  if (!ctx.sw.globalClockUpdateDelay) {
    requestClockUpdateAll(vm);
    return;
  }
  vcpu.requests.clockUpdate = true;
  // schedule_delayed_work() does nothing if the work is already pending
  if (vm.kvmclockUpdateWorkAt === null) vm.kvmclockUpdateWorkAt = ctx.hw.t + KVMCLOCK_UPDATE_DELAY_NS;
}

/** kvmclock_update_fn(): the delayed work, KVM_REQ_CLOCK_UPDATE on every vCPU */
export function kvmclockUpdateFn(vm: X86Vm): void {
  vm.kvmclockUpdateWorkAt = null;
  requestClockUpdateAll(vm);
}

/** kvmclock_sync_fn(): the periodic (300 s) refresh, re-armed each time */
export function kvmclockSyncFn(ctx: X86Ctx, vm: X86Vm): void {
  vm.kvmclockSyncWorkAt = ctx.hw.t + KVMCLOCK_SYNC_PERIOD_NS;
  // schedule_delayed_work(&kvmclock_update_work, 0): a no-op while the update work is queued
  if (vm.kvmclockUpdateWorkAt === null) kvmclockUpdateFn(vm);
}

/** kvm_write_system_time(): MSR_KVM_SYSTEM_TIME(_NEW) */
export function kvmWriteSystemTime(vm: X86Vm, vcpu: X86Vcpu, systemTime: bigint, oldMsr: boolean, hostInitiated: boolean): void {
  if (vcpu.id === 0 && !hostInitiated) {
    // The boot vCPU on the legacy MSR forbids the master clock.
    if (vm.bootVcpuRunsOldKvmclock !== oldMsr) vcpu.requests.masterclockUpdate = true;
    vm.bootVcpuRunsOldKvmclock = oldMsr;
  }
  vcpu.systemTimeMsr = systemTime;
  vcpu.requests.globalClockUpdate = true;
  vcpu.pvTimeActive = (systemTime & 1n) === 1n;
  if (!vcpu.pvTimeActive) vcpu.pvti = null;
}

/** kvm_write_wall_clock(): the guest's boot wall clock, realtime minus kvmclock now */
export function kvmWriteWallClock(ctx: X86Ctx, vm: X86Vm, gpa: bigint): void {
  // kvm->arch.wall_clock is one guest address for the whole VM, whichever vCPU wrote it
  vm.wallClockGpa = gpa;
  vm.wallClockNs = ctx.hw.realNs - getKvmclockNs(ctx, vm);
}

/** kvm_guest_time_update(): rewrite the vCPU's pvclock page. Returns 0, or 1 to retry. */
export function kvmGuestTimeUpdate(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu): number {
  const useMasterClock = vm.useMasterClock;
  const hostTsc = useMasterClock ? vm.masterCycleNow : ctx.hw.tsc;
  const kernelNs = useMasterClock ? vm.masterKernelNs : ctx.hw.rawNs;
  let tscTimestamp = kvmReadL1Tsc(ctx, vcpu, hostTsc);
  // A vCPU faster than a host without scaling hardware is caught up to the elapsed time.
  if (vcpu.tscCatchup) {
    const tsc = computeGuestTsc(vcpu, kernelNs);
    if (tsc > tscTimestamp) {
      adjustTscOffsetGuest(ctx, vcpu, tsc - tscTimestamp);
      tscTimestamp = tsc;
    }
  }
  // The guest frequency: host kHz scaled by the vCPU ratio, in kHz (mainline) or in Hz (proposal).
  let tgtHz: bigint;
  if (ctx.sw.pvclockHz) {
    tgtHz = BigInt(ctx.caps.tscKhz) * 1000n;
    if (ctx.caps.tscScaling) tgtHz = kvmScaleTsc(ctx, tgtHz, vcpu.l1TscScalingRatio) || 1n;
  } else {
    let khz = BigInt(ctx.caps.tscKhz);
    if (ctx.caps.tscScaling) khz = kvmScaleTsc(ctx, khz, vcpu.l1TscScalingRatio) || 1n;
    tgtHz = khz * 1000n;
  }
  if (vcpu.hwTscHz !== tgtHz) {
    const s = nsTimeScale(tgtHz);
    vcpu.pvclockTscShift = s.shift;
    vcpu.pvclockTscMul = s.mul;
    vcpu.hwTscHz = tgtHz;
  }
  const systemTime = u64(kernelNs + vm.kvmclockOffset);
  vcpu.lastGuestTsc = tscTimestamp;
  let flags = useMasterClock ? PVCLOCK_TSC_STABLE_BIT : 0;
  if (vcpu.pvTimeActive) {
    // GUEST_STOPPED is only delivered through an active kvmclock; the guest clears it when it sees it.
    if (vcpu.pvclockSetGuestStoppedRequest) {
      flags |= PVCLOCK_GUEST_STOPPED;
      vcpu.pvclockSetGuestStoppedRequest = false;
    }
    // kvm_setup_guest_pvclock(): version odd while writing, even after; keep an unacknowledged GUEST_STOPPED
    const prev = vcpu.pvti;
    if (prev) flags |= prev.flags & PVCLOCK_GUEST_STOPPED;
    vcpu.pvti = {
      version: ((prev?.version ?? 0) + 2) & ~1,
      tscTimestamp,
      systemTime,
      mul: vcpu.pvclockTscMul,
      shift: vcpu.pvclockTscShift,
      flags,
    };
    if (ctx.trace)
      tracepoint(ctx, {
        tp: 'kvm_pvclock_update',
        vcpu_id: vcpu.id,
        tsc_timestamp: tscTimestamp,
        system_time: systemTime,
        tsc_to_system_mul: vcpu.pvclockTscMul,
        tsc_shift: vcpu.pvclockTscShift,
        flags,
      });
  }
  return 0;
}

/** The request servicing at the top of vcpu_enter_guest(), in the kernel's order. */
export function serviceClockRequests(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu): void {
  if (vcpu.requests.masterclockUpdate) {
    vcpu.requests.masterclockUpdate = false;
    kvmUpdateMasterclock(ctx, vm);
  }
  if (vcpu.requests.globalClockUpdate) {
    vcpu.requests.globalClockUpdate = false;
    kvmGenKvmclockUpdate(ctx, vm, vcpu);
  }
  if (vcpu.requests.clockUpdate) {
    vcpu.requests.clockUpdate = false;
    kvmGuestTimeUpdate(ctx, vm, vcpu);
  }
}

/** kvm_set_guest_paused(): KVM_KVMCLOCK_CTRL */
export function kvmSetGuestPaused(vcpu: X86Vcpu): 0 | 'EINVAL' {
  if (!vcpu.pvTimeActive) return 'EINVAL';
  vcpu.pvclockSetGuestStoppedRequest = true;
  vcpu.requests.clockUpdate = true;
  return 0;
}

/** The guest's clock read through its pvclock page: __pvclock_read_cycles(pvti, rdtsc()) */
export function guestPvclockRead(pvti: Pvti, guestTsc: bigint): bigint {
  return pvclockReadCycles(pvti, guestTsc);
}

/** proposal: KVM_GET_CLOCK_GUEST, the pvclock a guest would see at the master reference point */
export function kvmGetClockGuest(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu): Pvti | 'EINVAL' {
  if (vcpu.requests.clockUpdate || vcpu.hwTscHz === 0n) {
    vcpu.requests.clockUpdate = false;
    if (kvmGuestTimeUpdate(ctx, vm, vcpu) !== 0) return 'EINVAL';
  }
  if (!vm.useMasterClock) return 'EINVAL';
  return {
    version: 0,
    tscTimestamp: kvmReadL1Tsc(ctx, vcpu, vm.masterCycleNow),
    systemTime: u64(vm.masterKernelNs + vm.kvmclockOffset),
    mul: vcpu.pvclockTscMul,
    shift: vcpu.pvclockTscShift,
    flags: PVCLOCK_TSC_STABLE_BIT,
  };
}

/** struct pvclock_vcpu_time_info as userspace passes it to KVM_SET_CLOCK_GUEST, pads included */
export interface UserPvti extends Pvti {
  pad0: number;
  pad: [number, number];
}

/** proposal: KVM_SET_CLOCK_GUEST, set kvmclock so the guest's clock continues a saved pvclock */
export function kvmSetClockGuest(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, user: UserPvti): 0 | 'EINVAL' | 'ERANGE' {
  if (user.pad0 !== 0 || user.pad[0] !== 0 || user.pad[1] !== 0) return 'EINVAL';
  if (user.mul === 0n) return 'EINVAL';
  if (user.shift < -31 || user.shift > 31) return 'EINVAL';
  const userTscHz = hvclockToHz(user.mul, user.shift);
  // The master clock is re-snapshotted even when a later check fails.
  pvclockUpdateVmGtodCopy(ctx, vm);
  try {
    if (!vm.useMasterClock) return 'EINVAL';
    let currTscHz = BigInt(ctx.caps.tscKhz) * 1000n;
    if (currTscHz === 0n) return 'EINVAL';
    if (ctx.caps.tscScaling) currTscHz = kvmScaleTsc(ctx, currTscHz, vcpu.l1TscScalingRatio);
    if (userTscHz < u64(currTscHz - 1000n) || userTscHz > currTscHz + 1000n) return 'ERANGE';
    const guestTsc = kvmReadL1Tsc(ctx, vcpu, vm.masterCycleNow);
    if (guestTsc < user.tscTimestamp) return 'EINVAL';
    const userClkNs = pvclockReadCycles(user, guestTsc);
    vm.kvmclockOffset = s64(userClkNs - vm.masterKernelNs);
    if (ctx.trace) tracepoint(ctx, { tp: 'clockledger_kvmclock_offset', kvmclock_offset: vm.kvmclockOffset });
    return 0;
  } finally {
    kvmEndPvclockUpdate(vm);
  }
}
