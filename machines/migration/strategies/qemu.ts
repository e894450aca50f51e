// QEMU (target/i386/kvm/kvm.c, hw/i386/kvm/clock.c): the TSC by value through the MSRs (pinned at
// stop before kvmclock is read), kvmclock read at stop and again at pre-save, restored with
// KVM_SET_CLOCK flags 0, KVM_KVMCLOCK_CTRL at resume. IA32_TSC_DEADLINE is saved with the MSRs and
// restored by its own KVM_SET_MSRS after IA32_TSC (kvm_put_tscdeadline_msr()).
// Release switches (releases.ts): the KVM_KVMCLOCK_CTRL loop before 3.1, the pre-save re-read of a
// paused guest before 4.2, KVM_SET_TSC_KHZ within 250 ppm from 5.1, the `==` capability test that made
// 7.1 and older read kvmclock from guest memory on 5.16+ hosts, and the unmerged 2025-10 series that
// adds the blackout to both clocks (downtimeAccounting).
import { hostRealtimeNs } from '../../../kvm/host.js';
import { pvclockScaleDelta } from '../../../kvm/arith.js';
import { u64 } from '../../../kvm/u64.js';
import { KVM_CLOCK_REALTIME, KVM_CLOCK_TSC_STABLE, MSRS } from '../../../kvm/uapi.js';
import type { Pvti } from '../../../kvm/x86/state.js';
import { StepFailure, type Side, type VmmPort } from '../port.js';
import { clockOut, cyclesIn, deadlineIfSet, getMsrs, KVMCLOCK_MSRS, qemuSetTscKhz, resumeSource, setMsrs, type SavedByValue } from './common.js';
import type { Strategy } from './types.js';

/** clock: kvmclock from vm_stop, then overwritten by the pre-save read */
interface Saved extends SavedByValue<bigint> {
  /** downtimeAccounting: the source's CLOCK_REALTIME as the TSCs were pinned, and the pre-save read's realtime (null without KVM_CLOCK_REALTIME) */
  stopRealtime: bigint;
  clockRealtime: bigint | null;
  /** s->clock_is_reliable: the source's KVM_GET_CLOCK is trusted (else the resume reads kvmclock from guest memory) */
  clockIsReliable: boolean;
  /** the first vCPU's pvclock page as the guest's memory holds it from the stop on (null: kvmclock never written on it) */
  firstPvclock: Pvti | null;
}

const { MSR_IA32_TSC: TSC, MSR_IA32_TSC_ADJUST: ADJ, MSR_IA32_TSC_DEADLINE: DEADLINE } = MSRS;

