// The x86 ioctl surface: each UAPI ioctl on the VM or a vCPU fd, its argument as the UAPI struct
// (snake_case fields), and its result as userspace sees it (ret, errno, out).
import { z } from 'zod';
import { argParser, namedNumber, parseArg, plainNamed, plainU64, plainUint, u64Schema, uintSchema } from '../args.js';
import { KvmUsageError } from '../errors.js';
import { fail, fromKernel, ok, routeIoctl, type ArchIoctls, type IoctlRequest, type IoctlResult, parseDeviceAttr } from '../ioctl.js';
import { u64 } from '../u64.js';
import { ATTR_GROUPS, ATTRS, CAPS, MSRS, type IoctlName } from '../uapi.js';
import { getKvmclock, kvmGetClockGuest, kvmSetClockGuest, kvmSetGuestPaused, kvmVmIoctlSetClock } from './clock.js';
import { kvmGetMsrCommon, kvmSetMsrCommon } from './msr.js';
import type { X86Ctx, X86Vcpu, X86Vm } from './state.js';
import { __kvmSynchronizeTsc, kvmScaleTsc, kvmSetTscKhz, maxGuestTscKhz } from './tsc.js';
import { kickRunningVcpus, kvmArchVcpuIoctlRun, kvmVmIoctlCreateVcpu } from './vm.js';
import { isPlainObject } from '../../lib/plain-object.js';

// Schemas are built once: constructing one costs more than parsing with it.
const msrIndex = namedNumber(MSRS, 'MSR');
export const khzSchema = uintSchema(32);
export const clockDataSchema = z.object({
  clock: u64Schema.default(0n),
  flags: uintSchema(32).default(0),
  realtime: u64Schema.default(0n),
  host_tsc: u64Schema.default(0n),
});
export const parseClockData = argParser(clockDataSchema, (v) => {
  if (!isPlainObject(v)) return undefined;
  const clock = v.clock === undefined ? 0n : plainU64(v.clock);
  const flags = v.flags === undefined ? 0 : plainUint(v.flags, 0xffff_ffff);
  const realtime = v.realtime === undefined ? 0n : plainU64(v.realtime);
  const host_tsc = v.host_tsc === undefined ? 0n : plainU64(v.host_tsc);
  if (clock === undefined || flags === undefined || realtime === undefined || host_tsc === undefined) return undefined;
  return { clock, flags, realtime, host_tsc };
});
export const parseKhz = argParser(khzSchema, (v) => plainUint(v, 0xffff_ffff));
/**
 * arch/x86/kvm/x86.c: MAX_IO_MSRS. msr_io() refuses KVM_GET_MSRS / KVM_SET_MSRS with nmsrs >= it
 * (E2BIG) before it copies a single entry, so none is read or applied. (The model reads the JSON
 * argument first: a malformed one is the caller's mistake, thrown and never recorded.)
 */
export const MAX_IO_MSRS = 256;
const setMsrsSchema = z.object({ entries: z.array(z.object({ index: msrIndex, data: u64Schema })) });
export const getMsrsSchema = z.object({ indices: z.array(msrIndex) });
export const parseGetMsrs = argParser(getMsrsSchema, (v) => {
  if (!isPlainObject(v) || !Array.isArray(v.indices)) return undefined;
  const indices: number[] = [];
  for (const x of v.indices as unknown[]) {
    const i = plainNamed(MSRS, x);
    if (i === undefined) return undefined;
    indices.push(i);
  }
  return { indices };
});
const pvtiSchema = z.object({
  version: uintSchema(32).default(0),
  pad0: uintSchema(32).default(0),
  tsc_timestamp: u64Schema,
  system_time: u64Schema,
  tsc_to_system_mul: z.union([
    uintSchema(32),
    z
      .string()
      .regex(/^[0-9]+$/)
      .transform(Number)
      .pipe(uintSchema(32)),
  ]),
  tsc_shift: z.number().int().min(-128).max(127),
  flags: uintSchema(8).default(0),
  pad: z.tuple([uintSchema(8), uintSchema(8)]).default([0, 0]),
});

/** arch/x86/kvm/x86.c: kvm_vm_ioctl_check_extension(): KVM_CHECK_EXTENSION on x86 */
export function kvmVmIoctlCheckExtension(ctx: X86Ctx, cap: number): number {
  switch (cap) {
    case CAPS.KVM_CAP_ADJUST_CLOCK:
      return ctx.sw.clockRealtime ? 0xe : 2; // KVM_CLOCK_VALID_FLAGS, or TSC_STABLE before 5.16
    case CAPS.KVM_CAP_TSC_CONTROL:
      return ctx.caps.tscScaling ? 1 : 0;
    case CAPS.KVM_CAP_VM_TSC_CONTROL:
      return ctx.sw.vmTscControl && ctx.caps.tscScaling ? 1 : 0;
    case CAPS.KVM_CAP_GET_TSC_KHZ:
    case CAPS.KVM_CAP_TSC_DEADLINE_TIMER:
    case CAPS.KVM_CAP_KVMCLOCK_CTRL:
      return 1;
    case CAPS.KVM_CAP_VCPU_ATTRIBUTES:
      return ctx.sw.vcpuTscOffsetAttr ? 1 : 0;
    default:
      return 0;
  }
}

