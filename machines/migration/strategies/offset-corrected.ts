// The cleanup proposal's scaling-aware procedure (its vcpu.rst rewrite), restoring kvmclock
// with the KVM_SET_CLOCK {guest_src, time_src, KVM_CLOCK_REALTIME} fallback only: works on
// mainline kernels that have KVM_VCPU_TSC_OFFSET.
import { KVM_CLOCK_REALTIME, MSRS } from '../../../kvm/uapi.js';
import {
  clockWithHostTsc,
  cyclesIn,
  deadlineIfSet,
  getMsrs,
  KVMCLOCK_MSRS,
  restoreKvmclockMsrs,
  qemuSetTscKhz,
  readOffset,
  resumeSource,
  scaled,
  setMsrs,
  vcpuRatio,
  writeOffset,
} from './common.js';
import type { ClockData, SavedVcpu } from './common.js';
import type { VmmPort } from '../port.js';
import type { Strategy } from './types.js';

export interface OffsetSaved {
  src: ClockData;
  /** each vCPU's guest TSC at the source's host_tsc (scale(tsc_src, ratio) + offset) */
  vcpus: (SavedVcpu & { tsc: bigint })[];
  freqKhz: number;
  /** KVM_GET_CLOCK_GUEST of the boot vCPU, when the kernel has it */
  pvti: Record<string, unknown> | null;
}

/** Steps 1-3: source clock, each vCPU's offset and scale → its guest TSC at tsc_src. */
export function saveOffsets(p: VmmPort, withClockGuest: boolean): OffsetSaved {
  const src = clockWithHostTsc(p, 'save', 'source');
  const freqKhz = p.must('save', 'source', p.vcpuIds('source')[0] ?? 0, 'KVM_GET_TSC_KHZ').ret;
  const vcpus = p.vcpuIds('source').map((id, i) => {
    p.spacing('read', i);
    const offset = readOffset(p, 'save', 'source', id);
    // (the ratio's KVM_GET_DEVICE_ATTR before the MSRs, the order logs recorded before hold)
    const tsc = scaled(src.hostTsc, vcpuRatio(p, 'source', id, freqKhz)) + offset;
    return { id, tsc, msrs: getMsrs(p, 'save', 'source', id, [...KVMCLOCK_MSRS, ...deadlineIfSet(p, id)]) };
  });
  let pvti: Record<string, unknown> | null = null;
  if (withClockGuest && vcpus.length) {
    const r = p.ioctl('source', vcpus[0]!.id, 'KVM_GET_CLOCK_GUEST');
    if (r.ret === 0) pvti = r.out!;
  }
  return { src, vcpus, freqKhz, pvti };
}

/**
 * Steps 4-7: the VM-wide kHz before any vCPU, the destination's (host_tsc, realtime), then each
 * vCPU's offset for tsc_src + ΔT·freq. Mainline kernels pair host_tsc with realtime only under a
 * master clock, which a new VM gets from KVM_SET_CLOCK once its vCPUs exist: so kvmclock is set
 * first (the documented order), and KVM_GET_CLOCK follows. ΔT = time_dst − time_src is the two
 * hosts' CLOCK_REALTIME apart, as the procedure takes it: it is the time that passed only when
 * the hosts agree on CLOCK_REALTIME (vcpu.rst: "unless CLOCK_REALTIME is synchronized between the
 * source and destination"); hosts D apart move the guest TSC by D·freq, backwards when the
 * destination's is behind (signed, as the proposal writes it: no clamp).
 */
export function restoreOffsets(p: VmmPort, saved: OffsetSaved, oneOffset: boolean): void {
  // In place the offsets still hold: the TSC keeps running through the pause.
  if (p.inPlace) return;
  const khz = p.createDestination(
    saved.vcpus.map((v) => v.id),
    saved.freqKhz,
  );
  // Kernels without the VM-wide KVM_SET_TSC_KHZ (before 6.0) get it per vCPU, as QEMU does.
  if (khz && khz.ret < 0) for (const v of saved.vcpus) qemuSetTscKhz(p, 'restore', v.id, saved.freqKhz);
  restoreKvmclockMsrs(p, saved.vcpus);
  setClockRealtime(p, saved.src);
  const dst = clockWithHostTsc(p, 'restore', 'destination');
  const dt = dst.realtime - saved.src.realtime;
  const first = saved.vcpus[0];
  saved.vcpus.forEach((v, i) => {
    p.spacing('write', i);
    const tscSrc = oneOffset && first ? first.tsc : v.tsc;
    const tscDst = tscSrc + cyclesIn(dt, saved.freqKhz);
    writeOffset(p, 'restore', v.id, tscDst - scaled(dst.hostTsc, vcpuRatio(p, 'destination', v.id, saved.freqKhz)));
  });
  // The procedure is silent on the LAPIC deadline; the vCPU state it leaves to the VMM includes it. It is
  // written once each guest TSC is in place (KVM arms it against the TSC it reads then), the order
  // QEMU's kvm_put_tscdeadline_msr() and Firecracker's #4666 keep.
  for (const v of saved.vcpus) {
    const deadline = v.msrs.get(MSRS.MSR_IA32_TSC_DEADLINE);
    if (deadline !== undefined) setMsrs(p, 'restore', 'destination', v.id, [[MSRS.MSR_IA32_TSC_DEADLINE, deadline]]);
  }
}

/** Step 9: KVM_SET_CLOCK with the source's kvmclock and realtime; the kernel adds the time that passed. */
export function setClockRealtime(p: VmmPort, src: ClockData): void {
  p.must('restore', 'destination', null, 'KVM_SET_CLOCK', { clock: src.clock.toString(), realtime: src.realtime.toString(), flags: KVM_CLOCK_REALTIME });
}

export const offsetCorrected: Strategy<OffsetSaved, void> = {
  name: 'offset-corrected',
  arch: 'x86',
  summary:
    "The cleanup proposal's scaling-aware procedure: per vCPU tsc_src = scale(host_tsc_src, ratio_src) + offset (ratio from " +
    'KVM_VCPU_TSC_SCALE, or as the kernel computes it); the destination sets the VM TSC kHz before creating vCPUs, reads ' +
    'KVM_GET_CLOCK, and writes offset = tsc_src + ΔT·freq − scale(host_tsc_dst, ratio_dst) with ΔT from CLOCK_REALTIME; kvmclock ' +
    'through KVM_SET_CLOCK {guest_src, time_src, KVM_CLOCK_REALTIME}. ΔT is the elapsed time only if both hosts agree on ' +
    'CLOCK_REALTIME: hosts D apart move the guest TSC by D (back, if the destination is behind; kvmclock then does not advance).',
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    return saveOffsets(p, false);
  },
  restore(p, saved) {
    restoreOffsets(p, saved, false);
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};

export { cyclesIn };
