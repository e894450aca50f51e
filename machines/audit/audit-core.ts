// One audit of one migration, given what the guest brought to its stop (machines/life computes
// that; audit.ts asks it first). Kept apart so the guest's life can audit each of its stops in
// turn without the audit asking the life again.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import type { EvolveOptions } from '../vm/evolve.js';
import { guestSettings } from '../guest/settings.js';
import type { GuestCarry } from '../guest/types.js';
import { frameOf } from './frame.js';
import { guestOf } from './guest.js';
import { measureArm64 } from './measure-arm64.js';
import { measureX86 } from './measure-x86.js';
import { buildReport, type AuditReport } from './report.js';
import { judge } from './rules.js';
import type { AuditSource } from './source.js';
import { guestSettingsOf, type AuditOverrides } from './overrides.js';
import { DEFAULT_THRESHOLDS } from './thresholds.js';

/** Audit one migration from a source, the guest carried to its stop (null: fresh at the stop, its wall clock right). */
export function auditOnce(
  src: AuditSource,
  migrationId: string,
  thresholds: AuditOverrides = {},
  opts: EvolveOptions = {},
  carry: GuestCarry | null = null,
): AuditReport | null {
  const { guest: guestOverrides, ...rest } = thresholds;
  const settings = guestSettings(guestSettingsOf(rest, guestOverrides));
  // tsc_jump's fail severity stays at 2 × watchdog_thresh, the guest's
  const th = { ...DEFAULT_THRESHOLDS, ...rest, softLockupNs: BigInt(settings.watchdogThreshS) * 2n * NSEC_PER_SEC };
  const f = frameOf(src, migrationId);
  if (!f) return null;
  const m = f.before.rec.arm64 ? measureArm64(f, th) : measureX86(f);
  const g = guestOf(f, settings, carry);
  return buildReport(f, m, judge(f, m, th, g, settings), opts, g);
}
