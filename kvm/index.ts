// The emulated kernel: pure, deterministic, no I/O.
export * from './arith.js';
export * from './u64.js';
export * from './uapi.js';
export * from './profiles.js';
export * from './host.js';
export * from './errors.js';
export * from './x86/state.js';
export { x86Ioctl, parseIoctlName, kvmVmIoctlCheckExtension, type IoctlRequest } from './x86/ioctl.js';
export { x86Guest, X86_GUEST_OPS, type GuestRequest, type GuestResult } from './x86/guest.js';
export { kvmArchInitVm, kickRunningVcpus, kvmVcpuExitToUser, nextTimerAt, dueTimer, runTimer, type X86TimerName } from './x86/vm.js';
export { guestPvclockRead, getKvmclock } from './x86/clock.js';
export { kvmReadL1Tsc } from './x86/tsc.js';
export * from './arm64/index.js';
