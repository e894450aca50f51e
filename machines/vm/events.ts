// The events of a VM's stream (vm-<id>): every ioctl, guest instruction, vCPU exit and delayed
// kernel work, each with the inputs that came from hardware (hw) so it can be re-executed.
import type { Arch, Arm64HostCaps, X86HostCaps } from '../../kvm/host.js';
import type { HwJson, Json } from '../codec.js';

/** What a VM keeps of its host: the capabilities the emulated kernel consults. */
export interface VmHostInfo {
  counterHz: bigint;
  counterClocksource: boolean;
  x86: X86HostCaps | null;
  arm64: Arm64HostCaps | null;
}

export interface VmHostInfoJson {
  counterHz: string;
  counterClocksource: boolean;
  x86: (Omit<X86HostCaps, 'maxRatio'> & { maxRatio: string }) | null;
  arm64: Arm64HostCaps | null;
}

export interface VmCreatedData {
  vmId: string;
  hostId: string;
  arch: Arch;
  profile: string;
  host: VmHostInfoJson;
  /** x86: a confidential VM with a protected guest TSC (TDX, SEV-SNP Secure TSC); absent means false */
  secureTsc?: true;
  /** x86, a VM a migration created: the wall clock its guest read at boot (kvm_get_wallclock()), carried in the guest's memory (decimal ns) */
  guestWallClockNs?: string;
  hw: HwJson;
  /** the kernel tracepoints the event fired (kvm_write_tsc_offset, kvm_update_master_clock, ...) */
  trace?: Json[];
}

export interface IoctlIssuedData {
  trace?: Json[];
  vcpu: number | null;
  ioctl: string;
  arg: Json;
  ret: number;
  errno?: string;
  out?: Json;
  hw: HwJson;
}

export interface GuestExecutedData {
  trace?: Json[];
  vcpu: number;
  op: string;
  msr?: Json;
  value?: Json;
  result: Json;
  hw: HwJson;
}

export interface VcpuExitedData {
  trace?: Json[];
  vcpu: number;
  hw: HwJson;
}

export interface TimerFiredData {
  trace?: Json[];
  timer: string;
  hw: HwJson;
}

export interface VmDestroyedData {
  trace?: Json[];
  reason: string;
  hw: HwJson;
}

export type VmEvent =
  | { type: 'VmCreated'; data: VmCreatedData }
  | { type: 'IoctlIssued'; data: IoctlIssuedData }
  | { type: 'GuestExecuted'; data: GuestExecutedData }
  | { type: 'VcpuExited'; data: VcpuExitedData }
  | { type: 'TimerFired'; data: TimerFiredData }
  | { type: 'VmDestroyed'; data: VmDestroyedData };

/** A VM event at its instant, as the log holds it (and as replay reads it back): what the decider decides and evolves by. */
export type VmLogEvent = VmEvent & { time: bigint };

export { VM_STREAM_PREFIX, vmStreamId, vmIdOf } from '../stream-ids.js';

export function hostInfoToJson(h: VmHostInfo): VmHostInfoJson {
  return {
    counterHz: h.counterHz.toString(),
    counterClocksource: h.counterClocksource,
    x86: h.x86 ? { ...h.x86, maxRatio: h.x86.maxRatio.toString() } : null,
    arm64: h.arm64,
  };
}

export function hostInfoFromJson(h: VmHostInfoJson): VmHostInfo {
  return {
    counterHz: BigInt(h.counterHz),
    counterClocksource: h.counterClocksource,
    x86: h.x86 ? { ...h.x86, maxRatio: BigInt(h.x86.maxRatio) } : null,
    arm64: h.arm64,
  };
}
