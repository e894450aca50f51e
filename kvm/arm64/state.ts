// The arm64 VM and vCPU counter state: the fields of struct kvm_arch (timer_data, flags) and of
// each vCPU's arch timer contexts that take part in timekeeping. Plain data (bigint for u64), so it
// can be drafted by immer, snapshotted and compared.
import type { HostSample } from '../host.js';
import type { Arm64Switches } from '../profiles.js';
import type { TraceEntry } from '../ioctl.js';

export interface Arm64Vcpu {
  /** vcpu_id */
  id: number;
  /** inside KVM_RUN: holds vcpu->mutex, so kvm_trylock_all_vcpus() fails (EBUSY) while it is set */
  running: boolean;
  /** vtimer cnt_ctl and cnt_cval as last written (CTL without ISTATUS, which the kernel masks off) */
  cntvCtl: bigint;
  cntvCval: bigint;
  /** ptimer cnt_ctl and cnt_cval as last written */
  cntpCtl: bigint;
  cntpCval: bigint;
  /**
   * 2021 proposal (v8) only: this vCPU's ptimer host_offset (KVM_ARM_VCPU_TIMER_PHYS_OFFSET).
   * Per vCPU, not VM-wide, because that is how the series stored it: a write is broadcast to the
   * vCPUs that exist, but kvm_timer_vcpu_init() gives a vCPU created afterwards 0. Always 0 on
   * other profiles.
   */
  physOffset: bigint;
  /** guest CNTPCT_EL0 reads that trapped to KVM to be emulated (no CNTPOFF, non-zero physical offset) */
  trappedPhysReads: number;
}

export interface Arm64Vm {
  arch: 'arm64';
  /**
   * The virtual offset every vCPU's vtimer uses. 6.4+: kvm->arch.timer_data.voffset (one value,
   * which every vtimer context points at). Before 6.4: each vCPU's CNTVOFF_EL2, which
   * update_vtimer_cntvoff() always writes on every vCPU at once, so it is one value too. Under the
   * v8 proposal it is the guest-visible CNTVOFF_EL2 (KVM_REG_ARM_TIMER_OFFSET, relative to the
   * guest's physical counter), which the series also only ever wrote on all vCPUs at once; the
   * hardware offset is voffset + the vCPU's physOffset.
   */
  voffset: bigint;
  /** 6.4+: kvm->arch.timer_data.poffset, what every ptimer points at; 0 before 6.4 (no physical offset existed) */
  poffset: bigint;
  /** 6.4+: KVM_ARCH_FLAG_VM_COUNTER_OFFSET, set by KVM_ARM_SET_COUNTER_OFFSET and never cleared */
  counterOffsetUsed: boolean;
  /** v8 proposal: kvm->arch.vtimer_offset_enabled (KVM_ENABLE_CAP(KVM_CAP_ARM_VTIMER_OFFSET)) */
  timerOffsetEnabled: boolean;
  /** online vCPUs, in creation order */
  vcpus: Arm64Vcpu[];
}

/** What a kernel function may consult besides the VM: host capabilities, the profile and one hardware sample. */
export interface Arm64Ctx {
  caps: {
    /** has_cntpoff(): VHE with FEAT_ECV CNTPOFF_EL2, so the hardware applies the physical offset */
    ecv: boolean;
    /** CNTFRQ_EL0 */
    cntfrqHz: bigint;
  };
  sw: Arm64Switches;
  /** hw.tsc is the host counter CNTPCT_EL0 at this instant (kvm_phys_timer_read()) */
  hw: HostSample;
  /** where tracepoints go, when someone listens */
  trace?: TraceEntry[];
}

/**
 * Which kernel's counter code runs. The v8 series applies to a 5.15 base, so with both switches
 * on the 6.4 VM-wide offsets win and the v8 additions are absent.
 */
export type Arm64CounterModel = 'pre-6.4' | 'v8' | '6.4+';

export function arm64CounterModel(sw: Arm64Switches): Arm64CounterModel {
  if (sw.vmCounterOffset) return '6.4+';
  return sw.timerOffsetV8 ? 'v8' : 'pre-6.4';
}

export function findArm64Vcpu(vm: Arm64Vm, id: number): Arm64Vcpu | undefined {
  return vm.vcpus.find((v) => v.id === id);
}
