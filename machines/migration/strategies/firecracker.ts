// Firecracker: the TSC by value, IA32_TSC_DEADLINE restored after IA32_TSC (a zero deadline
// replaced by the vCPU's TSC), the 250 ppm tolerance then KVM_SET_TSC_KHZ on every vCPU,
// kvmclock restored with flags 0 (KVM_CLOCK_REALTIME as an opt-in), KVMCLOCK_CTRL after pausing and before resume.
// Older releases differ by the switches of releases.ts (p.release.switches): the deadline's order
// and zero value (1.8.0), KVMCLOCK_CTRL at pause (1.10.0) and at restore (1.14.0), the realtime
// opt-in (1.14.4 and 1.15.1; not in 1.15.0).
import { tscToleranceWindow } from '../../../kvm/arith.js';
import { KVM_CLOCK_REALTIME } from '../../../kvm/uapi.js';
import { StepFailure, type VmmPort } from '../port.js';
import { clockOut, getMsrs, KVMCLOCK_MSRS, resumeSource, savedKvmclockMsrs, setMsrs, DEADLINE, type SavedClockByValue as Saved, TSC } from './common.js';
import { releasesTurningOn } from './releases.js';
import type { Strategy } from './types.js';

export const firecracker: Strategy<Saved, void> = {
  name: 'firecracker',
  arch: 'x86',
  summary:
    'Firecracker snapshot/restore: pause, KVM_KVMCLOCK_CTRL on every vCPU, save KVM_GET_CLOCK, the MSRs by value and the TSC kHz. Restore sets ' +
    'KVM_SET_TSC_KHZ on every vCPU when the destination is more than 250 ppm away, writes IA32_TSC then IA32_TSC_DEADLINE (a zero deadline becomes ' +
    'the TSC), KVM_SET_CLOCK with flags 0 (or the saved KVM_CLOCK_REALTIME with options.clockRealtime), and KVM_KVMCLOCK_CTRL before resuming.',
  options: {
    clockRealtime:
      'restore kvmclock with KVM_CLOCK_REALTIME and the saved realtime (`clock_realtime`, default false); a release without the field ' +
      '(before 1.14.4, and 1.15.0) refuses the load as an unknown field, and passes the saved KVM_CLOCK_REALTIME whenever the snapshot holds it',
  },
  pause(p) {
    p.pauseAll('source');
    // #4460 (1.10.0): KVMCLOCK_CTRL as each vCPU pauses; 1.7 to 1.9 never issue it
    if (p.release.switches.kvmclockCtrlAtPause) for (const id of p.vcpuIds('source')) p.ioctl('source', id, 'KVM_KVMCLOCK_CTRL');
  },
  save(p) {
    const clock = clockOut(p.must('save', 'source', null, 'KVM_GET_CLOCK'));
    const vcpus = p.vcpuIds('source').map((id, i) => {
      p.spacing('read', i);
      return { id, msrs: getMsrs(p, 'save', 'source', id, [TSC, DEADLINE, ...KVMCLOCK_MSRS]) };
    });
    return { vcpus, clock, tscKhz: p.must('save', 'source', vcpus[0]?.id ?? 0, 'KVM_GET_TSC_KHZ').ret };
  },
  restore(p, saved) {
    refuseUnknownClockRealtime(p);
    // Pause/resume of the same microVM restores nothing.
    if (p.inPlace) return;
    p.createDestination(saved.vcpus.map((v) => v.id));
    const { lo, hi } = tscToleranceWindow(BigInt(p.dstHostInfo().tscKhz));
    if (BigInt(saved.tscKhz) < lo || BigInt(saved.tscKhz) > hi) {
      for (const v of saved.vcpus) p.must('restore', 'destination', v.id, 'KVM_SET_TSC_KHZ', saved.tscKhz);
    }
    const sw = p.release.switches;
    saved.vcpus.forEach((v, i) => {
      p.spacing('write', i);
      const tsc = v.msrs.get(TSC) ?? 0n;
      // PR #4618: a zero deadline is saved as the TSC (before: restored as 0)
      const deadline = sw.zeroDeadlineFilled ? v.msrs.get(DEADLINE) || tsc : (v.msrs.get(DEADLINE) ?? 0n);
      const kvmclock = savedKvmclockMsrs(v.msrs);
      // PR #4666: IA32_TSC_DEADLINE after IA32_TSC (before: it could precede it)
      const order: [number, bigint][] = sw.deadlineAfterTsc ? [[TSC, tsc], [DEADLINE, deadline], ...kvmclock] : [[DEADLINE, deadline], [TSC, tsc], ...kvmclock];
      setMsrs(p, 'restore', 'destination', v.id, order);
    });
    // #5809 (1.14.4, 1.15.1, 1.16.0): KVM_CLOCK_REALTIME only on request; before, whenever the snapshot held it
    const realtime = sw.clockRealtimeOptIn ? p.params.options.clockRealtime === true : true;
    p.must('restore', 'destination', null, 'KVM_SET_CLOCK', {
      clock: saved.clock.clock.toString(),
      flags: realtime ? saved.clock.flags & KVM_CLOCK_REALTIME : 0,
      realtime: saved.clock.realtime.toString(),
    });
  },
  resume(p) {
    // #5494 (1.14.0): KVMCLOCK_CTRL on the restored vCPUs; before, only at pause on the source
    // (reaching the guest only when the same VM resumes, an in-place pause)
    if (p.release.switches.kvmclockCtrl) for (const id of p.vcpuIds('destination')) p.ioctl('destination', id, 'KVM_KVMCLOCK_CTRL');
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};

/**
 * LoadSnapshotParams is deserialized with deny_unknown_fields: a release without `clock_realtime`
 * (#5809) refuses a load request that sets it, before anything is restored.
 */
export function refuseUnknownClockRealtime(p: VmmPort): void {
  if (p.params.options.clockRealtime !== true || p.release.switches.clockRealtimeOptIn) return;
  const since = releasesTurningOn('firecracker', 'clockRealtimeOptIn');
  throw new StepFailure(
    'restore',
    `unknown field \`clock_realtime\` in the snapshot load request: firecracker ${p.release.release} has no \`clock_realtime\` ` +
      `(#5809; first in ${since.join(', then ')})`,
    null,
  );
}
