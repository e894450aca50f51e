// The arm64 offset procedure with KVM_ARM_SET_COUNTER_OFFSET (6.4+): one VM-wide offset so the
// guest counter continues from its saved value plus the CLOCK_REALTIME that passed.
import { hostRealtimeNs } from '../../../kvm/host.js';
import { StepFailure } from '../port.js';
import { saveCounter, setCounterOffset, ticksIn, type OffsetSaved } from './arm64-common.js';
import { resumeSource } from './common.js';
import type { Strategy } from './types.js';

export const counterOffsetArm64: Strategy<OffsetSaved, void> = {
  name: 'counter-offset',
  arch: 'arm64',
  summary:
    'The offset procedure with KVM_ARM_SET_COUNTER_OFFSET (6.4+): the destination sets one VM-wide offset, for both counters, ' +
    'so the guest counter continues from its saved value plus the CLOCK_REALTIME that passed; no per-vCPU counter writes.',
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    return saveCounter(p);
  },
  restore(p, saved) {
    if (p.host('destination').counterHz !== p.host('source').counterHz) {
      throw new StepFailure(
        'restore',
        `the destination's CNTFRQ (${p.host('destination').counterHz} Hz) differs from the source's (${p.host('source').counterHz} Hz)`,
        null,
      );
    }
    p.createDestination(saved.vcpus);
    const elapsed = hostRealtimeNs(p.host('destination'), p.now()) - saved.realtime;
    setCounterOffset(p, saved.cnt + ticksIn(elapsed > 0n ? elapsed : 0n, p.host('source').counterHz));
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};
