// The audit report, one shape for every architecture: the frame (which migration, when, where),
// the measurement, the findings and the verdict; and what each of its fields means, for the
// user documentation (docs/audit.md is generated from REPORT_FIELDS).
import { baselineRelease, type StrategyRelease } from '../migration/strategies/releases.js';
import type { EvolveOptions } from '../vm/evolve.js';
import type { GuestReport } from '../guest/model.js';
import type { AuditFrame } from './frame.js';
import type { Measures } from './measure.js';
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

/** The verdict: in_flight without an outcome, else the worst severity found (pass when none warns or fails). */
export function verdictOf(status: AuditReport['status'], findings: readonly Finding[]): Verdict {
  if (status === 'running') return 'in_flight';
  return findings.some((f) => f.severity === 'fail') ? 'fail' : findings.some((f) => f.severity === 'warn') ? 'warn' : 'pass';
}

/** The report of one migration: its frame, an architecture's measures and the findings. */
export function buildReport(f: AuditFrame, m: Measures, findings: Finding[], opts: EvolveOptions = {}, guest: GuestReport | null = null): AuditReport {
  const { mig } = f;
  const dstHost = f.src.host(mig.toHost);
  return {
    migrationId: mig.migrationId,
    strategy: mig.strategy,
    vmm: mig.release ? { strategy: mig.strategy, release: mig.release, switches: { ...mig.switches } } : baselineRelease(mig.strategy),
    status: mig.status,
    ...(mig.failure ? { failure: { step: mig.failure.step, reason: mig.failure.reason, position: f.failurePosition } } : {}),
    vmId: mig.vmId,
    newVmId: mig.newVmId,
    fromHost: mig.fromHost,
    toHost: mig.toHost,
    profiles: opts.profile ? { source: opts.profile.name, destination: opts.profile.name } : { source: f.before.host.profile, destination: dstHost?.profile ?? '' },
    blackoutNs: BigInt(String(mig.params.blackoutNs)),
    trueElapsedNs: f.elapsedNs,
    stopTime: f.stopTime,
    resumeTime: f.resumeTime,
    guestTscKhz: m.guestTscKhz,
    vcpus: m.vcpus,
    kvmclock: m.kvmclock,
    kvmclockMinusTscStepNs: m.kvmclockMinusTscStepNs,
    skewCycles: m.skewCycles,
    masterClock: m.masterClock,
    pvclock: m.pvclock,
    tscFrequency: m.tscFrequency,
    ...(m.arm64 ? { arm64: m.arm64 } : {}),
    guest,
    findings,
    verdict: verdictOf(mig.status, findings),
  };
}
