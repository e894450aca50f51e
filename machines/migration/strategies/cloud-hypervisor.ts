// Cloud Hypervisor: the TSC by value with its kHz saved and set; kvmclock restored with
// KVM_CLOCK_REALTIME (filling realtime from its own clock when the kernel gave none);
// KVM_KVMCLOCK_CTRL on every vCPU at pause. Older releases (p.release.switches, releases.ts):
// before PR #8256 the flags were reset (KVM_SET_CLOCK flags 0); before PR #7932 the vCPUs ran
// before KVM_SET_CLOCK. PR #8437 then copies vCPU 0's TSC offset to every vCPU (off in logs recorded without a release).
// IA32_TSC_DEADLINE is among the saved MSRs (all of KVM_GET_MSR_INDEX_LIST since v0.9.0), restored after IA32_TSC.
import { hostRealtimeNs } from '../../../kvm/host.js';
import { KVM_CLOCK_REALTIME } from '../../../kvm/uapi.js';
import type { VmmPort } from '../port.js';
import { clockOut, deadlineIfSet, getMsrs, KVMCLOCK_MSRS, resumeSource, setMsrs, DEADLINE, type SavedClockByValue as Saved, TSC } from './common.js';
import type { Strategy } from './types.js';

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
    // PR #8256: with_realtime_filled(); before, reset_flags() dropped the flags and nothing was filled
    if (p.release.switches.realtimeFilled && !(clock.flags & KVM_CLOCK_REALTIME)) clock.realtime = hostRealtimeNs(p.host('source'), p.now());
    const vcpus = p.vcpuIds('source').map((id, i) => {
      p.spacing('read', i);
      // every MSR of KVM_GET_MSR_INDEX_LIST (e35d4c5b2, v0.9.0), in its order: msrs_to_save (IA32_TSC) before
      // emulated_msrs (kvmclock's, then IA32_TSC_DEADLINE; arch/x86/kvm/x86.c)
      return { id, msrs: getMsrs(p, 'save', 'source', id, [TSC, ...KVMCLOCK_MSRS, ...deadlineIfSet(p, id)]) };
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
        // set_state(): set_lapic() before set_msrs() (e2b5c78dc, v0.9.0), the saved MSRs in their order, so the deadline after IA32_TSC
        const order = [TSC, ...KVMCLOCK_MSRS, ...(v.msrs.has(DEADLINE) ? [DEADLINE] : [])];
        setMsrs(
          p,
          'restore',
          'destination',
          v.id,
          order.map((m) => [m, v.msrs.get(m) ?? 0n] as [number, bigint]),
        );
      });
      if (p.release.switches.syncTscOffsets)
        synchronizeTscOffsets(
          p,
          saved.vcpus.map((v) => v.id),
        );
    }
    // PR #7932: the clock before the vCPUs run; before it, after (in resume)
    if (p.release.switches.clockBeforeResume) setClock(p, 'restore', saved);
  },
  resume(p, saved) {
    p.runAll('destination');
    if (!p.release.switches.clockBeforeResume) setClock(p, 'resume', saved);
  },
  rollback(p) {
    resumeSource(p);
  },
};

/** Vm::resume()'s set_clock: KVM_CLOCK_REALTIME with the saved realtime (PR #8256), else flags 0. */
function setClock(p: VmmPort, step: string, saved: Saved): void {
  const realtime = p.release.switches.realtimeFilled === true;
  p.must(step, 'destination', null, 'KVM_SET_CLOCK', {
    clock: saved.clock.clock.toString(),
    flags: realtime ? KVM_CLOCK_REALTIME : 0,
    ...(realtime ? { realtime: saved.clock.realtime.toString() } : {}),
  });
}

/**
 * CpuManager::synchronize_tsc_offsets() (PR #8437): vCPU 0's KVM_VCPU_TSC_OFFSET written to every
 * vCPU, vCPU 0 included (so the writes form one matched generation); best effort, skipped where
 * the kernel has no such attribute (before 5.16).
 */
function synchronizeTscOffsets(p: VmmPort, ids: number[]): void {
  const first = ids[0];
  if (first === undefined) return;
  const r = p.ioctl('destination', first, 'KVM_GET_DEVICE_ATTR', { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET' });
  if (r.ret !== 0) return;
  for (const id of ids)
    p.ioctl('destination', id, 'KVM_SET_DEVICE_ATTR', { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET', value: String(r.out!.value) });
}
