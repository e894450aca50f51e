// Cloud Hypervisor on arm64: the boot vCPU's counter saved with CLOCK_REALTIME and advanced by the
// elapsed wall time at restore; refused across hosts of different CNTFRQ (PR #8343; before it,
// switch arm64Downtime off, the counter was written back as saved and CNTFRQ not compared).
import { hostRealtimeNs } from '../../../kvm/host.js';
import { StepFailure } from '../port.js';
import { hasCounterOffset, readCnt, ticksIn, writeCnt } from './arm64-common.js';
import { resumeSource } from './common.js';
import type { Strategy } from './types.js';

interface ChSaved {
  cnt: bigint;
  realtime: bigint;
  cntfrq: bigint;
  vcpus: number[];
}

export const cloudHypervisorArm64: Strategy<ChSaved, void> = {
  name: 'cloud-hypervisor',
  arch: 'arm64',
  summary:
    "Cloud Hypervisor on arm64: saves the boot vCPU's KVM_REG_ARM_TIMER_CNT with its own CLOCK_REALTIME; restore writes " +
    "CNTVCT = saved + elapsed wall time × CNTFRQ, and refuses when the destination's CNTFRQ differs (KVM does not rescale " +
    'counters). It writes vCPU 0 only where the VM-wide counter offset exists (6.4+), every vCPU otherwise.',
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    const vcpus = p.vcpuIds('source');
    // its CLOCK_REALTIME pairs with the counter as read (before the ioctl's own latency)
    const realtime = hostRealtimeNs(p.host('source'), p.now());
    return { cnt: readCnt(p, 'save', vcpus[0] ?? 0), realtime, cntfrq: p.host('source').counterHz, vcpus };
  },
  restore(p, saved) {
    const downtime = p.release.switches.arm64Downtime === true;
    const dstHz = p.host('destination').counterHz;
    if (downtime && dstHz !== saved.cntfrq) {
      throw new StepFailure(
        'restore',
        `the destination's CNTFRQ (${dstHz} Hz) differs from the snapshot's (${saved.cntfrq} Hz): the guest counter would change rate`,
        null,
      );
    }
    p.createDestination(saved.vcpus);
    const elapsed = hostRealtimeNs(p.host('destination'), p.now()) - saved.realtime;
    const value = downtime ? saved.cnt + ticksIn(elapsed > 0n ? elapsed : 0n, saved.cntfrq) : saved.cnt;
    const targets = hasCounterOffset(p) ? saved.vcpus.slice(0, 1) : saved.vcpus;
    targets.forEach((id, i) => {
      p.spacing('write', i);
      writeCnt(p, 'restore', id, value);
    });
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};
