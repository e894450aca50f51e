// The strategies by name, per architecture: the same VMM name means that VMM's own way on each.
import { clockGuest } from './clock-guest.js';
import { cloudHypervisorArm64 } from './cloud-hypervisor-arm64.js';
import { cloudHypervisor } from './cloud-hypervisor.js';
import { counterOffsetArm64 } from './counter-offset.js';
import { crosvmArm64 } from './crosvm-arm64.js';
import { crosvm } from './crosvm.js';
import { firecrackerArm64 } from './firecracker-arm64.js';
import { firecracker } from './firecracker.js';
import { guestWideOffset } from './guest-wide-offset.js';
import { offsetCorrected } from './offset-corrected.js';
import { offsetDocumented } from './offset-documented.js';
import { qemuArm64 } from './qemu-arm64.js';
import { qemu } from './qemu.js';
import type { Strategy } from './types.js';

export type AnyStrategy = Strategy<any, any>;

export const STRATEGIES: Record<string, { x86?: AnyStrategy; arm64?: AnyStrategy }> = {
  qemu: { x86: qemu, arm64: qemuArm64 },
  firecracker: { x86: firecracker, arm64: firecrackerArm64 },
  'cloud-hypervisor': { x86: cloudHypervisor, arm64: cloudHypervisorArm64 },
  crosvm: { x86: crosvm, arm64: crosvmArm64 },
  'offset-documented': { x86: offsetDocumented },
  'offset-corrected': { x86: offsetCorrected },
  'guest-wide-offset': { x86: guestWideOffset },
  'clock-guest': { x86: clockGuest },
  'counter-offset': { arm64: counterOffsetArm64 },
};

export const STRATEGY_NAMES = Object.keys(STRATEGIES);

/** The x86 strategies, in the order the demo compares them. */
export const X86_STRATEGY_NAMES = STRATEGY_NAMES.filter((n) => STRATEGIES[n]!.x86);

export function strategyFor(name: string, arch: 'x86' | 'arm64'): AnyStrategy | undefined {
  return STRATEGIES[name]?.[arch];
}

export type { Strategy };
