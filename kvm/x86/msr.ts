// The timekeeping MSRs of kvm_set_msr_common() / kvm_get_msr_common() (arch/x86/kvm/x86.c, lapic.c).
import { MSRS } from '../uapi.js';
import { s64, u64 } from '../u64.js';
import { kvmWriteSystemTime, kvmWriteWallClock } from './clock.js';
import type { X86Ctx, X86Vcpu, X86Vm } from './state.js';
import { adjustTscOffsetGuest, kvmComputeL1TscOffset, kvmReadL1Tsc, kvmSynchronizeTsc } from './tsc.js';

/**
 * kvm_set_lapic_tscdeadline_msr() → start_sw_tscdeadline(): cancel the timer, then arm it relative
 * to the guest TSC now (a guest in TSC-deadline mode; the adaptive lapic_timer_advance, a few µs
 * early, is not modelled).
 */
function kvmSetLapicTscdeadlineMsr(ctx: X86Ctx, vcpu: X86Vcpu, data: bigint): void {
  vcpu.tscDeadline = data;
  vcpu.tscDeadlineFiresAt = null;
  // start_sw_tscdeadline(): nothing to arm without a deadline or a guest TSC rate
  if (data === 0n || !vcpu.virtualTscKhz) return;
  const guestTsc = kvmReadL1Tsc(ctx, vcpu, ctx.hw.tsc);
  // ns = (tscdeadline − guest_tsc) × 1e6 / virtual_tsc_khz; a deadline already passed expires at once
  const ns = data > guestTsc ? ((data - guestTsc) * 1_000_000n) / BigInt(vcpu.virtualTscKhz) : 0n;
  vcpu.tscDeadlineFiresAt = ctx.hw.t + ns;
}

/** kvm_set_msr_common() for the clock MSRs: 0 on success, 1 when the MSR is not handled (#GP / stop) */
export function kvmSetMsrCommon(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, index: number, data: bigint, hostInitiated: boolean): 0 | 1 {
  switch (index) {
    case MSRS.MSR_IA32_TSC:
      if (hostInitiated) {
        kvmSynchronizeTsc(ctx, vm, vcpu, data);
      } else if (!vcpu.guestTscProtected) {
        // A guest write moves the offset and TSC_ADJUST together, with no generation bookkeeping.
        const adj = u64(kvmComputeL1TscOffset(ctx, vcpu, data) - vcpu.l1TscOffset);
        adjustTscOffsetGuest(ctx, vcpu, adj);
        vcpu.ia32TscAdjustMsr = s64(vcpu.ia32TscAdjustMsr + adj);
      }
      return 0;
    case MSRS.MSR_IA32_TSC_ADJUST:
      if (!hostInitiated) {
        const adj = s64(data - vcpu.ia32TscAdjustMsr);
        adjustTscOffsetGuest(ctx, vcpu, adj);
        // tsc_timestamp must follow before the guest runs again, or its pvclock would jump
        vcpu.requests.clockUpdate = true;
      }
      vcpu.ia32TscAdjustMsr = s64(data);
      return 0;
    case MSRS.MSR_IA32_TSC_DEADLINE:
      kvmSetLapicTscdeadlineMsr(ctx, vcpu, data);
      return 0;
    case MSRS.MSR_KVM_SYSTEM_TIME_NEW:
      kvmWriteSystemTime(vm, vcpu, data, false, hostInitiated);
      return 0;
    case MSRS.MSR_KVM_SYSTEM_TIME:
      kvmWriteSystemTime(vm, vcpu, data, true, hostInitiated);
      return 0;
    case MSRS.MSR_KVM_WALL_CLOCK_NEW:
    case MSRS.MSR_KVM_WALL_CLOCK:
      kvmWriteWallClock(ctx, vm, data);
      return 0;
    default:
      return 1;
  }
}

/** kvm_get_msr_common() for the clock MSRs */
export function kvmGetMsrCommon(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, index: number): bigint | null {
  switch (index) {
    case MSRS.MSR_IA32_TSC:
      // Host and guest both read the L1 view (no nesting is emulated).
      return kvmReadL1Tsc(ctx, vcpu, ctx.hw.tsc);
    case MSRS.MSR_IA32_TSC_ADJUST:
      return u64(vcpu.ia32TscAdjustMsr);
    case MSRS.MSR_IA32_TSC_DEADLINE:
      return vcpu.tscDeadline;
    case MSRS.MSR_KVM_SYSTEM_TIME_NEW:
    case MSRS.MSR_KVM_SYSTEM_TIME:
      return vcpu.systemTimeMsr;
    case MSRS.MSR_KVM_WALL_CLOCK_NEW:
    case MSRS.MSR_KVM_WALL_CLOCK:
      return vm.wallClockGpa;
    default:
      return null;
  }
}
