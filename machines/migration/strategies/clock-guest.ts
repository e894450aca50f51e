// The cleanup proposal's full procedure: offsets as offset-corrected, and kvmclock through
// KVM_GET_CLOCK_GUEST / KVM_SET_CLOCK_GUEST on the boot vCPU where the kernel has them,
// falling back to KVM_SET_CLOCK {guest_src, time_src, KVM_CLOCK_REALTIME} where it does not.
import { offsetCorrected, restoreOffsets, saveOffsets, setClockRealtime, type OffsetSaved } from './offset-corrected.js';
import type { Strategy } from './types.js';

export const clockGuest: Strategy<OffsetSaved, void> = {
  ...offsetCorrected,
  name: 'clock-guest',
  summary:
    "The proposal's procedure in full: KVM_GET_CLOCK_GUEST of the boot vCPU with the offsets, scaling-aware offsets on the " +
    'destination, then KVM_SET_CLOCK_GUEST so kvmclock continues exactly the saved pvclock; on kernels without it (or without a ' +
    'master clock) the documented fallback KVM_SET_CLOCK with KVM_CLOCK_REALTIME. The offsets take ΔT from CLOCK_REALTIME, as ' +
    'offset-corrected: hosts whose CLOCK_REALTIME disagree by D move the guest TSC by D.',
  save(p) {
    return saveOffsets(p, true);
  },
  restore(p, saved) {
    if (p.inPlace) return;
    restoreOffsets(p, saved, false);
    const boot = saved.vcpus[0]?.id;
    if (saved.pvti && boot !== undefined) {
      const r = p.ioctl('destination', boot, 'KVM_SET_CLOCK_GUEST', saved.pvti);
      if (r.ret === 0) return;
    }
    setClockRealtime(p, saved.src);
  },
};
