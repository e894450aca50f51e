// The strategies by name.
import { clockGuest } from './clock-guest.js';
import { cloudHypervisor } from './cloud-hypervisor.js';
import { firecracker } from './firecracker.js';
import { guestWideOffset } from './guest-wide-offset.js';
import { offsetCorrected } from './offset-corrected.js';
import { offsetDocumented } from './offset-documented.js';
import { qemu } from './qemu.js';
import type { Strategy } from './types.js';

export const STRATEGIES: Record<string, Strategy<any, any>> = {
  qemu,
  firecracker,
  'cloud-hypervisor': cloudHypervisor,
  'offset-documented': offsetDocumented,
  'offset-corrected': offsetCorrected,
  'guest-wide-offset': guestWideOffset,
  'clock-guest': clockGuest,
};

export const STRATEGY_NAMES = Object.keys(STRATEGIES);
export type { Strategy };
