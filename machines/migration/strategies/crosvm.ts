// crosvm on x86: the TSC by value through KVM_SET_MSRS with the MSRs in index order, kvmclock
// with KVM_SET_CLOCK flags 0, KVM_KVMCLOCK_CTRL when the kernel has it.
import { MSRS } from '../../../kvm/uapi.js';
import { type ClockData, clockOut, getMsrs, resumeSource, setMsrs, type SavedVcpu } from './common.js';
import type { Strategy } from './types.js';

interface Saved {
  vcpus: SavedVcpu[];
  clock: ClockData;
}

// index order: IA32_TSC (0x10), IA32_TSC_ADJUST (0x3b), IA32_TSC_DEADLINE (0x6e0), then the kvmclock MSRs
const ORDER = [MSRS.MSR_IA32_TSC, MSRS.MSR_IA32_TSC_ADJUST, MSRS.MSR_IA32_TSC_DEADLINE, MSRS.MSR_KVM_WALL_CLOCK_NEW, MSRS.MSR_KVM_SYSTEM_TIME_NEW];

export const crosvm: Strategy<Saved, void> = {
  name: 'crosvm',
  arch: 'x86',
  summary:
    'crosvm: KVM_KVMCLOCK_CTRL on pause where available, the TSC and its companions by value through KVM_SET_MSRS in MSR index ' +
    'order (IA32_TSC before IA32_TSC_ADJUST), kvmclock with KVM_SET_CLOCK flags 0. The guest TSC and kvmclock lose the blackout.',
  pause(p) {
    p.pauseAll('source');
    if (p.ioctl('source', null, 'KVM_CHECK_EXTENSION', 'KVM_CAP_KVMCLOCK_CTRL').ret > 0) {
      for (const id of p.vcpuIds('source')) p.ioctl('source', id, 'KVM_KVMCLOCK_CTRL');
    }
  },
  save(p) {
    const clock = clockOut(p.must('save', 'source', null, 'KVM_GET_CLOCK'));
    const vcpus = p.vcpuIds('source').map((id, i) => {
      p.spacing('read', i);
      return { id, msrs: getMsrs(p, 'save', 'source', id, ORDER) };
    });
    return { vcpus, clock };
  },
  restore(p, saved) {
    if (p.inPlace) return;
    p.createDestination(saved.vcpus.map((v) => v.id));
    saved.vcpus.forEach((v, i) => {
      p.spacing('write', i);
      setMsrs(
        p,
        'restore',
        'destination',
        v.id,
        ORDER.map((m) => [m, v.msrs.get(m) ?? 0n] as [number, bigint]),
      );
    });
    p.must('restore', 'destination', null, 'KVM_SET_CLOCK', { clock: saved.clock.clock.toString(), flags: 0 });
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};
