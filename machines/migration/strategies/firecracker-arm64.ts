// Firecracker on aarch64 (src/vmm/src/builder.rs, build_microvm_from_snapshot()): every vCPU's
// registers are saved through KVM_GET_REG_LIST and restored by value, KVM_REG_ARM_TIMER_CNT among
// them, so the guest counter resumes where it stopped. With `clock_realtime` (#5809: 1.14.4, 1.15.1,
// 1.16.0 and later) the load fails with UnsupportedClockRealtime after the vCPU state was restored and
// before the VM state is; releases without the field (before 1.14.4, and 1.15.0) refuse it as unknown.
import { StepFailure } from '../port.js';
import { readCnt, writeCnt } from './arm64-common.js';
import { resumeSource } from './common.js';
import { refuseUnknownClockRealtime } from './firecracker.js';
import type { Strategy } from './types.js';

interface FcArmSaved {
  vcpus: { id: number; cnt: bigint }[];
}

export const firecrackerArm64: Strategy<FcArmSaved, void> = {
  name: 'firecracker',
  arch: 'arm64',
  summary:
    "Firecracker on aarch64: pauses, saves every vCPU's registers (KVM_REG_ARM_TIMER_CNT included) and writes them back by value " +
    'on the destination, so the guest counter loses the downtime. `clock_realtime` is refused (UnsupportedClockRealtime, ' +
    'builder.rs) once the vCPU registers are restored; a release without the field (before 1.14.4, and 1.15.0) refuses it as unknown.',
  options: {
    clockRealtime: 'request KVM_CLOCK_REALTIME (`clock_realtime`): refused on aarch64 (UnsupportedClockRealtime), an unknown field in releases without it',
  },
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    return {
      vcpus: p.vcpuIds('source').map((id, i) => {
        p.spacing('read', i);
        return { id, cnt: readCnt(p, 'save', id) };
      }),
    };
  },
  restore(p, saved) {
    const wantsRealtime = p.params.options.clockRealtime === true;
    refuseUnknownClockRealtime(p);
    if (p.inPlace) return;
    p.createDestination(saved.vcpus.map((v) => v.id));
    saved.vcpus.forEach((v, i) => {
      p.spacing('write', i);
      writeCnt(p, 'restore', v.id, v.cnt);
    });
    // build_microvm_from_snapshot(): checked after the vCPU states are restored
    if (wantsRealtime) throw new StepFailure('restore', 'clock_realtime is not supported on aarch64 (UnsupportedClockRealtime)', null);
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};
