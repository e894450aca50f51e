// TSC offsetting, scaling and synchronisation: arch/x86/kvm/x86.c.
import { getTimeScale, NSEC_PER_SEC, pvclockScaleDelta, scaleTsc, tscScalingRatio, tscToleranceWindow } from '../arith.js';
import { u64 } from '../u64.js';
import { tracepoint, type X86Ctx, type X86Vcpu, type X86Vm } from './state.js';

/** KVMCLOCK_UPDATE_DELAY, KVMCLOCK_SYNC_PERIOD */
export const KVMCLOCK_UPDATE_DELAY_NS = 100_000_000n;
export const KVMCLOCK_SYNC_PERIOD_NS = 300n * NSEC_PER_SEC;

/** kvm_caps.default_tsc_scaling_ratio */
export function defaultRatio(ctx: X86Ctx): bigint {
  return 1n << BigInt(ctx.caps.fracBits);
}

/** kvm_scale_tsc() */
export function kvmScaleTsc(ctx: X86Ctx, tsc: bigint, ratio: bigint): bigint {
  return scaleTsc(tsc, ratio, ctx.caps.fracBits);
}

/** kvm_read_l1_tsc(): the guest (L1) TSC at a given host TSC value */
export function kvmReadL1Tsc(ctx: X86Ctx, vcpu: X86Vcpu, hostTsc: bigint): bigint {
  return u64(vcpu.l1TscOffset + kvmScaleTsc(ctx, hostTsc, vcpu.l1TscScalingRatio));
}

/** kvm_compute_l1_tsc_offset(): the offset that makes the guest TSC read target_tsc now */
export function kvmComputeL1TscOffset(ctx: X86Ctx, vcpu: X86Vcpu, targetTsc: bigint): bigint {
  return u64(targetTsc - kvmScaleTsc(ctx, ctx.hw.tsc, vcpu.l1TscScalingRatio));
}

/** nsec_to_cycles() */
export function nsecToCycles(vcpu: X86Vcpu, nsec: bigint): bigint {
  return pvclockScaleDelta(nsec, vcpu.virtualTscMult, vcpu.virtualTscShift);
}

/** kvm_vcpu_write_tsc_offset() (tracepoint kvm_write_tsc_offset) */
export function kvmVcpuWriteTscOffset(ctx: X86Ctx, vcpu: X86Vcpu, offset: bigint): void {
  if (vcpu.guestTscProtected) return;
  const next = u64(offset);
  if (ctx.trace) tracepoint(ctx, { tp: 'kvm_write_tsc_offset', vcpu_id: vcpu.id, previous_tsc_offset: vcpu.l1TscOffset, next_tsc_offset: next });
  vcpu.l1TscOffset = next;
}

/** kvm_vcpu_write_tsc_multiplier() */
export function kvmVcpuWriteTscMultiplier(ctx: X86Ctx, vcpu: X86Vcpu, ratio: bigint): void {
  if (ctx.trace && vcpu.l1TscScalingRatio !== ratio) tracepoint(ctx, { tp: 'clockledger_tsc_multiplier', vcpu_id: vcpu.id, ratio });
  vcpu.l1TscScalingRatio = ratio;
}

/** adjust_tsc_offset_guest() */
export function adjustTscOffsetGuest(ctx: X86Ctx, vcpu: X86Vcpu, adjustment: bigint): void {
  kvmVcpuWriteTscOffset(ctx, vcpu, vcpu.l1TscOffset + adjustment);
}

/** compute_guest_tsc(): the TSC a catch-up vCPU should show at kernel_ns */
export function computeGuestTsc(vcpu: X86Vcpu, kernelNs: bigint): bigint {
  const tsc = pvclockScaleDelta(u64(kernelNs - vcpu.thisTscNsec), vcpu.virtualTscMult, vcpu.virtualTscShift);
  return u64(tsc + vcpu.thisTscWrite);
}

/** kvm_check_tsc_unstable() */
function kvmCheckTscUnstable(ctx: X86Ctx): boolean {
  return ctx.caps.tscUnstable;
}

/** kvm_track_tsc_matching(): request a master clock update when the wish for one changes */
export function kvmTrackTscMatching(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, newGeneration: boolean): void {
  // The count of matched vCPUs excludes the reference vCPU, hence "+1".
  const useMasterClock = vm.nrVcpusMatchedTsc + 1 === vm.vcpus.length && ctx.tscClocksource;
  const request = ctx.sw.masterclockRequestOnChange
    ? (vm.useMasterClock && newGeneration) || vm.useMasterClock !== useMasterClock
    : vm.useMasterClock || useMasterClock; // before 6.8: on every write while the master clock is or could be on
  if (ctx.trace)
    tracepoint(ctx, {
      tp: 'kvm_track_tsc',
      vcpu_id: vcpu.id,
      nr_vcpus_matched_tsc: vm.nrVcpusMatchedTsc,
      online_vcpus: vm.vcpus.length,
      use_master_clock: vm.useMasterClock,
      host_clock: ctx.tscClocksource,
    });
  if (request) vcpu.requests.masterclockUpdate = true;
}

