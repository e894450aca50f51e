// What a request may override in an audit: thresholds, and the simulated guest's settings.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import type { GuestOverrides } from '../guest/settings.js';
import type { AuditThresholds } from './thresholds.js';

/** Threshold overrides, and the simulated guest's settings (`guest`). */
export type AuditOverrides = Partial<AuditThresholds> & { guest?: GuestOverrides };

/**
 * The guest settings a request asks for: the old thresholds that judged the guest's reactions
 * (THRESHOLD_TO_GUEST) become the guest settings they stand for; a `guest` value given too wins.
 */
export function guestSettingsOf(th: Partial<AuditThresholds>, guest: GuestOverrides = {}): GuestOverrides {
  const mapped: GuestOverrides = {};
  for (const k of ['watchdogMarginNs', 'watchdogIntervalNs', 'watchdogMaxIntervalNs'] as const) if (th[k] !== undefined) mapped[k] = th[k];
  // softLockupNs = 2 × watchdog_thresh: the nearest whole second of its half, within the kernel's 1..60
  if (th.softLockupNs !== undefined) {
    const s = Number((th.softLockupNs + NSEC_PER_SEC) / (2n * NSEC_PER_SEC));
    mapped.watchdogThreshS = Math.min(60, Math.max(1, s));
  }
  return { ...mapped, ...guest };
}
