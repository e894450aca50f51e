// QEMU (target/i386/kvm/kvm.c, hw/i386/kvm/clock.c): the TSC by value through the MSRs (pinned at
// stop before kvmclock is read), kvmclock read at stop and again at pre-save, restored with
// KVM_SET_CLOCK flags 0, KVM_KVMCLOCK_CTRL at resume.
// Switch downtimeAccounting (releases.ts): the unmerged 2025-10 series that adds the blackout to both.
import { hostRealtimeNs } from '../../../kvm/host.js';
import { KVM_CLOCK_REALTIME, MSRS } from '../../../kvm/uapi.js';
import { clockOut, cyclesIn, getMsrs, KVMCLOCK_MSRS, qemuSetTscKhz, resumeSource, setMsrs, type SavedByValue } from './common.js';
import type { Strategy } from './types.js';

/** clock: kvmclock from vm_stop, then overwritten by the pre-save read */
interface Saved extends SavedByValue<bigint> {
  /** downtimeAccounting: the source's CLOCK_REALTIME as the TSCs were pinned, and the pre-save read's realtime (null without KVM_CLOCK_REALTIME) */
  stopRealtime: bigint;
  clockRealtime: bigint | null;
}

const { MSR_IA32_TSC: TSC, MSR_IA32_TSC_ADJUST: ADJ } = MSRS;

export const qemu: Strategy<Saved, Saved> = {
  name: 'qemu',
  arch: 'x86',
  summary: 'QEMU: at vm_stop pins every vCPU\'s IA32_TSC by value (KVM_GET_MSRS, one vCPU after another), then reads kvmclock (KVM_GET_CLOCK); as the ' +
    'migration completes it reads the other MSRs, and for a running-VM migration kvmclock again at pre-save. The destination negotiates the TSC kHz ' +
    '(KVM_SET_TSC_KHZ with scaling or within 250 ppm, else "TSC frequency mismatch"), writes TSC_ADJUST then IA32_TSC per vCPU, and at resume KVM_SET_CLOCK ' +
    'with flags 0 and KVM_KVMCLOCK_CTRL on every vCPU. The guest TSC loses the blackout; kvmclock loses it minus the stop→pre-save gap.',
  options: {},
  pause(p) {
    p.pauseAll('source');
    // kvmclock_vm_state_change(stopped), hw/i386/kvm/clock.c: kvm_synchronize_all_tsc() first, each
    // vCPU's IA32_TSC alone (kvm_get_tsc(), target/i386/kvm/kvm.c), pinned while stopped (env->tsc_valid)
    const vcpus = p.vcpuIds('source').map((id, i) => {
      p.spacing('read', i);
      return { id, msrs: getMsrs(p, 'pause', 'source', id, [TSC]) };
    });
    // then kvm_update_clock(): s->clock = KVM_GET_CLOCK
    const clock = clockOut(p.must('pause', 'source', null, 'KVM_GET_CLOCK')).clock;
    return { vcpus, clock, tscKhz: 0, stopRealtime: hostRealtimeNs(p.host('source'), p.now()), clockRealtime: null };
  },
  save(p, atStop) {
    // cpu_synchronize_all_states() as the migration completes: kvm_get_msrs() reads the other MSRs
    // (IA32_TSC is skipped while env->tsc_valid holds the value pinned at the stop); a stop/cont saves no state
    const rest = (id: number) => (p.inPlace ? [] : getMsrs(p, 'save', 'source', id, [ADJ, ...KVMCLOCK_MSRS]));
    const vcpus = atStop.vcpus.map((v) => ({ id: v.id, msrs: new Map([...v.msrs, ...rest(v.id)]) }));
    const saved = { ...atStop, vcpus };
    // kvmclock_pre_save(): a running-VM migration reads the clock once more, preSaveGap later
    p.advance(p.params.preSaveGapNs);
    const c = clockOut(p.must('save', 'source', null, 'KVM_GET_CLOCK'));
    saved.clock = c.clock;
    saved.clockRealtime = c.flags & KVM_CLOCK_REALTIME ? c.realtime : null;
    saved.tscKhz = p.must('save', 'source', saved.vcpus[0]?.id ?? 0, 'KVM_GET_TSC_KHZ').ret;
    return saved;
  },
  restore(p, saved) {
    // A pause on the same VM (stop/cont) writes no registers back: only the resume handler runs.
    if (p.inPlace) return;
    p.createDestination(saved.vcpus.map((v) => v.id));
    for (const v of saved.vcpus) qemuSetTscKhz(p, 'restore', v.id, saved.tscKhz);
    const account = p.release.switches.downtimeAccounting === true;
    saved.vcpus.forEach((v, i) => {
      p.spacing('write', i);
      // downtimeAccounting: the TSC pinned at the stop plus the CLOCK_REALTIME since, in guest cycles
      // (modelled by value; the series reaches the same TSC through KVM_VCPU_TSC_OFFSET)
      const elapsed = hostRealtimeNs(p.host('destination'), p.now()) - saved.stopRealtime;
      const tsc = (v.msrs.get(TSC) ?? 0n) + (account && elapsed > 0n ? cyclesIn(elapsed, saved.tscKhz) : 0n);
      // kvm_put_msrs(): TSC_ADJUST is listed before IA32_TSC (a host TSC_ADJUST write does not move the TSC)
      setMsrs(p, 'restore', 'destination', v.id, [ADJ, TSC, ...KVMCLOCK_MSRS].map((i) => [i, i === TSC ? tsc : (v.msrs.get(i) ?? 0n)] as [number, bigint]));
    });
  },
  resume(p, saved) {
    // kvmclock_vm_state_change(running): KVM_SET_CLOCK { clock = s->clock }, then KVMCLOCK_CTRL per vCPU
    // downtimeAccounting (not in place): KVM_CLOCK_REALTIME with the pre-save read's realtime, so the kernel adds the blackout
    if (p.release.switches.downtimeAccounting === true && !p.inPlace && saved.clockRealtime !== null) {
      p.must('resume', 'destination', null, 'KVM_SET_CLOCK', { clock: saved.clock.toString(), flags: KVM_CLOCK_REALTIME, realtime: saved.clockRealtime.toString() });
    } else p.must('resume', 'destination', null, 'KVM_SET_CLOCK', { clock: saved.clock.toString(), flags: 0 });
    for (const id of p.vcpuIds('destination')) p.ioctl('destination', id, 'KVM_KVMCLOCK_CTRL');
    p.runAll('destination');
  },
  rollback(p, atStop, saved) {
    // vm_start on the source: the same state-change handler writes the saved kvmclock back
    p.discardDestination();
    const clock = saved?.clock ?? atStop?.clock;
    if (clock !== undefined) p.ioctl('source', null, 'KVM_SET_CLOCK', { clock: clock.toString(), flags: 0 });
    for (const id of p.vcpuIds('source')) p.ioctl('source', id, 'KVM_KVMCLOCK_CTRL');
    resumeSource(p);
  },
};