/** __kvm_synchronize_tsc(): record a TSC write and its generation, then write the offset */
export function __kvmSynchronizeTsc(
  ctx: X86Ctx,
  vm: X86Vm,
  vcpu: X86Vcpu,
  offset: bigint,
  tsc: bigint,
  ns: bigint,
  matched: boolean,
  userSetTsc: boolean,
): void {
  // a protected guest TSC: nothing is recorded, no generation, no master clock request
  if (vcpu.guestTscProtected) return;
  if (userSetTsc) vm.userSetTsc = true;
  // Track the most recent write so the matching interval extends at each write.
  vm.lastTscNsec = ns;
  vm.lastTscWrite = tsc;
  vm.lastTscKhz = vcpu.virtualTscKhz;
  vm.lastTscOffset = offset;
  vm.lastTscScalingRatio = vcpu.l1TscScalingRatio;
  vcpu.lastGuestTsc = tsc;
  kvmVcpuWriteTscOffset(ctx, vcpu, offset);
  if (!matched) {
    // A new generation of matched writes begins with this one.
    vm.curTscGeneration++;
    vm.curTscNsec = ns;
    vm.curTscWrite = tsc;
    vm.curTscOffset = offset;
    vm.nrVcpusMatchedTsc = 0;
  } else if (vcpu.thisTscGeneration !== vm.curTscGeneration) {
    vm.nrVcpusMatchedTsc++;
  }
  vcpu.thisTscGeneration = vm.curTscGeneration;
  vcpu.thisTscNsec = vm.curTscNsec;
  vcpu.thisTscWrite = vm.curTscWrite;
  kvmTrackTscMatching(ctx, vm, vcpu, !matched);
}

/** kvm_synchronize_tsc(): vCPU creation (userValue null) or a host write of MSR_IA32_TSC */
export function kvmSynchronizeTsc(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, userValue: bigint | null): void {
  let data = userValue ?? 0n;
  let offset = kvmComputeL1TscOffset(ctx, vcpu, data);
  const ns = ctx.hw.rawNs;
  const elapsed = u64(ns - vm.lastTscNsec);
  let synchronizing = false;
  let matched = false;
  if (vcpu.virtualTscKhz) {
    if (data === 0n) {
      // Forced at vCPU creation, or when userspace explicitly writes zero.
      synchronizing = true;
    } else if (vm.userSetTsc || !ctx.sw.userSetTscGate) {
      // UAPI baggage: a write within one second of virtual time of the last one is taken
      // as meant to be in sync. Since 6.7 only once userspace itself has written a TSC.
      const tscExp = u64(vm.lastTscWrite + nsecToCycles(vcpu, elapsed));
      const tscHz = BigInt(vcpu.virtualTscKhz) * 1000n;
      synchronizing = data < u64(tscExp + tscHz) && u64(data + tscHz) > tscExp;
    }
  }
  // With a reliable TSC, match offsets; with an unstable one, add the elapsed time instead.
  if (synchronizing && vcpu.virtualTscKhz === vm.lastTscKhz) {
    if (!kvmCheckTscUnstable(ctx)) {
      offset = vm.curTscOffset;
    } else {
      data = u64(data + nsecToCycles(vcpu, elapsed));
      offset = kvmComputeL1TscOffset(ctx, vcpu, data);
    }
    matched = true;
  }
  __kvmSynchronizeTsc(ctx, vm, vcpu, offset, data, ns, matched, userValue !== null);
}

/** kvm_caps.max_guest_tsc_khz: min(0x7fffffff, max_ratio × tsc_khz >> frac) */
export function maxGuestTscKhz(ctx: X86Ctx): number {
  if (!ctx.caps.tscScaling) return 0;
  const max = (ctx.caps.maxRatio * BigInt(ctx.caps.tscKhz)) >> BigInt(ctx.caps.fracBits);
  return Number(max < 0x7fff_ffffn ? max : 0x7fff_ffffn);
}

/** set_tsc_khz(): 0 on success, −1 when the rate cannot be provided */
function setTscKhz(ctx: X86Ctx, vcpu: X86Vcpu, userTscKhz: number, scale: boolean): number {
  if (!scale) {
    kvmVcpuWriteTscMultiplier(ctx, vcpu, defaultRatio(ctx));
    return 0;
  }
  if (!ctx.caps.tscScaling) {
    // Without scaling hardware a faster guest is caught up in software; a slower one is refused.
    if (userTscKhz > ctx.caps.tscKhz) {
      vcpu.tscCatchup = true;
      vcpu.tscAlwaysCatchup = true;
      return 0;
    }
    return -1;
  }
  const ratio = tscScalingRatio(BigInt(userTscKhz), BigInt(ctx.caps.tscKhz), ctx.caps.fracBits);
  if (ratio === 0n || ratio >= ctx.caps.maxRatio) return -1;
  kvmVcpuWriteTscMultiplier(ctx, vcpu, ratio);
  return 0;
}

/** kvm_set_tsc_khz(): records virtual_tsc_khz, then picks default ratio, scaling or catch-up */
export function kvmSetTscKhz(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, userTscKhz: number): number {
  if (userTscKhz === 0) {
    kvmVcpuWriteTscMultiplier(ctx, vcpu, defaultRatio(ctx));
    return -1;
  }
  // proposal: sample the guest TSC before the ratio changes, to re-synchronize to it afterwards
  const tscBefore = ctx.sw.resyncTscOnSetKhz && vcpu.virtualTscKhz ? kvmReadL1Tsc(ctx, vcpu, ctx.hw.tsc) : null;
  const scale = getTimeScale(BigInt(userTscKhz) * 1000n, NSEC_PER_SEC);
  vcpu.virtualTscShift = scale.shift;
  vcpu.virtualTscMult = scale.mul;
  vcpu.virtualTscKhz = userTscKhz;
  const { lo, hi } = tscToleranceWindow(BigInt(ctx.caps.tscKhz));
  const useScaling = BigInt(userTscKhz) < lo || BigInt(userTscKhz) > hi;
  const r = setTscKhz(ctx, vcpu, userTscKhz, useScaling);
  if (r !== 0) return r;
  if (tscBefore !== null) kvmSynchronizeTsc(ctx, vm, vcpu, tscBefore);
  return 0;
}
