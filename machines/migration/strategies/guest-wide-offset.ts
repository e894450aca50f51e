// tglx's rule: on a synchronized host the TSC offset is one value for the whole guest, advanced
// by the time that passed: new = old + (now − t_freeze), written identically on every vCPU.
import { offsetCorrected, restoreOffsets, saveOffsets, type OffsetSaved } from './offset-corrected.js';
import type { Strategy } from './types.js';

export const guestWideOffset: Strategy<OffsetSaved, void> = {
  ...offsetCorrected,
  name: 'guest-wide-offset',
  summary:
    "One TSC offset for the whole guest: the boot vCPU's guest TSC at the freeze, advanced by the CLOCK_REALTIME that passed " +
    'at the guest frequency, written identically on every vCPU (so all stay in one TSC generation and the master clock survives); ' +
    'kvmclock through KVM_SET_CLOCK with KVM_CLOCK_REALTIME. Hosts whose CLOCK_REALTIME disagree by D move the guest TSC by D.',
  save(p) {
    return saveOffsets(p, false);
  },
  restore(p, saved) {
    restoreOffsets(p, saved, true);
  },
};
