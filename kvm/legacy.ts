// @deprecated The flat names kvm/index.ts exported before the per-architecture namespaces, so
// scripts written against them keep working: unprefixed kernel names meant x86, arm64 ones carried
// an arm64 prefix. New code uses x86.* and arm64.*.
import { requireVcpu } from './errors.js';
import type { Arm64Vcpu, Arm64Vm } from './arm64/state.js';

export * from './x86/state.js';
export { x86Ioctl, kvmVmIoctlCheckExtension } from './x86/ioctl.js';
export { x86Guest, X86_GUEST_OPS, type GuestRequest, type GuestResult } from './x86/guest.js';
export { kvmArchInitVm, kickRunningVcpus, kvmVcpuExitToUser, nextTimerAt, dueTimer, runTimer, type X86TimerName } from './x86/vm.js';
export { guestPvclockRead, getKvmclock } from './x86/clock.js';
export { kvmReadL1Tsc } from './x86/tsc.js';
export * from './arm64/state.js';
export * from './arm64/timer.js';
export {
  arm64Ioctl,
  kvmVmIoctlCheckExtension as arm64CheckExtension,
  oneRegIdSchema as arm64RegIdSchema,
} from './arm64/ioctl.js';
export {
  kvmArchInitVm as arm64InitVm,
  kvmVcpuExitToUser as arm64VcpuExitToUser,
  kvmVmIoctlCreateVcpu as arm64VmIoctlCreateVcpu,
  KVM_MAX_VCPUS as ARM64_KVM_MAX_VCPUS,
  KVM_MAX_VCPU_IDS as ARM64_KVM_MAX_VCPU_IDS,
} from './arm64/vm.js';
export { arm64Guest, ARM64_GUEST_OPS, type Arm64GuestOp, type Arm64GuestRequest, type Arm64GuestResult } from './arm64/guest.js';

/** @deprecated requireVcpu(vm.vcpus, id) */
export function arm64VcpuOf(vm: Arm64Vm, id: number): Arm64Vcpu {
  return requireVcpu(vm.vcpus, id);
}
