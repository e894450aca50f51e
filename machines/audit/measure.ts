// What an architecture's measurement gives the audit: the readings the report shows (the same
// fields on every architecture), how its messages name the guest's counter, the few readings
// only the rules judge, and the recorded events findings cite.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { s64 } from '../../kvm/u64.js';
import { MSRS } from '../../kvm/uapi.js';
import type { AuditReport, VcpuAudit } from './report-types.js';

export interface Citations {
  /**
   * the ioctls that wrote the guest's counter (x86: KVM_SET_TSC_KHZ, IA32_TSC, KVM_VCPU_TSC_OFFSET; arm64:
   * KVM_SET_ONE_REG, KVM_ARM_SET_COUNTER_OFFSET, KVM_SET_DEVICE_ATTR)
   */
  counterWrites: number[];
  /** x86: the guest's reads after the resume (arm64 cites none) */
  readsAfterResume: number[];
  /** x86: KVM_SET_CLOCK and KVM_SET_CLOCK_GUEST */
  kvmclockWrites: number[];
  /** x86: KVM_KVMCLOCK_CTRL */
  kvmclockCtrl: number[];
  /** arm64: the counter writes the kernel accepted and dropped */
  ignoredWrites: number[];
}

export type Measures = Pick<
  AuditReport,
  'guestTscKhz' | 'vcpus' | 'kvmclock' | 'kvmclockMinusTscStepNs' | 'skewCycles' | 'masterClock' | 'pvclock' | 'tscFrequency' | 'arm64'
>;

export interface Measurement extends Measures {
  arch: 'x86' | 'arm64';
  /** how messages name the guest's counter: one, several, and its unit */
  counter: { one: string; many: string; unit: string };
  /** the highest counter across vCPUs as the stop began, the lowest once resumed (null: none) */
  highestBefore: bigint | null;
  lowestAfter: bigint | null;
  cites: Citations;
}

export const NO_CITATIONS: Citations = { counterWrites: [], readsAfterResume: [], kvmclockWrites: [], kvmclockCtrl: [], ignoredWrites: [] };

/** A counter read on one vCPU. */
export interface Reading {
  vcpu: number;
  value: bigint;
}

/**
 * Each vCPU's counter across the stop against what true time predicts: `hz` ticks per second over
 * `elapsedNs` (a vCPU missing after the resume, or no resume: its reading before).
 */
export function counterAdvances(before: readonly Reading[], after: readonly Reading[] | null, hz: bigint, elapsedNs: bigint): VcpuAudit[] {
  const expected = (elapsedNs * hz) / NSEC_PER_SEC;
  return before.map((b) => {
    const tscAfter = after?.find((x) => x.vcpu === b.vcpu)?.value ?? b.value;
    const advance = s64(tscAfter - b.value);
    const err = advance - expected;
    return {
      vcpu: b.vcpu,
      tscBefore: b.value,
      tscAfter,
      tscAdvance: advance,
      expectedAdvance: expected,
      tscErrorCycles: err,
      tscErrorNs: hz ? (err * NSEC_PER_SEC) / hz : 0n,
    };
  });
}

/** Whether KVM_SET_MSRS wrote one of these MSRs in its first `count` entries (an index as recorded: number, name or decimal string). */
export function setsMsr(arg: unknown, names: readonly (keyof typeof MSRS)[], count = Infinity): boolean {
  const entries = (arg as { entries?: { index?: unknown }[] } | null)?.entries ?? [];
  return entries.slice(0, count).some((e) => names.some((n) => e.index === MSRS[n] || e.index === n || e.index === String(MSRS[n])));
}

export const highest = (xs: readonly bigint[]): bigint | null => (xs.length ? xs.reduce((a, b) => (a > b ? a : b)) : null);
export const lowest = (xs: readonly bigint[]): bigint | null => (xs.length ? xs.reduce((a, b) => (a < b ? a : b)) : null);