/** kvm_vcpu_ioctl_device_attr() for group KVM_VCPU_TSC_CTRL */
function kvmVcpuIoctlDeviceAttr(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, ioctl: IoctlName, arg: unknown): IoctlResult {
  // Before 5.16 x86 vCPUs had no attribute ioctls: kvm_arch_vcpu_ioctl()'s default case.
  if (!ctx.sw.vcpuTscOffsetAttr) return fail('EINVAL');
  const a = parseDeviceAttr(arg, 'arg');
  if (a.group !== ATTR_GROUPS.KVM_VCPU_TSC_CTRL) return fail('ENXIO');
  if (a.attr === ATTRS.KVM_VCPU_TSC_OFFSET) {
    if (ioctl === 'KVM_HAS_DEVICE_ATTR') return ok();
    if (ioctl === 'KVM_GET_DEVICE_ATTR') return ok(0, { value: vcpu.l1TscOffset });
    if (a.value === undefined) throw new KvmUsageError('invalid_argument', 'arg.value', 'KVM_SET_DEVICE_ATTR needs the value to write');
    kvmArchTscSetOffset(ctx, vm, vcpu, a.value);
    return ok();
  }
  if (a.attr === ATTRS.KVM_VCPU_TSC_SCALE && ctx.sw.vcpuTscScaleAttr) {
    // proposal: read-only, and only with scaling hardware
    if (!ctx.caps.tscScaling) return fail('ENXIO');
    if (ioctl === 'KVM_HAS_DEVICE_ATTR') return ok();
    if (ioctl === 'KVM_GET_DEVICE_ATTR') return ok(0, { tsc_ratio: vcpu.l1TscScalingRatio, tsc_frac_bits: BigInt(ctx.caps.fracBits) });
    return fail('EINVAL');
  }
  return fail('ENXIO');
}

/** kvm_arch_tsc_set_attr(KVM_VCPU_TSC_OFFSET): matched only on the same kHz and the same offset */
export function kvmArchTscSetOffset(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, offset: bigint): void {
  const matched = vcpu.virtualTscKhz !== 0 && vm.lastTscKhz === vcpu.virtualTscKhz && vm.lastTscOffset === offset;
  const tsc = u64(kvmScaleTsc(ctx, ctx.hw.tsc, vcpu.l1TscScalingRatio) + offset);
  __kvmSynchronizeTsc(ctx, vm, vcpu, offset, tsc, ctx.hw.rawNs, matched, true);
}

/** arch/x86/kvm/x86.c: kvm_arch_vm_ioctl() */
function vmIoctl(ctx: X86Ctx, vm: X86Vm, name: IoctlName, arg: unknown): IoctlResult {
  switch (name) {
    case 'KVM_GET_CLOCK': {
      const d = getKvmclock(ctx, vm);
      return ok(0, { clock: d.clock, flags: d.flags, realtime: d.realtime, host_tsc: d.hostTsc });
    }
    case 'KVM_SET_CLOCK': {
      const d = parseClockData(arg ?? {}, 'arg');
      return fromKernel(kvmVmIoctlSetClock(ctx, vm, { clock: d.clock, flags: d.flags, realtime: d.realtime, hostTsc: d.host_tsc }));
    }
    case 'KVM_SET_TSC_KHZ': {
      if (!ctx.sw.vmTscControl) return fail('ENOTTY');
      let khz = parseKhz(arg, 'arg');
      // before 5.8 the maximum was checked with or without scaling hardware, and is 0 without it: every rate refused
      if ((ctx.caps.tscScaling || !ctx.sw.tscKhzWithoutScaling) && khz >= maxGuestTscKhz(ctx)) return fail('EINVAL');
      if (khz === 0) khz = ctx.caps.tscKhz;
      if (vm.createdVcpus) return fail('EINVAL');
      vm.defaultTscKhz = khz;
      return ok();
    }
    case 'KVM_GET_TSC_KHZ':
      return ctx.sw.vmTscControl ? ok(vm.defaultTscKhz) : fail('ENOTTY');
    default:
      // kvm_arch_vm_ioctl()'s default: a vCPU ioctl on the VM fd
      return fail('ENOTTY');
  }
}

