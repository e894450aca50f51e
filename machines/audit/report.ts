// The audit report built: the frame (which migration, when, where), the measurement, the
// findings and the verdict, in the one shape of report-types.ts (what each field means, for the
// user documentation, is fields.ts: docs/audit.md is generated from REPORT_FIELDS).
import { baselineRelease } from '../migration/strategies/releases.js';
import type { EvolveOptions } from '../vm/evolve.js';
import type { GuestReport } from '../guest/types.js';
import type { AuditFrame } from './frame.js';
import type { Measures } from './measure.js';
import type { AuditReport, Finding, Verdict } from './report-types.js';

export type { Arm64Audit, AuditReport, Finding, Severity, VcpuAudit, Verdict } from './report-types.js';

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
    profiles: opts.profile
      ? { source: opts.profile.name, destination: opts.profile.name }
      : { source: f.before.host.profile, destination: dstHost?.profile ?? '' },
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
