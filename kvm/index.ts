// The emulated kernel: pure, deterministic, no I/O. What both architectures share is exported
// here; each architecture's kernel functions, under their kernel names, as the namespaces x86 and
// arm64 (x86.kvmArchInitVm and arm64.kvmArchInitVm are both kvm_arch_init_vm()).
export * from './arith.js';
export * from './u64.js';
export * from './uapi.js';
export * from './profiles.js';
export * from './host.js';
export * from './errors.js';
export * from './ioctl.js';
export * as x86 from './x86/index.js';
export * as arm64 from './arm64/index.js';
