// The x86 VM and vCPU clock state: the fields of struct kvm_arch and struct kvm_vcpu_arch that
// take part in timekeeping, under their kernel names. Plain data, so it can be drafted by immer,
// snapshotted and compared.
import type { X86HostCaps, HostSample } from '../host.js';
import type { TraceEntry } from '../ioctl.js';
import type { X86Switches } from '../profiles.js';

/** struct pvclock_vcpu_time_info as the guest sees it in its clock page. */
export interface Pvti {
  version: number;
  tscTimestamp: bigint;
  systemTime: bigint;
  /** tsc_to_system_mul */
  mul: bigint;
  /** tsc_shift */
  shift: number;
  flags: number;
}

/** The KVM_REQ_* bits that concern the clock, pending on a vCPU. */
export interface ClockRequests {
  masterclockUpdate: boolean;
  globalClockUpdate: boolean;
  clockUpdate: boolean;
}

export interface X86Vcpu {
  /** vcpu_id */
  id: number;
  /** l1_tsc_offset (u64) */
  l1TscOffset: bigint;
  /** l1_tsc_scaling_ratio */
  l1TscScalingRatio: bigint;
  /** virtual_tsc_khz and the ns→cycles factor derived from it */
  virtualTscKhz: number;
  virtualTscMult: bigint;
  virtualTscShift: number;
  /** tsc_catchup / tsc_always_catchup: a guest faster than a host without scaling hardware */
  tscCatchup: boolean;
  tscAlwaysCatchup: boolean;
  /** this_tsc_generation, this_tsc_nsec, this_tsc_write */
  thisTscGeneration: number;
  thisTscNsec: bigint;
  thisTscWrite: bigint;
  /** last_guest_tsc */
  lastGuestTsc: bigint;
  /** ia32_tsc_adjust_msr (s64) */
  ia32TscAdjustMsr: bigint;
  /** the LAPIC TSC-deadline MSR and the host instant its timer was armed to fire (null: disarmed) */
  tscDeadline: bigint;
  tscDeadlineFiresAt: bigint | null;
  /** hw_tsc_khz (×1000) or, in the proposal, hw_tsc_hz: the frequency the cached pvclock scale is for */
  hwTscHz: bigint;
  pvclockTscMul: bigint;
  pvclockTscShift: number;
  /** vcpu->arch.time: the last MSR_KVM_SYSTEM_TIME(_NEW) value */
  systemTimeMsr: bigint;
  /** pv_time.active */
  pvTimeActive: boolean;
  /** pvclock_set_guest_stopped_request */
  pvclockSetGuestStoppedRequest: boolean;
  /** the guest's pvclock page, null until KVM first writes it */
  pvti: Pvti | null;
  requests: ClockRequests;
  /** vcpu->cpu != -1: the vCPU has been loaded on a physical CPU */
  loaded: boolean;
  /** inside KVM_RUN (the guest is executing) */
  running: boolean;
  /** guest_tsc_protected: TDX, or SEV-SNP with Secure TSC: the offset and multiplier are the platform's, KVM cannot change them */
  guestTscProtected: boolean;
}

export interface X86Vm {
  arch: 'x86';
  /** a confidential VM type with a protected guest TSC (TDX always, SEV-SNP with Secure TSC): every vCPU gets guest_tsc_protected */
  secureTsc: boolean;
  /** the offset the platform (TDX module / SNP firmware) fixes for the whole guest at the first vCPU, null before */
  protectedTscOffset: bigint | null;
  /** kvmclock_offset (s64) */
  kvmclockOffset: bigint;
  useMasterClock: boolean;
  masterKernelNs: bigint;
  masterCycleNow: bigint;
  /** default_tsc_khz */
  defaultTscKhz: number;
  /** user_set_tsc */
  userSetTsc: boolean;
  lastTscNsec: bigint;
  lastTscWrite: bigint;
  lastTscKhz: number;
  lastTscOffset: bigint;
  /** proposal: last_tsc_scaling_ratio and the master clock's scaled (ratio, mul, shift) */
  lastTscScalingRatio: bigint;
  masterTscScalingRatio: bigint;
  masterTscMul: bigint;
  masterTscShift: number;
  curTscGeneration: number;
  curTscNsec: bigint;
  curTscWrite: bigint;
  curTscOffset: bigint;
  nrVcpusMatchedTsc: number;
  backwardsTscObserved: boolean;
  bootVcpuRunsOldKvmclock: boolean;
  /** kvm->arch.wall_clock: the guest address MSR_KVM_WALL_CLOCK(_NEW) named (one per VM), and the
   *  wall clock KVM wrote there: ns since the epoch at kvmclock 0 */
  wallClockGpa: bigint;
  wallClockNs: bigint | null;
  /**
   * The guest's side of it: the wall clock a Linux guest read at boot. kvm_get_wallclock() writes
   * MSR_KVM_WALL_CLOCK(_NEW) and reads the struct at once (pvclock_read_wallclock()), only at boot
   * and resume from suspend; CLOCK_REALTIME runs on from there with its clocksource. It lives in
   * the guest's memory: a host write of the MSR (a VMM restoring it) rewrites the struct, never
   * this, and a migration carries it with the guest (null: the guest never read it).
   */
  guestWallClockNs: bigint | null;
  /** created_vcpus */
  createdVcpus: number;
  /** online vCPUs, in creation order (vcpu_idx) */
  vcpus: X86Vcpu[];
  /** pending delayed work: kvmclock_update_work and kvmclock_sync_work (host true time, null when idle) */
  kvmclockUpdateWorkAt: bigint | null;
  kvmclockSyncWorkAt: bigint | null;
  /** 7.1+ (globalClockUpdateRateLimit): when a vCPU load last asked for a global clock update (host true time); absent before any */
  globalClockUpdateOnLoadAt?: bigint;
}

/** What a kernel function may consult besides the VM: the host's capabilities, the profile and one hardware sample. */
export interface X86Ctx {
  caps: X86HostCaps;
  sw: X86Switches;
  hw: HostSample;
  /** gtod_is_based_on_tsc(): the host timekeeper's clocksource is the TSC */
  tscClocksource: boolean;
  /** where tracepoints go, when someone listens (arch/x86/kvm/trace.h) */
  trace?: TraceEntry[];
}

/** Emit a tracepoint if tracing is on (callers test ctx.trace first, so an untraced replay builds no entry). */
export function tracepoint(ctx: X86Ctx, entry: TraceEntry): void {
  if (ctx.trace) ctx.trace.push(entry);
}

export function findVcpu(vm: X86Vm, id: number): X86Vcpu | undefined {
  return vm.vcpus.find((v) => v.id === id);
}