export const qemu: Strategy<Saved, Saved> = {
  name: 'qemu',
  arch: 'x86',
  summary:
    "QEMU: at vm_stop pins every vCPU's IA32_TSC by value (KVM_GET_MSRS, one vCPU after another), then reads kvmclock (KVM_GET_CLOCK); as the " +
    'migration completes it reads the other MSRs, and for a running-VM migration kvmclock again at pre-save. The destination negotiates the TSC kHz ' +
    '(KVM_SET_TSC_KHZ with scaling or within 250 ppm, else "TSC frequency mismatch": a refusal with an explicit tsc-frequency, ' +
    'a warning without), writes TSC_ADJUST then IA32_TSC per vCPU, and at resume KVM_SET_CLOCK ' +
    'with flags 0 and KVM_KVMCLOCK_CTRL on every vCPU. The guest TSC loses the blackout; kvmclock loses it minus the stop→pre-save gap.',
  options: {
    paused:
      'the guest was already paused (QEMU `stop`, RUN_STATE_PAUSED) when the migration began, preSaveGapNs after it: from 4.2.0 pre-save keeps the ' +
      'clock read at the stop (default false)',
    tscFrequency:
      'the VM was started with an explicit tsc-frequency (default true: QEMU blocks the migration of a VM with invtsc unless it is set, d99569d9d8, ' +
      'QEMU 2.9), so a destination that cannot run the guest at the saved kHz refuses it ("TSC frequency mismatch"; a destination QEMU whose ' +
      'tsc-frequency cannot be set does not start). false: no invtsc and no tsc-frequency; kvm_arch_put_registers() (target/i386/kvm/kvm.c, read ' +
      'at 00001a22d183, and so in the 2.x files read) ignores the failed ' +
      "kvm_arch_set_tsc_khz() (it only prints the warning) and the guest runs on at the destination's rate",
  },
  pause(p) {
    p.pauseAll('source');
    // kvmclock_vm_state_change(stopped), hw/i386/kvm/clock.c: kvm_synchronize_all_tsc() first, each
    // vCPU's IA32_TSC alone (kvm_get_tsc(), target/i386/kvm/kvm.c), pinned while stopped (env->tsc_valid)
    const vcpus = p.vcpuIds('source').map((id, i) => {
      p.spacing('read', i);
      return { id, msrs: getMsrs(p, 'pause', 'source', id, [TSC]) };
    });
    // then kvm_update_clock(): s->clock = KVM_GET_CLOCK, s->clock_is_reliable = kvm_has_adjust_clock_stable()
    const clock = clockOut(p.must('pause', 'source', null, 'KVM_GET_CLOCK')).clock;
    const first = p.vm('source').x86?.vcpus.find((v) => v.id === vcpus[0]?.id)?.pvti;
    return {
      vcpus,
      clock,
      tscKhz: 0,
      stopRealtime: hostRealtimeNs(p.host('source'), p.now()),
      clockRealtime: null,
      clockIsReliable: kvmHasAdjustClockStable(p),
      firstPvclock: first ? { ...first } : null,
    };
  },
  save(p, atStop) {
    // cpu_synchronize_all_states() as the migration completes: kvm_get_msrs() reads the other MSRs
    // (IA32_TSC is skipped while env->tsc_valid holds the value pinned at the stop); a stop/cont saves no state
    // (kvm_get_msrs() reads MSR_IA32_TSCDEADLINE with them, into env->tsc_deadline)
    const rest = (id: number) => (p.inPlace ? [] : getMsrs(p, 'save', 'source', id, [ADJ, ...KVMCLOCK_MSRS, ...deadlineIfSet(p, id)]));
    const vcpus = atStop.vcpus.map((v) => ({ id: v.id, msrs: new Map([...v.msrs, ...rest(v.id)]) }));
    const saved = { ...atStop, vcpus };
    // kvmclock_pre_save(): a running-VM migration reads the clock once more, preSaveGap later; from 4.2.0
    // (4173324946) not for a guest paused at vm_stop (runstate_paused)
    p.advance(p.params.preSaveGapNs);
    if (!(p.params.options.paused === true && p.release.switches.pausedNoPreSaveRead === true)) {
      const c = clockOut(p.must('save', 'source', null, 'KVM_GET_CLOCK'));
      saved.clock = c.clock;
      saved.clockRealtime = c.flags & KVM_CLOCK_REALTIME ? c.realtime : null;
    }
    saved.tscKhz = p.must('save', 'source', saved.vcpus[0]?.id ?? 0, 'KVM_GET_TSC_KHZ').ret;
    return saved;
  },
  restore(p, saved) {
    // A pause on the same VM (stop/cont) writes no registers back: only the resume handler runs.
    if (p.inPlace) return;
    p.createDestination(saved.vcpus.map((v) => v.id));
    // (an explicit tsc-frequency makes a rate it cannot set fatal; without one QEMU warns and runs on)
    const fatal = p.params.options.tscFrequency !== false;
    for (const v of saved.vcpus) {
      if (p.release.switches.tscKhzWithinTolerance === true) qemuSetTscKhz(p, 'restore', v.id, saved.tscKhz, fatal);
      else setTscKhzScalingOnly(p, v.id, saved.tscKhz, fatal);
    }
    const account = p.release.switches.downtimeAccounting === true;
    saved.vcpus.forEach((v, i) => {
      p.spacing('write', i);
      // downtimeAccounting: the TSC pinned at the stop plus the CLOCK_REALTIME since, in guest cycles
      // (modelled by value; the series reaches the same TSC through KVM_VCPU_TSC_OFFSET)
      const elapsed = hostRealtimeNs(p.host('destination'), p.now()) - saved.stopRealtime;
      const tsc = (v.msrs.get(TSC) ?? 0n) + (account && elapsed > 0n ? cyclesIn(elapsed, saved.tscKhz) : 0n);
      // kvm_put_msrs(): TSC_ADJUST is listed before IA32_TSC (a host TSC_ADJUST write does not move the TSC)
      setMsrs(
        p,
        'restore',
        'destination',
        v.id,
        [ADJ, TSC, ...KVMCLOCK_MSRS].map((i) => [i, i === TSC ? tsc : (v.msrs.get(i) ?? 0n)] as [number, bigint]),
      );
      // kvm_put_tscdeadline_msr(): its own KVM_SET_MSRS after kvm_put_msrs() (so after IA32_TSC) and
      // the LAPIC, in every modelled release (target/i386/kvm/kvm.c kvm_arch_put_registers())
      const deadline = v.msrs.get(DEADLINE);
      if (deadline !== undefined) setMsrs(p, 'restore', 'destination', v.id, [[DEADLINE, deadline]]);
    });
  },
  resume(p, saved) {
    // kvmclock_vm_state_change(running): KVM_SET_CLOCK { clock = s->clock }, then KVMCLOCK_CTRL per vCPU
    // downtimeAccounting (not in place): KVM_CLOCK_REALTIME with the pre-save read's realtime, so the kernel adds the blackout
    if (p.release.switches.downtimeAccounting === true && !p.inPlace && saved.clockRealtime !== null) {
      const realtime = saved.clockRealtime.toString();
      p.must('resume', 'destination', null, 'KVM_SET_CLOCK', { clock: saved.clock.toString(), flags: KVM_CLOCK_REALTIME, realtime });
    } else p.must('resume', 'destination', null, 'KVM_SET_CLOCK', { clock: runningClock(p, 'resume', saved).toString(), flags: 0 });
    kvmclockCtrlAll(p, 'destination');
    p.runAll('destination');
  },
  rollback(p, atStop, saved) {
    // vm_start on the source: the same state-change handler writes the saved kvmclock back
    p.discardDestination();
    const s = saved ?? atStop;
    if (s) p.ioctl('source', null, 'KVM_SET_CLOCK', { clock: runningClock(p, 'rollback', s).toString(), flags: 0 });
    kvmclockCtrlAll(p, 'source');
    resumeSource(p);
  },
};

