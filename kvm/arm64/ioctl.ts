// The arm64 ioctl surface: each UAPI ioctl on the VM or a vCPU fd, its argument as the UAPI struct
// (snake_case fields), and its result as userspace sees it (ret, errno, out). arch/arm64/kvm/arm.c
// and guest.c; ioctls this architecture does not have get its defaults: kvm_arch_vm_ioctl() and
// kvm_arch_vcpu_ioctl() both end in `default: return -EINVAL` on arm64 (not -ENOTTY as on x86).
import { z } from 'zod';
import { parseArg, preview, u64Schema } from '../args.js';
import { KvmUsageError } from '../errors.js';
import { fail, fromKernel, ok, routeIoctl, type ArchIoctls, type IoctlRequest, type IoctlResult, parseDeviceAttr } from '../ioctl.js';
import { ARM64_REGS, ATTR_GROUPS, CAPS, nameOf, type Arm64RegName, type IoctlName } from '../uapi.js';
import { arm64CounterModel, type Arm64Ctx, type Arm64Vcpu, type Arm64Vm } from './state.js';
import {
  isTimerReg,
  kvmArmTimerGetAttr,
  kvmArmTimerGetReg,
  kvmArmTimerHasAttr,
  kvmArmTimerSetAttr,
  kvmArmTimerSetReg,
  kvmVmIoctlSetCounterOffset,
  type TimerReg,
} from './timer.js';
import { kvmArchVcpuIoctlRun, kvmVmIoctlCreateVcpu } from './vm.js';

/** KVM_ARM_VM_SMCCC_CTRL / KVM_ARM_VM_SMCCC_FILTER: the only VM device attribute (6.4+) */
const KVM_ARM_VM_SMCCC_CTRL = 0;
const KVM_ARM_VM_SMCCC_FILTER = 0;

const KVM_REG_ARM64 = 0x6000_0000_0000_0000n;
const KVM_REG_SIZE_MASK = 0x00f0_0000_0000_0000n;

/** A ONE_REG id: a UAPI name (ARM64_REGS), or the raw 64-bit id as a bigint or a decimal / 0x hex string. */
export const oneRegIdSchema = z.union([z.string(), z.number(), z.bigint()]).transform((v, ctx) => {
  if (typeof v === 'string' && Object.hasOwn(ARM64_REGS, v.trim())) return ARM64_REGS[v.trim() as Arm64RegName];
  const r = u64Schema.safeParse(v);
  if (r.success) return r.data;
  ctx.addIssue({
    code: 'custom',
    message: `${preview(v)} is not a register (a UAPI name: ${Object.keys(ARM64_REGS).join(', ')}; or a raw 64-bit id as a decimal or 0x hex string)`,
  });
  return z.NEVER;
});
const oneRegSchema = z.object({ id: oneRegIdSchema, value: u64Schema.optional() });
const counterOffsetSchema = z.object({ counter_offset: u64Schema, reserved: u64Schema.default(0n) });

/** arch/arm64/kvm/arm.c: kvm_vm_ioctl_check_extension(): KVM_CHECK_EXTENSION on arm64 (x86-only caps are 0) */
export function kvmVmIoctlCheckExtension(ctx: Arm64Ctx, cap: number): number {
  const model = arm64CounterModel(ctx.sw);
  switch (cap) {
    case CAPS.KVM_CAP_ONE_REG:
    case CAPS.KVM_CAP_VCPU_ATTRIBUTES: // in arm64's r = 1 list since well before 5.15 (PMU, timer IRQ attributes)
      return 1;
    case CAPS.KVM_CAP_COUNTER_OFFSET:
      return model === '6.4+' ? 1 : 0;
    case CAPS.KVM_CAP_ARM_VTIMER_OFFSET:
      // v8 4/8; upstream 206 became KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM, which arm64 does not have
      return model === 'v8' ? 1 : 0;
    default:
      return 0;
  }
}

