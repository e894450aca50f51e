// Cloud Hypervisor: the TSC by value with its kHz saved and set; kvmclock restored with
// KVM_CLOCK_REALTIME (filling realtime from its own clock when the kernel gave none);
// KVM_KVMCLOCK_CTRL on every vCPU at pause.
import { hostRealtimeNs } from '../../../kvm/host.js';
import { KVM_CLOCK_REALTIME, MSRS } from '../../../kvm/uapi.js';
import { type ClockData, clockOut, getMsrs, KVMCLOCK_MSRS, resumeSource, setMsrs, type SavedVcpu } from './common.js';
import type { Strategy } from './types.js';

interface Saved {
  vcpus: SavedVcpu[];
  clock: ClockData;
  tscKhz: number;
}

const TSC = MSRS.MSR_IA32_TSC;

export const cloudHypervisor: Strategy<Saved, void> = {
  name: 'cloud-hypervisor',
  arch: 'x86',
  summary:
    'Cloud Hypervisor: KVM_KVMCLOCK_CTRL on every vCPU at pause; saves KVM_GET_CLOCK (filling realtime from its own CLOCK_REALTIME ' +
    'when the kernel did not), the MSRs by value and the TSC kHz; restores KVM_SET_TSC_KHZ on every vCPU, the MSRs, and ' +
    'KVM_SET_CLOCK with KVM_CLOCK_REALTIME, so kvmclock catches up by the realtime that passed.',
  pause(p) {
    p.pauseAll('source');
    for (const id of p.vcpuIds('source')) p.ioctl('source', id, 'KVM_KVMCLOCK_CTRL');
  },
  save(p) {
    const clock = clockOut(p.must('save', 'source', null, 'KVM_GET_CLOCK'));
    if (!(clock.flags & KVM_CLOCK_REALTIME)) clock.realtime = hostRealtimeNs(p.host('source'), p.now());
    const vcpus = p.vcpuIds('source').map((id, i) => {
      p.spacing('read', i);
      return { id, msrs: getMsrs(p, 'save', 'source', id, [TSC, ...KVMCLOCK_MSRS]) };
    });
    return { vcpus, clock, tscKhz: p.must('save', 'source', vcpus[0]?.id ?? 0, 'KVM_GET_TSC_KHZ').ret };
  },
  restore(p, saved) {
    if (!p.inPlace) {
      p.createDestination(saved.vcpus.map((v) => v.id));
      for (const v of saved.vcpus) p.must('restore', 'destination', v.id, 'KVM_SET_TSC_KHZ', saved.tscKhz);
    }
    // (its resume after a pause only sets the clock back, with KVM_CLOCK_REALTIME)
    if (!p.inPlace) {
      saved.vcpus.forEach((v, i) => {
        p.spacing('write', i);
        setMsrs(p, 'restore', 'destination', v.id, [TSC, ...KVMCLOCK_MSRS].map((m) => [m, v.msrs.get(m) ?? 0n] as [number, bigint]));
      });
    }
    p.must('restore', 'destination', null, 'KVM_SET_CLOCK', {
      clock: saved.clock.clock.toString(),
      flags: KVM_CLOCK_REALTIME,
      realtime: saved.clock.realtime.toString(),
    });
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};