/**
 * kvm_has_adjust_clock_stable(), target/i386/kvm/kvm.c: whether KVM_CAP_ADJUST_CLOCK has
 * KVM_CLOCK_TSC_STABLE. Every modelled kernel (4.19 on) sets that bit, so the masked test (7.2.0 on) is
 * true without asking; 7.1 and older compare with `==`, false where the kernel answers 0xE (5.16 on).
 */
function kvmHasAdjustClockStable(p: VmmPort): boolean {
  if (p.release.switches.adjustClockStableMask === true) return true;
  return p.ioctl('source', null, 'KVM_CHECK_EXTENSION', 'KVM_CAP_ADJUST_CLOCK').ret === KVM_CLOCK_TSC_STABLE;
}

/**
 * The clock kvmclock_vm_state_change(running) writes: s->clock, or, when the host that read it had
 * no reliable KVM_GET_CLOCK, kvmclock_current_nsec() where it is non-zero (hw/i386/kvm/clock.c).
 */
function runningClock(_p: VmmPort, step: string, s: Saved): bigint {
  if (s.clockIsReliable) return s.clock;
  const viaMem = kvmclockCurrentNsec(step, s);
  return viaMem !== 0n ? viaMem : s.clock;
}

/**
 * kvmclock_current_nsec(), hw/i386/kvm/clock.c: the first vCPU's pvclock page (guest memory) read
 * at its TSC pinned at the stop (env->tsc); 0 without kvmclock on it. QEMU asserts the page is not
 * newer than that TSC and aborts otherwise.
 */
function kvmclockCurrentNsec(step: string, s: Saved): bigint {
  const page = s.firstPvclock;
  if (!page) return 0n;
  const migrationTsc = s.vcpus[0]?.msrs.get(TSC) ?? 0n;
  if (page.tscTimestamp > migrationTsc) {
    throw new StepFailure(
      step,
      `kvmclock_current_nsec: Assertion \`time.tsc_timestamp <= migration_tsc' failed (tsc_timestamp ${page.tscTimestamp} > ${migrationTsc}): QEMU aborts`,
      null,
    );
  }
  // delta shifted by tsc_shift, times tsc_to_system_mul, >> 32 (mulu64): pvclock_scale_delta()'s arithmetic
  return u64(pvclockScaleDelta(migrationTsc - page.tscTimestamp, page.mul, page.shift) + page.systemTime);
}

/** do_kvmclock_ctrl() on every vCPU; before 3.1.0 (4c3e250627) the loop returned at the first vCPU that failed. */
function kvmclockCtrlAll(p: VmmPort, side: Side): void {
  for (const id of p.vcpuIds(side)) {
    const r = p.ioctl(side, id, 'KVM_KVMCLOCK_CTRL');
    if (r.ret < 0 && p.release.switches.kvmclockCtrlEveryVcpu !== true) return;
  }
}

/**
 * kvm_arch_set_tsc_khz() before 5.1.0 (74aaddc628): KVM_SET_TSC_KHZ only with KVM_CAP_TSC_CONTROL; a
 * failure is fatal only if the vCPU's rate is not already the one wanted (and `fatal`: an explicit
 * tsc-frequency; the 2.x kvm_arch_put_registers() already ignored the error otherwise).
 */
function setTscKhzScalingOnly(p: VmmPort, vcpu: number, khz: number, fatal: boolean): void {
  const scaling = p.ioctl('destination', null, 'KVM_CHECK_EXTENSION', 'KVM_CAP_TSC_CONTROL').ret > 0;
  const r = scaling ? p.ioctl('destination', vcpu, 'KVM_SET_TSC_KHZ', khz) : null;
  if (r && r.ret >= 0) return;
  const now = p.ioctl('destination', vcpu, 'KVM_GET_TSC_KHZ').ret;
  if (fatal && (now <= 0 || now !== khz)) {
    throw new StepFailure('restore', `TSC frequency mismatch between VM (${khz} kHz) and host (${now} kHz), and TSC scaling unavailable`, r?.ref ?? null);
  }
}
