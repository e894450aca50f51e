// The audit report's shape, one for every architecture: its findings, per-vCPU readings and
// verdict. A module of its own so that what fills the report (measure.ts, the rule table) and
// what builds it (report.ts) depend on it, never on each other.
import type { StrategyRelease } from '../migration/strategies/releases.js';
import type { GuestReport } from '../guest/types.js';
import type { FindingCode } from './thresholds.js';

export type Severity = 'info' | 'warn' | 'fail';

export interface Finding {
  code: FindingCode;
  severity: Severity;
  message: string;
  positions: number[];
  /** guest-model findings: the indices in guest.log of the kernel messages that make them */
  guestLog?: number[];
}

export interface VcpuAudit {
  vcpu: number;
  tscBefore: bigint;
  tscAfter: bigint;
  tscAdvance: bigint;
  expectedAdvance: bigint;
  tscErrorCycles: bigint;
  tscErrorNs: bigint;
}

export interface Arm64Audit {
  cntfrqHz: bigint;
  /** the physical counter (CNTPCT) per vCPU, as vcpus[] gives the virtual one */
  physical: { vcpu: number; before: bigint; after: bigint; advance: bigint; errorTicks: bigint; errorNs: bigint }[];
  /** CNTVCT − CNTPCT on the boot vCPU */
  virtualMinusPhysical: { before: bigint; after: bigint };
  /** guest CNTPCT reads that trapped on the destination (no ECV, non-zero physical offset), and their estimated cost */
  trappedPhysReads: number;
  physTrapping: boolean;
  trapCostNs: bigint;
  trapOverheadNs: bigint;
  /** SET_ONE_REG counter writes the kernel accepted and dropped (KVM_ARM_SET_COUNTER_OFFSET in force) */
  ignoredCounterWrites: number;
}

/** 'in_flight': the migration has no outcome in this log (neither completed nor failed), so it is not judged. */
export type Verdict = 'pass' | 'warn' | 'fail' | 'in_flight';

export interface AuditReport {
  migrationId: string;
  strategy: string;
  /** the VMM release the strategy modelled and its behaviour switches (a log without them: the baseline release) */
  vmm: StrategyRelease;
  /** 'running': the log ends inside the migration (a fork cut it); its verdict is 'in_flight' */
  status: 'completed' | 'failed' | 'running';
  failure?: { step: string; reason: string; position: number | null };
  vmId: string;
  newVmId: string;
  fromHost: string;
  toHost: string;
  profiles: { source: string; destination: string };
  blackoutNs: bigint;
  /** true time from the source stop to the destination resume (to the source resume if it failed) */
  trueElapsedNs: bigint;
  stopTime: bigint;
  resumeTime: bigint;
  guestTscKhz: number;
  vcpus: VcpuAudit[];
  kvmclock: { before: bigint | null; after: bigint | null; advanceNs: bigint | null; errorNs: bigint | null };
  kvmclockMinusTscStepNs: bigint | null;
  skewCycles: { before: bigint; after: bigint };
  masterClock: { before: boolean; after: boolean };
  pvclock: { frequencyHz: bigint | null; guestTscHz: bigint; driftPpb: bigint | null; msPerDay: string | null } | null;
  tscFrequency: { nominalHz: bigint; actualHz: bigint; driftPpb: bigint; msPerDay: string };
  /** arm64 guests: vcpus[] and skewCycles describe the virtual counter (CNTVCT); this the rest */
  arm64?: Arm64Audit;
  /** the simulated Linux guest (null: a guest without a counter rate) */
  guest: GuestReport | null;
  findings: Finding[];
  verdict: Verdict;
}
