// crosvm on arm64 (Android virtio-pvclock): one VM-wide KVM_ARM_SET_COUNTER_OFFSET that excludes
// every suspended interval from the guest counter.
import { saveCounter, setCounterOffset, type OffsetSaved } from './arm64-common.js';
import { resumeSource } from './common.js';
import type { Strategy } from './types.js';

export const crosvmArm64: Strategy<OffsetSaved, void> = {
  name: 'crosvm',
  arch: 'arm64',
  summary:
    'crosvm (Android virtio-pvclock): one VM-wide KVM_ARM_SET_COUNTER_OFFSET that grows by every suspended interval, so the ' +
    "guest counter excludes suspend (the suspended time goes to the guest's CLOCK_BOOTTIME separately); a restore sets the " +
    'offset so the counter continues from its saved value.',
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    return saveCounter(p);
  },
  restore(p, saved) {
    p.createDestination(saved.vcpus);
    // the counter resumes where it stopped: the whole suspension is excluded
    setCounterOffset(p, saved.cnt);
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};
