// VM and vCPU lifetime on arm64: kvm_arch_init_vm(), kvm_vm_ioctl_create_vcpu() with
// kvm_arch_vcpu_create(), and KVM_RUN entry and exit (arch/arm64/kvm/arm.c, virt/kvm/kvm_main.c).
import { arm64CounterModel, findArm64Vcpu, type Arm64Ctx, type Arm64Vcpu, type Arm64Vm } from './state.js';
import { kvmTimerVcpuInit } from './timer.js';

/** arch/arm64/include/asm/kvm_host.h: KVM_MAX_VCPUS (the GICv3 limit; max_vcpus without a GIC); KVM_MAX_VCPU_IDS defaults to it */
export const KVM_MAX_VCPUS = 512;
export const KVM_MAX_VCPU_IDS = KVM_MAX_VCPUS;

/** arch/arm64/kvm/arm.c: kvm_arch_init_vm(): no offsets yet, the VM counter-offset flag clear */
export function kvmArchInitVm(ctx: Arm64Ctx): Arm64Vm {
  return {
    arch: 'arm64',
    voffset: 0n,
    poffset: 0n,
    counterOffsetUsed: false,
    // v8: the VMM's KVM_ENABLE_CAP(KVM_CAP_ARM_VTIMER_OFFSET) is taken as done right after
    // KVM_CREATE_VM (KVM_ENABLE_CAP is not emulated); the field keeps the opt-in explicit.
    timerOffsetEnabled: arm64CounterModel(ctx.sw) === 'v8',
    vcpus: [],
  };
}

function newVcpu(id: number): Arm64Vcpu {
  return { id, running: false, cntvCtl: 0n, cntvCval: 0n, cntpCtl: 0n, cntpCval: 0n, physOffset: 0n, trappedPhysReads: 0 };
}

/**
 * virt/kvm/kvm_main.c: kvm_vm_ioctl_create_vcpu() with arm.c's kvm_arch_vcpu_precreate() and
 * kvm_arch_vcpu_create(). The vCPU counts as KVM_ARM_VCPU_INIT'ed (not emulated; its reset leaves
 * the offsets alone).
 */
export function kvmVmIoctlCreateVcpu(ctx: Arm64Ctx, vm: Arm64Vm, id: number): 0 | 'EINVAL' | 'EEXIST' {
  if (id >= KVM_MAX_VCPU_IDS) return 'EINVAL';
  if (vm.vcpus.length >= KVM_MAX_VCPUS) return 'EINVAL'; // created_vcpus >= max_vcpus
  const vcpu = newVcpu(id);
  // kvm_arch_vcpu_create() → kvm_timer_vcpu_init() runs before the generic code looks for a
  // duplicate id, so a refused duplicate still restarts the VM's counters.
  kvmTimerVcpuInit(ctx, vm, vcpu);
  if (findArm64Vcpu(vm, id)) return 'EEXIST';
  vm.vcpus.push(vcpu);
  return 0;
}

/** arch/arm64/kvm/arm.c: kvm_arch_vcpu_ioctl_run(): entering the guest does not touch the offsets (kvm_timer_vcpu_load only programs them) */
export function kvmArchVcpuIoctlRun(vcpu: Arm64Vcpu): void {
  vcpu.running = true;
}

/** The vCPU leaves KVM_RUN for userspace (the VMM paused it). */
export function kvmVcpuExitToUser(vcpu: Arm64Vcpu): void {
  vcpu.running = false;
}