/**
 * arch/arm64/kvm/guest.c: kvm_arm_get_reg() / kvm_arm_set_reg(): route a ONE_REG id. Timer ids (is_timer_reg) go to the
 * timer code; the other timer-related UAPI ids this kernel does not treat as timer registers
 * (PTIMER_* before 6.4, TIMER_OFFSET without the v8 opt-in) fall through to the sys_reg table,
 * which has no userspace accessor for them: -ENOENT (set_invariant_sys_reg / id_to_sys_reg_desc).
 */
function routeOneReg(ctx: Arm64Ctx, vm: Arm64Vm, id: bigint): TimerReg | 'EINVAL' | 'ENOENT' {
  // "We currently use nothing arch-specific in upper 32 bits"
  if ((id & ~KVM_REG_SIZE_MASK) >> 32n !== KVM_REG_ARM64 >> 32n) return 'EINVAL';
  const reg = isTimerReg(ctx, vm, id);
  if (reg) return reg;
  if (nameOf(ARM64_REGS, id) !== undefined) return 'ENOENT';
  throw new KvmUsageError(
    'invalid_argument',
    'arg.id',
    `register 0x${id.toString(16)} is not emulated (only the arch timer registers are: ${Object.keys(ARM64_REGS).join(', ')})`,
  );
}

function oneRegIoctl(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu, name: 'KVM_GET_ONE_REG' | 'KVM_SET_ONE_REG', arg: unknown): IoctlResult {
  const a = parseArg(oneRegSchema, arg, 'arg');
  if (name === 'KVM_SET_ONE_REG' && a.value === undefined) {
    throw new KvmUsageError('invalid_argument', 'arg.value', 'KVM_SET_ONE_REG needs the value to write');
  }
  const reg = routeOneReg(ctx, vm, a.id);
  if (typeof reg === 'string') return fail(reg);
  if (name === 'KVM_GET_ONE_REG') return ok(0, { value: kvmArmTimerGetReg(ctx, vm, vcpu, reg) });
  kvmArmTimerSetReg(ctx, vm, vcpu, reg, a.value!);
  return ok();
}

/** arch/arm64/kvm/guest.c: kvm_arm_vcpu_arch_{has,get,set}_attr(): only the timer group is emulated */
function vcpuDeviceAttr(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu, name: IoctlName, arg: unknown): IoctlResult {
  const a = parseDeviceAttr(arg, 'arg');
  if (name === 'KVM_SET_DEVICE_ATTR' && a.value === undefined) {
    throw new KvmUsageError('invalid_argument', 'arg.value', 'KVM_SET_DEVICE_ATTR needs the value to write');
  }
  // Other groups (PMU_V3_CTRL, PVTIME_CTRL) are not emulated: ENXIO, as for a vCPU without those features.
  if (a.group !== ATTR_GROUPS.KVM_ARM_VCPU_TIMER_CTRL) return fail('ENXIO');
  if (name === 'KVM_HAS_DEVICE_ATTR') return fromKernel(kvmArmTimerHasAttr(ctx, a.attr));
  if (name === 'KVM_GET_DEVICE_ATTR') {
    const v = kvmArmTimerGetAttr(ctx, vcpu, a.attr);
    return typeof v === 'string' ? fail(v) : ok(0, { value: v });
  }
  return fromKernel(kvmArmTimerSetAttr(ctx, vm, a.attr, a.value!));
}

/** arch/arm64/kvm/arm.c: kvm_vm_has_attr() / kvm_vm_set_attr() (6.4+): VM-fd KVM_{HAS,SET}_DEVICE_ATTR, the SMCCC filter only */
function vmDeviceAttr(ctx: Arm64Ctx, name: IoctlName, arg: unknown): IoctlResult {
  const a = parseDeviceAttr(arg, 'arg');
  if (arm64CounterModel(ctx.sw) !== '6.4+' || name === 'KVM_GET_DEVICE_ATTR') return fail('EINVAL');
  if (a.group !== KVM_ARM_VM_SMCCC_CTRL) return fail('ENXIO');
  if (name === 'KVM_HAS_DEVICE_ATTR') return a.attr === KVM_ARM_VM_SMCCC_FILTER ? ok() : fail('ENXIO');
  throw new KvmUsageError('invalid_argument', 'arg.group', 'the SMCCC filter (KVM_ARM_VM_SMCCC_CTRL) is not emulated');
}

