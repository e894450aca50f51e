// The guest's boot as the log holds it: its kvmclock_init() on the boot vCPU, the first guest
// wrmsr that enables MSR_KVM_SYSTEM_TIME(_NEW) there. A VM whose boot vCPU had kvmclock enabled by
// its VMM (KVM_SET_MSRS: a migration's or a restore's destination) runs a guest that booted
// elsewhere: its boot is not on this VM.
import { MSRS } from '../../kvm/uapi.js';
import { pvclockTscKhz, type GuestBoot } from '../guest/boot.js';
import { vmStreamId, type GuestExecutedData, type IoctlIssuedData } from '../vm/events.js';
import type { AuditSource } from './source.js';

const SYSTEM_TIME = { MSR_KVM_SYSTEM_TIME_NEW: true, MSR_KVM_SYSTEM_TIME: false } as const;

/** The system-time MSR a guest wrmsr names (by name or number): true for _NEW, false for the old one, null for another MSR. */
function systemTimeMsr(msr: unknown): boolean | null {
  for (const [name, isNew] of Object.entries(SYSTEM_TIME)) {
    const n = MSRS[name as keyof typeof SYSTEM_TIME];
    if (msr === name || msr === n || msr === String(n)) return isNew;
  }
  return null;
}

/** A KVM_SET_MSRS argument that enables kvmclock (bit 0 of a system-time MSR's value). */
function enablesSystemTime(arg: unknown): boolean {
  const entries = (arg as { entries?: { index?: unknown; data?: unknown }[] } | null)?.entries ?? [];
  return entries.some((e) => systemTimeMsr(e.index) !== null && odd(e.data));
}

const odd = (v: unknown): boolean => {
  try {
    return (BigInt(String(v)) & 1n) === 1n;
  } catch {
    return false;
  }
};

/** The VM's events scanned from its first, a chunk at a time (the boot is among the first few). */
function* vmEventsFromStart(src: AuditSource, vmId: string, lastVersion: number) {
  const sid = vmStreamId(vmId);
  for (let from = 1, size = 64; from <= lastVersion; from += size, size *= 4) {
    const p0 = src.positionOfVersion(sid, from);
    const p1 = src.positionOfVersion(sid, Math.min(lastVersion, from + size - 1));
    if (p0 === null || p1 === null) return;
    yield* src.vmEvents(vmId, p0, p1);
  }
}

/** The guest's boot on a VM before its version `lastVersion` (null: it booted before this VM, or never enabled kvmclock). */
export function guestBootOf(src: AuditSource, vmId: string, bootVcpu: number, lastVersion: number): GuestBoot | null {
  for (const e of vmEventsFromStart(src, vmId, lastVersion)) {
    if (e.type === 'IoctlIssued') {
      const d = e.data as IoctlIssuedData;
      // the VMM wrote the boot vCPU's system-time MSR (host-initiated): a restored guest, its boot elsewhere
      if (d.ioctl === 'KVM_SET_MSRS' && d.vcpu === bootVcpu && d.ret >= 1 && enablesSystemTime(d.arg)) return null;
      continue;
    }
    if (e.type !== 'GuestExecuted') continue;
    const d = e.data as GuestExecutedData;
    if (d.op !== 'wrmsr' || d.vcpu !== bootVcpu) continue;
    const newMsrs = systemTimeMsr(d.msr);
    if (newMsrs === null || !odd(d.value)) continue;
    const pvti = src.vmAtTime(vmId, e.time)?.x86?.vcpus.find((v) => v.id === bootVcpu)?.pvti;
    if (!pvti) return null;
    return { timeNs: e.time, newMsrs, tscKhz: pvclockTscKhz(pvti.mul, pvti.shift) };
  }
  return null;
}
