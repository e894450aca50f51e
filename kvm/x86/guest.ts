// What the guest does and sees on a running vCPU: RDTSC, its kvmclock read through the pvclock
// page (__pvclock_read_cycles), RDMSR/WRMSR of the clock MSRs (intercepted, handled by KVM).
import { namedNumber, parseArg, u64Schema } from '../args.js';
import { KvmUsageError } from '../errors.js';
import { requireGuestOp } from '../guest-op.js';
import { MSRS, PVCLOCK_GUEST_STOPPED } from '../uapi.js';
import { u64 } from '../u64.js';
import { guestPvclockRead } from './clock.js';
import { kvmGetMsrCommon, kvmSetMsrCommon } from './msr.js';
import type { X86Ctx, X86Vm } from './state.js';
import { kvmReadL1Tsc } from './tsc.js';
import { kickRunningVcpus } from './vm.js';

export const X86_GUEST_OPS = ['rdtsc', 'kvmclock', 'rdmsr', 'wrmsr', 'wallclock', 'checkPaused'] as const;
export type X86GuestOp = (typeof X86_GUEST_OPS)[number];

export interface GuestRequest {
  vcpu: number;
  op: string;
  msr?: unknown;
  value?: unknown;
}

/** What the guest observed. `fault` is an exception the instruction raised (#GP). */
export interface GuestResult {
  value?: bigint;
  /** kvmclock: the pvclock flags the guest saw, and the TSC it read them with */
  flags?: number;
  tsc?: bigint;
  fault?: 'GP';
}

const msrSchema = namedNumber(MSRS, 'MSR');

/** One guest instruction (or clock read) on a running vCPU. */
export function x86Guest(ctx: X86Ctx, vm: X86Vm, req: GuestRequest): GuestResult {
  const { vcpu, op } = requireGuestOp(vm.vcpus, req.vcpu, req.op, 'x86', X86_GUEST_OPS);
  switch (op) {
    case 'rdtsc':
      return { value: kvmReadL1Tsc(ctx, vcpu, ctx.hw.tsc) };
    case 'kvmclock': {
      const p = vcpu.pvti;
      if (!p)
        throw new KvmUsageError(
          'invalid_state',
          'op',
          `vCPU ${vcpu.id} has no kvmclock page: the guest must enable it with a wrmsr of MSR_KVM_SYSTEM_TIME_NEW`,
        );
      const tsc = kvmReadL1Tsc(ctx, vcpu, ctx.hw.tsc);
      return { value: guestPvclockRead(p, tsc), flags: p.flags, tsc };
    }
    case 'wallclock': {
      // The guest's CLOCK_REALTIME (no NTP, no settimeofday): the wall clock it read at boot, as
      // pvclock_read_wallclock() added kvmclock then, advanced by kvmclock since: that boot wall
      // clock plus kvmclock now. Not the struct KVM last wrote: a Linux guest reads it only at
      // boot and resume from suspend (kvm_get_wallclock()), and KVM rewrites it at every write of
      // the MSR, a VMM's restore included.
      const p = vcpu.pvti;
      if (!p || vm.guestWallClockNs === null) {
        throw new KvmUsageError(
          'invalid_state',
          'op',
          `vCPU ${vcpu.id}: the guest has not enabled kvmclock and read the KVM wall clock (a wrmsr of MSR_KVM_WALL_CLOCK_NEW)`,
        );
      }
      return { value: u64(vm.guestWallClockNs + guestPvclockRead(p, kvmReadL1Tsc(ctx, vcpu, ctx.hw.tsc))) };
    }
    case 'checkPaused': {
      // kvm_check_and_clear_guest_paused(): the guest's soft-lockup watchdog takes (and clears)
      // PVCLOCK_GUEST_STOPPED from its own copy of the page, and touches its watchdogs if it was set
      const p = vcpu.pvti;
      if (!p || !(p.flags & PVCLOCK_GUEST_STOPPED)) return { value: 0n };
      vcpu.pvti = { ...p, flags: p.flags & ~PVCLOCK_GUEST_STOPPED };
      return { value: 1n };
    }
    case 'rdmsr': {
      const v = kvmGetMsrCommon(ctx, vm, vcpu, parseArg(msrSchema, req.msr, 'msr'));
      return v === null ? { fault: 'GP' } : { value: v };
    }
    case 'wrmsr': {
      const index = parseArg(msrSchema, req.msr, 'msr');
      const value = parseArg(u64Schema, req.value, 'value');
      const r = kvmSetMsrCommon(ctx, vm, vcpu, index, value, false);
      // kvm_get_wallclock(): the guest reads the struct KVM just wrote at the address it gave
      if (r === 0 && value !== 0n && (index === MSRS.MSR_KVM_WALL_CLOCK_NEW || index === MSRS.MSR_KVM_WALL_CLOCK)) vm.guestWallClockNs = vm.wallClockNs;
      // The write exited to KVM; requests it raised are served as the vCPU re-enters.
      kickRunningVcpus(ctx, vm);
      return r === 0 ? {} : { fault: 'GP' };
    }
  }
}
