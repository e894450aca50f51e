// The emulated arm64 kernel: guest counters, their offsets and the ioctls that move them.
export * from './state.js';
export * from './timer.js';
export {
  arm64Ioctl,
  arm64InitVm,
  arm64VcpuExitToUser,
  arm64CheckExtension,
  arm64VcpuOf,
  arm64RegIdSchema,
  kvmVmIoctlCreateVcpu as arm64VmIoctlCreateVcpu,
  ARM64_KVM_MAX_VCPUS,
  ARM64_KVM_MAX_VCPU_IDS,
} from './ioctl.js';
export { arm64Guest, ARM64_GUEST_OPS, type Arm64GuestOp, type Arm64GuestRequest, type Arm64GuestResult } from './guest.js';
