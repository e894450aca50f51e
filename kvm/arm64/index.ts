// The emulated arm64 kernel: guest counters, their offsets and the ioctls that move them.
// Functions keep the kernel's names; where x86 has the same one (kvmArchInitVm), kvm/index.ts
// tells them apart as arm64.kvmArchInitVm and x86.kvmArchInitVm.
export * from './state.js';
export * from './timer.js';
export { kvmArchInitVm, kvmVmIoctlCreateVcpu, kvmArchVcpuIoctlRun, kvmVcpuExitToUser, KVM_MAX_VCPUS, KVM_MAX_VCPU_IDS } from './vm.js';
export { arm64Ioctl, kvmVmIoctlCheckExtension, oneRegIdSchema, traceOffsets } from './ioctl.js';
export { arm64Guest, ARM64_GUEST_OPS, type Arm64GuestOp, type Arm64GuestRequest, type Arm64GuestResult } from './guest.js';