/** arch/x86/kvm/x86.c: kvm_arch_vcpu_ioctl(), and KVM_RUN (kvm_arch_vcpu_ioctl_run()) */
function vcpuIoctl(ctx: X86Ctx, vm: X86Vm, vcpu: X86Vcpu, name: IoctlName, arg: unknown): IoctlResult {
  switch (name) {
    case 'KVM_RUN':
      kvmArchVcpuIoctlRun(ctx, vm, vcpu);
      return ok();
    case 'KVM_GET_TSC_KHZ':
      return ok(vcpu.virtualTscKhz);
    case 'KVM_SET_TSC_KHZ': {
      let khz = parseKhz(arg, 'arg');
      // the frequency of a protected TSC is VM-wide (the VM ioctl, before any vCPU)
      if (vcpu.guestTscProtected) return fail('EINVAL');
      // before 5.8 the maximum was checked with or without scaling hardware, and is 0 without it: every rate refused
      if ((ctx.caps.tscScaling || !ctx.sw.tscKhzWithoutScaling) && khz >= maxGuestTscKhz(ctx)) return fail('EINVAL');
      if (khz === 0) khz = ctx.caps.tscKhz;
      return kvmSetTscKhz(ctx, vm, vcpu, khz) === 0 ? ok() : fail('EINVAL');
    }
    case 'KVM_HAS_DEVICE_ATTR':
    case 'KVM_GET_DEVICE_ATTR':
    case 'KVM_SET_DEVICE_ATTR':
      return kvmVcpuIoctlDeviceAttr(ctx, vm, vcpu, name, arg);
    case 'KVM_GET_MSRS': {
      const { indices } = parseGetMsrs(arg, 'arg');
      // msr_io(): E2BIG before any entry is copied; __msr_io(): stops at the first MSR it cannot read, ret = the number processed
      if (indices.length >= MAX_IO_MSRS) return fail('E2BIG');
      const entries: { index: number; data: bigint }[] = [];
      for (const index of indices) {
        const data = kvmGetMsrCommon(ctx, vm, vcpu, index);
        if (data === null) break;
        entries.push({ index, data });
      }
      return ok(entries.length, { entries });
    }
    case 'KVM_SET_MSRS': {
      const { entries } = parseArg(setMsrsSchema, arg, 'arg');
      // msr_io(): E2BIG before any entry is copied (none is applied); __msr_io(): stops at the first refused
      if (entries.length >= MAX_IO_MSRS) return fail('E2BIG');
      let n = 0;
      for (const e of entries) {
        if (kvmSetMsrCommon(ctx, vm, vcpu, e.index, e.data, true) !== 0) break;
        n++;
      }
      return ok(n);
    }
    case 'KVM_KVMCLOCK_CTRL':
      return fromKernel(kvmSetGuestPaused(vcpu));
    case 'KVM_GET_CLOCK_GUEST': {
      if (!ctx.sw.clockGuestIoctls) return fail('EINVAL');
      const p = kvmGetClockGuest(ctx, vm, vcpu);
      if (p === 'EINVAL') return fail(p);
      return ok(0, {
        version: p.version,
        tsc_timestamp: p.tscTimestamp,
        system_time: p.systemTime,
        tsc_to_system_mul: Number(p.mul),
        tsc_shift: p.shift,
        flags: p.flags,
      });
    }
    case 'KVM_SET_CLOCK_GUEST': {
      if (!ctx.sw.clockGuestIoctls) return fail('EINVAL');
      const p = parseArg(pvtiSchema, arg, 'arg');
      return fromKernel(
        kvmSetClockGuest(ctx, vm, vcpu, {
          version: p.version,
          pad0: p.pad0,
          tscTimestamp: p.tsc_timestamp,
          systemTime: p.system_time,
          mul: BigInt(p.tsc_to_system_mul),
          shift: p.tsc_shift,
          flags: p.flags,
          pad: p.pad,
        }),
      );
    }
    default:
      // kvm_arch_vcpu_ioctl()'s default: a VM ioctl on a vCPU fd, or an arm64 ioctl
      return fail('EINVAL');
  }
}

/** What kvm_main.c's generic ioctl code calls into on this architecture */
const X86_IOCTLS: ArchIoctls<X86Ctx, X86Vm, X86Vcpu> = { kvmVmIoctlCheckExtension, kvmVmIoctlCreateVcpu, vmIoctl, vcpuIoctl };

/** Issue one ioctl. Throws KvmUsageError for a malformed request; kernel refusals are results. */
export function x86Ioctl(ctx: X86Ctx, vm: X86Vm, req: IoctlRequest): IoctlResult {
  const r = routeIoctl(X86_IOCTLS, ctx, vm, req);
  kickRunningVcpus(ctx, vm);
  return r;
}