/** arch/arm64/kvm/arm.c: kvm_arch_vm_ioctl() */
function vmIoctl(ctx: Arm64Ctx, vm: Arm64Vm, name: IoctlName, arg: unknown): IoctlResult {
  switch (name) {
    case 'KVM_ARM_SET_COUNTER_OFFSET': {
      const a = parseArg(counterOffsetSchema, arg, 'arg');
      // Before 6.4 the request number is unknown to kvm_arch_vm_ioctl(): its default, -EINVAL.
      if (arm64CounterModel(ctx.sw) !== '6.4+') return fail('EINVAL');
      return fromKernel(kvmVmIoctlSetCounterOffset(vm, { counterOffset: a.counter_offset, reserved: a.reserved }));
    }
    case 'KVM_HAS_DEVICE_ATTR':
    case 'KVM_SET_DEVICE_ATTR':
    case 'KVM_GET_DEVICE_ATTR':
      return vmDeviceAttr(ctx, name, arg);
    default:
      // kvm_arch_vm_ioctl()'s default: x86 VM ioctls (KVM_[GS]ET_CLOCK, KVM_[GS]ET_TSC_KHZ) and vCPU ioctls on the VM fd
      return fail('EINVAL');
  }
}

/** arch/arm64/kvm/arm.c: kvm_arch_vcpu_ioctl(), with KVM_RUN from kvm_vcpu_ioctl() */
function vcpuIoctl(ctx: Arm64Ctx, vm: Arm64Vm, vcpu: Arm64Vcpu, name: IoctlName, arg: unknown): IoctlResult {
  switch (name) {
    case 'KVM_RUN':
      kvmArchVcpuIoctlRun(vcpu);
      return ok();
    case 'KVM_GET_ONE_REG':
    case 'KVM_SET_ONE_REG':
      return oneRegIoctl(ctx, vm, vcpu, name, arg);
    case 'KVM_HAS_DEVICE_ATTR':
    case 'KVM_GET_DEVICE_ATTR':
    case 'KVM_SET_DEVICE_ATTR':
      return vcpuDeviceAttr(ctx, vm, vcpu, name, arg);
    default:
      // kvm_arch_vcpu_ioctl()'s default: x86 vCPU ioctls, VM ioctls on a vCPU fd, and
      // KVM_CHECK_EXTENSION, which kvm_vcpu_ioctl() does not handle
      return fail('EINVAL');
  }
}

/** What kvm_main.c's generic ioctl code calls into on this architecture */
const ARM64_IOCTLS: ArchIoctls<Arm64Ctx, Arm64Vm, Arm64Vcpu> = { kvmVmIoctlCheckExtension, kvmVmIoctlCreateVcpu, vmIoctl, vcpuIoctl };

/** Issue one ioctl. Throws KvmUsageError for a malformed request; kernel refusals are results. */
export function arm64Ioctl(ctx: Arm64Ctx, vm: Arm64Vm, req: IoctlRequest): IoctlResult {
  const before = ctx.trace ? offsetsOf(vm) : '';
  const r = routeIoctl(ARM64_IOCTLS, ctx, vm, req);
  if (ctx.trace && offsetsOf(vm) !== before) traceOffsets(ctx, vm);
  return r;
}

function offsetsOf(vm: Arm64Vm): string {
  return `${vm.voffset}/${vm.poffset}/${vm.counterOffsetUsed}/${vm.vcpus.map((v) => v.physOffset).join(',')}`;
}

/**
 * The kernel has no tracepoint for counter-offset writes; clockledger's own records the VM's
 * offsets after every change, so a replay sees an offset move even when the ioctl's result does not.
 */
export function traceOffsets(ctx: Arm64Ctx, vm: Arm64Vm): void {
  ctx.trace?.push({
    tp: 'clockledger_arm_timer_offsets',
    voffset: vm.voffset,
    poffset: vm.poffset,
    counter_offset_used: vm.counterOffsetUsed,
    phys_offsets: vm.vcpus.map((v) => v.physOffset).join(','),
  });
}
