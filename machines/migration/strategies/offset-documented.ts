// The procedure of Documentation/virt/kvm/devices/vcpu.rst (KVM_VCPU_TSC_OFFSET), exactly as
// written: it assumes guest TSC = host TSC + offset, so it ignores TSC scaling and different
// host frequencies. (The document's ns × kHz product is taken in cycles, i.e. divided by 1e6.)
import { KVM_CLOCK_REALTIME } from '../../../kvm/uapi.js';
import { clockWithHostTsc, cyclesIn, getMsrs, KVMCLOCK_MSRS, restoreKvmclockMsrs, qemuSetTscKhz, readOffset, resumeSource, writeOffset } from './common.js';
import type { ClockData, SavedVcpu } from './common.js';
import type { Strategy } from './types.js';

interface Saved {
  src: ClockData;
  vcpus: (SavedVcpu & { offset: bigint })[];
  freqKhz: number;
}

export const offsetDocumented: Strategy<Saved, void> = {
  name: 'offset-documented',
  arch: 'x86',
  summary:
    "The kernel documentation's procedure: source KVM_GET_CLOCK (tsc_src, guest_src, host_src), every vCPU's KVM_VCPU_TSC_OFFSET, " +
    'KVM_GET_TSC_KHZ; destination KVM_SET_CLOCK {guest_src, host_src, KVM_CLOCK_REALTIME}, KVM_GET_CLOCK (tsc_dest, guest_dest), ' +
    'then ofs_dst = ofs_src − (guest_src − guest_dest)·freq + (tsc_src − tsc_dest) on every vCPU. Right for same-frequency hosts; ' +
    'wrong under TSC scaling, where host TSC ticks are not guest TSC ticks. The elapsed time is what KVM_SET_CLOCK adds from ' +
    'CLOCK_REALTIME: a destination D ahead moves kvmclock and the TSC D forward; one behind adds nothing (the blackout is lost).',
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    const src = clockWithHostTsc(p, 'save', 'source');
    const vcpus = p.vcpuIds('source').map((id, i) => {
      p.spacing('read', i);
      return { id, offset: readOffset(p, 'save', 'source', id), msrs: getMsrs(p, 'save', 'source', id, KVMCLOCK_MSRS) };
    });
    return { src, vcpus, freqKhz: p.must('save', 'source', vcpus[0]?.id ?? 0, 'KVM_GET_TSC_KHZ').ret };
  },
  restore(p, saved) {
    // In place the offsets still hold: the TSC keeps running through the pause.
    if (p.inPlace) return;
    p.createDestination(saved.vcpus.map((v) => v.id));
    for (const v of saved.vcpus) qemuSetTscKhz(p, 'restore', v.id, saved.freqKhz);
    restoreKvmclockMsrs(p, saved.vcpus);
    p.must('restore', 'destination', null, 'KVM_SET_CLOCK', {
      clock: saved.src.clock.toString(),
      realtime: saved.src.realtime.toString(),
      flags: KVM_CLOCK_REALTIME,
    });
    const dst = clockWithHostTsc(p, 'restore', 'destination');
    saved.vcpus.forEach((v, i) => {
      p.spacing('write', i);
      const ofs = v.offset - cyclesIn(saved.src.clock - dst.clock, saved.freqKhz) + (saved.src.hostTsc - dst.hostTsc);
      writeOffset(p, 'restore', v.id, ofs);
    });
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};
