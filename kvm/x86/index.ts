// The emulated x86 kernel: TSC, kvmclock and their ioctls. Functions keep the kernel's names;
// where arm64 has the same one (kvmArchInitVm), kvm/index.ts tells them apart as
// x86.kvmArchInitVm and arm64.kvmArchInitVm.
export * from './state.js';
export { x86Ioctl, kvmVmIoctlCheckExtension, kvmArchTscSetOffset, MAX_IO_MSRS } from './ioctl.js';
export { x86Guest, X86_GUEST_OPS, type X86GuestOp, type GuestRequest, type GuestResult } from './guest.js';
export {
  kvmArchInitVm,
  kvmVmIoctlCreateVcpu,
  kvmArchVcpuIoctlRun,
  kickRunningVcpus,
  kvmVcpuExitToUser,
  catchupTickDue,
  kvmCatchupTick,
  GUEST_TICK_NS,
  nextTimerAt,
  dueTimer,
  runTimer,
  KVM_MAX_VCPUS,
  KVM_MAX_VCPU_IDS,
  type X86TimerName,
} from './vm.js';
export { guestPvclockRead, getKvmclock } from './clock.js';
export { kvmReadL1Tsc } from './tsc.js';
