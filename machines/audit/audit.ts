// The audit of a migration, from the log alone: the guest clocks rebuilt at the stop and at the
// resume, compared with true elapsed time, and the findings they predict for the guest, each
// citing the recorded events that caused it.
import { hvclockToHz, scaleTsc } from '../../kvm/arith.js';
import type { HostState } from '../../kvm/host.js';
import { MSRS } from '../../kvm/uapi.js';
import { s64 } from '../../kvm/u64.js';
import type { EventStore } from '../../store/types.js';
import type { MigrationState } from '../migration/state.js';
import { vmStreamId, type IoctlIssuedData } from '../vm/events.js';
import type { EvolveOptions, VmRecord } from '../vm/evolve.js';
import { guestClocksAt, guestCountersAt } from '../vm/view.js';
import { arm64Ctx } from '../vm/evolve.js';
import { physCounterTrapped } from '../../kvm/arm64/timer.js';
import { sampleHost } from '../../kvm/host.js';
import { DEFAULT_THRESHOLDS, type AuditThresholds, type FindingCode } from './thresholds.js';
import { logAuditSource, type AuditSource, type LoggedEvent } from './source.js';

export type Severity = 'info' | 'warn' | 'fail';

export interface Finding {
  code: FindingCode;
  severity: Severity;
  message: string;
  positions: number[];
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

export interface AuditReport {
  migrationId: string;
  strategy: string;
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
  findings: Finding[];
  verdict: Verdict;
}

/** 'in_flight': the migration has no outcome in this log (neither completed nor failed), so it is not judged. */
export type Verdict = 'pass' | 'warn' | 'fail' | 'in_flight';

function verdictOf(mig: MigrationState, findings: Finding[]): Verdict {
  if (mig.status === 'running') return 'in_flight';
  return findings.some((f) => f.severity === 'fail') ? 'fail' : findings.some((f) => f.severity === 'warn') ? 'warn' : 'pass';
}

/**
 * A migration the log ends inside (only a fork cut inside its commit leaves one): what it
 * reached, citing its last recorded event. Nothing after the stop is judged.
 */
function inFlightFinding(mig: MigrationState, migEvents: LoggedEvent[]): Finding | null {
  if (mig.status !== 'running') return null;
  const last = migEvents.at(-1)!;
  const where = mig.phase ? `in its ${mig.phase} phase` : 'before its first phase';
  return {
    code: 'migration_in_flight',
    severity: 'info',
    message: `the log ends ${where} (the migration's last event is at position ${last.position}): it neither completed nor failed, so only the source before the stop is audited`,
    positions: [last.position],
  };
}

const abs = (x: bigint) => (x < 0n ? -x : x);

/** The error of largest magnitude (0 for none), its sign kept: the worst vCPU's. */
export function worstError(errors: readonly bigint[]): bigint {
  return errors.reduce((w, e) => (abs(e) > abs(w) ? e : w), 0n);
}
const msPerDay = (ppb: bigint) => (Number(ppb) * 86_400 / 1e9 * 1000).toFixed(3);
/** The drift per day in the unit that reads best, for messages: "28.771 ms/day", "10.231 h/day". */
const perDay = (ppb: bigint) => {
  const ms = (Number(ppb) * 86_400) / 1e6;
  const a = Math.abs(ms);
  const [v, unit] = a >= 3_600_000 ? [ms / 3_600_000, 'h'] : a >= 60_000 ? [ms / 60_000, 'min'] : a >= 1_000 ? [ms / 1_000, 's'] : [ms, 'ms'];
  return `${v.toFixed(3)} ${unit}/day`;
};
const fmtNs = (ns: bigint) => {
  const a = Number(abs(ns));
  const sign = ns < 0n ? '−' : '';
  if (a >= 1e9) return `${sign}${(a / 1e9).toFixed(3)} s`;
  if (a >= 1e6) return `${sign}${(a / 1e6).toFixed(3)} ms`;
  if (a >= 1e3) return `${sign}${(a / 1e3).toFixed(3)} µs`;
  return `${sign}${a} ns`;
};

/** Whether an ioctl wrote a guest TSC: a host IA32_TSC write (by number or name) or a KVM_VCPU_TSC_OFFSET. */
function writesTsc(d: IoctlIssuedData): boolean {
  if (d.ioctl === 'KVM_SET_MSRS') {
    const entries = (d.arg as { entries?: { index?: unknown }[] } | null)?.entries ?? [];
    return entries.some((e) => e.index === MSRS.MSR_IA32_TSC || e.index === 'MSR_IA32_TSC' || e.index === String(MSRS.MSR_IA32_TSC));
  }
  if (d.ioctl === 'KVM_SET_DEVICE_ATTR') {
    const attr = (d.arg as { attr?: unknown } | null)?.attr;
    return attr === 0 || attr === 'KVM_VCPU_TSC_OFFSET' || attr === '0';
  }
  return false;
}

/** The rate the guest TSC ticks at between two clock updates: the host counter's actual Hz through the vCPU's ratio. */
export function guestTscTickHz(rec: VmRecord, host: HostState): bigint {
  const v = rec.x86?.vcpus[0];
  if (!v || !host.x86) return 0n;
  return scaleTsc(host.actualCounterHz, v.l1TscScalingRatio, host.x86.fracBits);
}

/**
 * The guest TSC's real rate on a host, over many ticks. A vCPU in software catch-up
 * (tsc_always_catchup) is pulled to compute_guest_tsc() at every tick's exit: without a master
 * clock to compute_guest_tsc(now), its virtual rate on the host's raw clock; with one to
 * compute_guest_tsc(master_kernel_ns), the same target every time, so it keeps the host's rate.
 */
export function guestTscHz(rec: VmRecord, host: HostState): bigint {
  const v = rec.x86?.vcpus[0];
  if (!v || !host.x86) return 0n;
  if (v.tscAlwaysCatchup) {
    if (rec.x86!.useMasterClock) return guestTscTickHz(rec, host);
    const virtualHz = BigInt(v.virtualTscKhz) * 1000n;
    // raw_ns follows the host TSC's real rate when it is the clocksource
    return host.counterClocksource ? (virtualHz * host.actualCounterHz) / host.counterHz : virtualHz;
  }
  if (v.tscCatchup) return BigInt(v.virtualTscKhz) * 1000n;
  return guestTscTickHz(rec, host);
}

/**
 * kvmclock's drift (ppb) for a pvclock encoding pvHz: it runs at the guest TSC's rate between
 * page updates over pvHz. Under catch-up that is the host's rate, not the caught-up one: every
 * tick's kvm_guest_time_update() rebases the page on the host clock (or, with the master clock,
 * the TSC is not caught up past the reference point), so kvmclock keeps the host's time.
 */
export function pvclockDriftPpb(rec: VmRecord, host: HostState, pvHz: bigint): bigint {
  const v = rec.x86?.vcpus[0];
  const hz = v?.tscAlwaysCatchup ? guestTscTickHz(rec, host) : guestTscHz(rec, host);
  return ((hz - pvHz) * 1_000_000_000n) / pvHz;
}

interface Side {
  rec: VmRecord;
  host: HostState;
  time: bigint;
}

function sideAt(src: AuditSource, vmId: string, version: number, time: bigint): Side | null {
  const rec = src.vmAt(vmId, version);
  if (!rec) return null;
  const host = src.host(rec.hostId, time)!;
  return { rec, host, time };
}

/** Audit one migration from the log (optionally as it would have gone under another kernel profile). */
export function auditMigration(
  store: EventStore,
  migrationId: string,
  thresholds: Partial<AuditThresholds> = {},
  opts: EvolveOptions = {},
): AuditReport | null {
  return auditFrom(logAuditSource(store, opts), migrationId, thresholds, opts);
}

/** Audit one migration from what a source holds of the log. */
export function auditFrom(
  src: AuditSource,
  migrationId: string,
  thresholds: Partial<AuditThresholds> = {},
  opts: EvolveOptions = {},
): AuditReport | null {
  const th = { ...DEFAULT_THRESHOLDS, ...thresholds };
  const m = src.migration(migrationId);
  if (!m) return null;
  const { state: mig, events: migEvents } = m;
  const phase = (name: string) => mig.phases.find((p) => p.phase === name);
  const pausing = phase('pausing');
  const endEvent = migEvents.find((e) => e.type === 'MigrationCompleted' || e.type === 'MigrationFailed');

  // Before: the source as the stop began (a migration cut before its first phase: as it started).
  // After: the destination as its guest resumed, or the source once it resumed after a failure.
  const stopTime = BigInt(pausing?.time ?? mig.startedAt);
  const srcVersion = pausing?.marks?.source.version ?? src.streamVersion(vmStreamId(mig.vmId), migEvents[0]!.position);
  const before = sideAt(src, mig.vmId, srcVersion, stopTime)!;
  let after: Side | null = null;
  if (mig.status === 'completed') {
    const v = phase('verifying')!;
    after = sideAt(src, mig.newVmId, v.marks!.destination!.version, BigInt(v.time));
  } else if (endEvent) {
    const srcVersion = src.streamVersion(vmStreamId(mig.vmId), endEvent.position);
    after = sideAt(src, mig.vmId, srcVersion, endEvent.time);
  }

  // The recorded VM events of this migration, for citations.
  const vmEventsOf = (vmId: string) => src.vmEvents(vmId, migEvents[0]!.position, endEvent?.position);
  const vmEvents = [
    ...vmEventsOf(mig.vmId),
    ...(mig.newVmId !== mig.vmId && (mig.status === 'completed' || src.streamVersion(vmStreamId(mig.newVmId)) > 0) ? vmEventsOf(mig.newVmId) : []),
  ].sort((a, b) => a.position - b.position);
  const ioctls = (pred: (d: IoctlIssuedData) => boolean) =>
    vmEvents.filter((e) => e.type === 'IoctlIssued' && pred(e.data as IoctlIssuedData)).map((e) => e.position);
  const failurePosition = mig.failure?.ref ? src.positionOfVersion(mig.failure.ref.streamId, mig.failure.ref.version) : null;
  const inFlight = inFlightFinding(mig, migEvents);
  if (before.rec.arm64) return auditArm64({ src, mig, th, opts, before, after, stopTime, vmEvents, ioctls, failurePosition, inFlight });
  const tscWrites = ioctls((d) => d.ioctl === 'KVM_SET_TSC_KHZ' || writesTsc(d));
  const clockWrites = ioctls((d) => d.ioctl === 'KVM_SET_CLOCK' || d.ioctl === 'KVM_SET_CLOCK_GUEST');
  const ctrl = ioctls((d) => d.ioctl === 'KVM_KVMCLOCK_CTRL');
  const guestReadsAfter = vmEvents.filter((e) => e.type === 'GuestExecuted' && after && e.time >= after.time).map((e) => e.position);

  const elapsed = (after?.time ?? stopTime) - stopTime;
  const khz = before.rec.x86?.vcpus[0]?.virtualTscKhz ?? 0;
  const g0 = guestClocksAt(before.rec, before.host, stopTime);
  const g1 = after ? guestClocksAt(after.rec, after.host, after.time) : null;

  const expected = (elapsed * BigInt(khz)) / 1_000_000n;
  const vcpus: VcpuAudit[] = g0.vcpus.map((b) => {
    const a = g1?.vcpus.find((x) => x.vcpu === b.vcpu);
    const tscAfter = a?.tsc ?? b.tsc;
    const advance = s64(tscAfter - b.tsc);
    const err = advance - expected;
    return {
      vcpu: b.vcpu,
      tscBefore: b.tsc,
      tscAfter,
      tscAdvance: advance,
      expectedAdvance: expected,
      tscErrorCycles: err,
      tscErrorNs: khz ? (err * 1_000_000n) / BigInt(khz) : 0n,
    };
  });
  // kvmclock as the boot vCPU's guest reads it through its pvclock page; a guest that never
  // enabled kvmclock does not use it, so nothing is judged about it
  const kvmBefore = g0.vcpus[0]?.kvmclock ?? null;
  const kvmAfter = g1 ? (g1.vcpus[0]?.kvmclock ?? null) : null;
  const kvmAdvance = kvmBefore !== null && kvmAfter !== null ? s64(kvmAfter - kvmBefore) : null;
  const kvmError = kvmAdvance !== null ? kvmAdvance - elapsed : null;
  const step = kvmError !== null && vcpus[0] ? kvmError - vcpus[0].tscErrorNs : null;
  const skew = (xs: bigint[]) => (xs.length ? xs.reduce((a, b) => (a > b ? a : b)) - xs.reduce((a, b) => (a < b ? a : b)) : 0n);
  const skewBefore = skew(g0.vcpus.map((v) => v.tsc));
  const skewAfter = g1 ? skew(g1.vcpus.map((v) => v.tsc)) : skewBefore;
  const masterBefore = before.rec.x86?.useMasterClock ?? false;
  const masterAfter = after?.rec.x86?.useMasterClock ?? false;

  // Rates: the guest TSC's real rate against its nominal one, and kvmclock's pvclock rate against the TSC's.
  const nominalHz = BigInt(khz) * 1000n;
  const side = after ?? before;
  const tscHz = guestTscHz(side.rec, side.host);
  const tscDriftPpb = nominalHz ? ((tscHz - nominalHz) * 1_000_000_000n) / nominalHz : 0n;
  const page = side.rec.x86?.vcpus[0]?.pvti;
  const pvHz = page ? hvclockToHz(page.mul, page.shift) : null;
  // kvmclock runs fast when the pvclock encodes a lower frequency than the TSC really has
  const pvDriftPpb = pvHz && tscHz ? pvclockDriftPpb(side.rec, side.host, pvHz) : null;

  const findings: Finding[] = [];
  const add = (code: FindingCode, severity: Severity, message: string, positions: number[]) =>
    findings.push({ code, severity, message, positions: [...new Set(positions)].sort((a, b) => a - b) });

  if (inFlight) findings.push(inFlight);
  if (mig.status === 'failed' && mig.failure) {
    add('migration_failed', 'fail', `${mig.failure.step} failed: ${mig.failure.reason}; the source VM resumed`, failurePosition ? [failurePosition] : []);
  }
  if (after) {
    for (const v of vcpus) {
      if (v.tscAdvance < 0n) add('time_backwards', 'fail', `vCPU ${v.vcpu}'s TSC went back by ${-v.tscAdvance} cycles`, [...tscWrites, ...guestReadsAfter]);
    }
    const lost = vcpus.filter((v) => v.tscErrorNs < -th.clockErrorNs);
    if (lost.length) {
      const worst = lost.reduce((a, b) => (a.tscErrorNs < b.tscErrorNs ? a : b));
      add('tsc_lost_time', 'warn', `the guest TSC lost ${fmtNs(-worst.tscErrorNs)} of the ${fmtNs(elapsed)} that passed (vCPU ${lost.map((v) => v.vcpu).join(', ')})`, tscWrites);
    }
    const jumped = vcpus.filter((v) => v.tscErrorNs > th.clockErrorNs);
    if (jumped.length) {
      const worst = jumped.reduce((a, b) => (a.tscErrorNs > b.tscErrorNs ? a : b));
      add('tsc_jump', worst.tscErrorNs > th.softLockupNs ? 'fail' : 'warn', `the guest TSC jumped ${fmtNs(worst.tscErrorNs)} ahead of true time (vCPU ${jumped.map((v) => v.vcpu).join(', ')})`, tscWrites);
    }
    if (kvmAdvance !== null && kvmAdvance < 0n) add('time_backwards', 'fail', `kvmclock went back by ${fmtNs(-kvmAdvance)}`, clockWrites);
    const minAfter = g1 && g1.vcpus.length ? g1.vcpus.map((v) => v.tsc).reduce((a, b) => (a < b ? a : b)) : null;
    const maxBefore = g0.vcpus.length ? g0.vcpus.map((v) => v.tsc).reduce((a, b) => (a > b ? a : b)) : null;
    if (minAfter !== null && maxBefore !== null && minAfter < maxBefore && !vcpus.some((v) => v.tscAdvance < 0n)) {
      add('time_backwards', 'fail', `across vCPUs the guest TSC reads ${maxBefore - minAfter} cycles lower after than before`, [...tscWrites, ...guestReadsAfter]);
    }
    if (kvmError !== null && kvmError < -th.clockErrorNs) {
      add('kvmclock_lost_time', 'warn', `kvmclock lost ${fmtNs(-kvmError)} of the ${fmtNs(elapsed)} that passed`, clockWrites);
      add('wall_clock_behind', 'warn', `the guest wall clock (kvmclock-based) is ${fmtNs(-kvmError)} behind real time until NTP corrects it`, clockWrites);
    }
    if (kvmError !== null && kvmError > th.clockErrorNs) add('kvmclock_jump', 'warn', `kvmclock jumped ${fmtNs(kvmError)} ahead of true time`, clockWrites);
    if (step !== null && abs(step) > th.clockStepNs) {
      add('kvmclock_tsc_step', 'warn', `kvmclock moved ${fmtNs(step)} ${step > 0n ? 'ahead of' : 'behind'} the TSC`, [...clockWrites, ...tscWrites]);
      // The watchdog interval that spans the migration: up to one period before the stop plus what kvmclock showed across it.
      const interval = th.watchdogIntervalNs + (kvmAdvance !== null && kvmAdvance > 0n ? kvmAdvance : 0n);
      if (abs(step) > th.watchdogMarginNs && interval < th.watchdogMaxIntervalNs) {
        add('watchdog_tsc_unstable', 'fail', `a ${fmtNs(abs(step))} kvmclock−TSC step inside a ${fmtNs(interval)} watchdog interval exceeds the ${fmtNs(th.watchdogMarginNs)} margin: the guest marks its TSC unstable`, [...clockWrites, ...tscWrites]);
      }
    }
    if (skewAfter > skewBefore + th.skewCycles) {
      const claimsStable = masterAfter;
      add('vcpu_skew', claimsStable ? 'fail' : 'warn', `guest TSCs differ by ${skewAfter} cycles across vCPUs (${skewBefore} before)${claimsStable ? ' while the pvclock claims TSC_STABLE' : ''}`, tscWrites);
    }
    if (masterBefore && !masterAfter) add('master_clock_lost', 'warn', 'the master clock was lost: kvmclock no longer claims PVCLOCK_TSC_STABLE', tscWrites);
    const jump = kvmAdvance ?? (vcpus[0] && khz ? (vcpus[0].tscAdvance * 1_000_000n) / BigInt(khz) : null);
    if (jump !== null && jump > th.softLockupNs) {
      // told only if, after the resume, the guest's watchdog found PVCLOCK_GUEST_STOPPED (KVM_KVMCLOCK_CTRL in this migration)
      const stopped = vmEvents.some(
        (e) => e.type === 'GuestExecuted' && (e.data as { op?: string; result?: { value?: string } }).op === 'checkPaused' && (e.data as { result?: { value?: string } }).result?.value === '1',
      );
      add('soft_lockup_risk', stopped ? 'info' : 'fail', `the guest's clock jumps ${fmtNs(jump)} at resume ${stopped ? 'with PVCLOCK_GUEST_STOPPED set: the watchdogs are told' : 'without PVCLOCK_GUEST_STOPPED: soft lockup and RCU stall reports'}`, [...clockWrites, ...ctrl]);
    }
  }
  if (abs(tscDriftPpb) > th.driftPpb) {
    add('frequency_drift', abs(tscDriftPpb) > th.driftWarnPpb ? 'warn' : 'info', `the guest TSC runs at ${tscHz} Hz for a nominal ${nominalHz} Hz: ${(Number(tscDriftPpb) / 1000).toFixed(3)} ppm, ${perDay(tscDriftPpb)}`, tscWrites);
  }
  if (pvDriftPpb !== null && abs(pvDriftPpb) > th.driftPpb) {
    add('frequency_drift', abs(pvDriftPpb) > th.driftWarnPpb ? 'warn' : 'info', `kvmclock's pvclock encodes ${pvHz} Hz for a guest TSC at ${tscHz} Hz: kvmclock drifts ${(Number(pvDriftPpb) / 1000).toFixed(3)} ppm, ${perDay(pvDriftPpb)}, against the TSC`, [...clockWrites, ...tscWrites]);
  }
  const verdict = verdictOf(mig, findings);
  const srcHost = before.host;
  const dstHost = src.host(mig.toHost);
  return {
    migrationId,
    strategy: mig.strategy,
    status: mig.status,
    ...(mig.failure ? { failure: { step: mig.failure.step, reason: mig.failure.reason, position: failurePosition } } : {}),
    vmId: mig.vmId,
    newVmId: mig.newVmId,
    fromHost: mig.fromHost,
    toHost: mig.toHost,
    profiles: opts.profile ? { source: opts.profile.name, destination: opts.profile.name } : { source: srcHost.profile, destination: dstHost?.profile ?? '' },
    blackoutNs: BigInt(String(mig.params.blackoutNs)),
    trueElapsedNs: elapsed,
    stopTime,
    resumeTime: after?.time ?? stopTime,
    guestTscKhz: khz,
    vcpus,
    kvmclock: { before: kvmBefore, after: kvmAfter, advanceNs: kvmAdvance, errorNs: kvmError },
    kvmclockMinusTscStepNs: step,
    skewCycles: { before: skewBefore, after: skewAfter },
    masterClock: { before: masterBefore, after: masterAfter },
    pvclock: page ? { frequencyHz: pvHz, guestTscHz: tscHz, driftPpb: pvDriftPpb, msPerDay: pvDriftPpb !== null ? msPerDay(pvDriftPpb) : null } : null,
    tscFrequency: { nominalHz, actualHz: tscHz, driftPpb: tscDriftPpb, msPerDay: msPerDay(tscDriftPpb) },
    findings,
    verdict,
  };
}


interface Arm64AuditInput {
  src: AuditSource;
  mig: MigrationState;
  th: AuditThresholds;
  opts: EvolveOptions;
  before: Side;
  after: Side | null;
  stopTime: bigint;
  vmEvents: LoggedEvent[];
  ioctls: (pred: (d: IoctlIssuedData) => boolean) => number[];
  failurePosition: number | null;
  inFlight: Finding | null;
}

/** The arm64 audit: the virtual and physical counters against true time, on the same frame as x86. */
function auditArm64(a: Arm64AuditInput): AuditReport {
  const { mig, th, before, after, stopTime } = a;
  const hz = before.rec.host.counterHz;
  const elapsed = (after?.time ?? stopTime) - stopTime;
  const expected = (elapsed * hz) / 1_000_000_000n;
  const toNs = (ticks: bigint) => (ticks * 1_000_000_000n) / hz;
  const c0 = guestCountersAt(before.rec, before.host, stopTime);
  const c1 = after ? guestCountersAt(after.rec, after.host, after.time) : c0;
  const vcpus: VcpuAudit[] = c0.map((b) => {
    const x = c1.find((v) => v.vcpu === b.vcpu) ?? b;
    const advance = s64(x.cntvct - b.cntvct);
    const err = advance - expected;
    return { vcpu: b.vcpu, tscBefore: b.cntvct, tscAfter: x.cntvct, tscAdvance: advance, expectedAdvance: expected, tscErrorCycles: err, tscErrorNs: toNs(err) };
  });
  const physical = c0.map((b) => {
    const x = c1.find((v) => v.vcpu === b.vcpu) ?? b;
    const advance = s64(x.cntpct - b.cntpct);
    return { vcpu: b.vcpu, before: b.cntpct, after: x.cntpct, advance, errorTicks: advance - expected, errorNs: toNs(advance - expected) };
  });
  const skew = (xs: bigint[]) => (xs.length ? xs.reduce((p, q) => (p > q ? p : q)) - xs.reduce((p, q) => (p < q ? p : q)) : 0n);
  const skewBefore = skew(c0.map((v) => v.cntvct));
  const skewAfter = skew(c1.map((v) => v.cntvct));
  const vmp = { before: c0[0] ? s64(c0[0].cntvct - c0[0].cntpct) : 0n, after: c1[0] ? s64(c1[0].cntvct - c1[0].cntpct) : 0n };
  const counterWrites = a.ioctls((d) => d.ioctl === 'KVM_SET_ONE_REG' || d.ioctl === 'KVM_ARM_SET_COUNTER_OFFSET' || d.ioctl === 'KVM_SET_DEVICE_ATTR');
  const ignored = a.vmEvents
    .filter((e) => ((e.data as { trace?: { tp: string }[] }).trace ?? []).some((t) => t.tp === 'clockledger_arm_counter_write_ignored'))
    .map((e) => e.position);
  const dstVm = (after ?? before).rec.arm64!;
  // the guest's CNTPCT reads during the migration that trapped (the verification reads included)
  const trapped = a.vmEvents.filter((e) => e.type === 'GuestExecuted' && (e.data as { result?: { trapped?: boolean } }).result?.trapped === true).length;
  const ctx = arm64Ctx((after ?? before).rec, sampleHost((after ?? before).host, (after ?? before).time));
  const trapping = dstVm.vcpus.some((v) => physCounterTrapped(ctx, dstVm, v));
  const trapCostNs = th.trapCostNs;

  const findings: Finding[] = [];
  const add = (code: FindingCode, severity: Severity, message: string, positions: number[]) =>
    findings.push({ code, severity, message, positions: [...new Set(positions)].sort((x, y) => x - y) });
  if (a.inFlight) findings.push(a.inFlight);
  if (mig.status === 'failed' && mig.failure) add('migration_failed', 'fail', `${mig.failure.step} failed: ${mig.failure.reason}; the source VM resumed`, a.failurePosition ? [a.failurePosition] : []);
  if (after) {
    for (const v of vcpus) if (v.tscAdvance < 0n) add('time_backwards', 'fail', `vCPU ${v.vcpu}'s virtual counter went back by ${-v.tscAdvance} ticks`, counterWrites);
    for (const v of physical) if (v.advance < 0n) add('time_backwards', 'fail', `vCPU ${v.vcpu}'s physical counter went back by ${-v.advance} ticks`, counterWrites);
    const worst = worstError(vcpus.map((v) => v.tscErrorNs));
    if (worst < -th.clockErrorNs) add('counter_lost_time', 'warn', `the guest's virtual counter lost ${fmtNs(-worst)} of the ${fmtNs(elapsed)} that passed`, counterWrites);
    if (worst > th.clockErrorNs) add('counter_jump', 'warn', `the guest's virtual counter jumped ${fmtNs(worst)} ahead of true time`, counterWrites);
    // What the guest sees at resume is the whole advance at once, however right it is.
    const jump = toNs(vcpus.reduce((m, v) => (v.tscAdvance > m ? v.tscAdvance : m), 0n));
    if (jump > th.softLockupNs) add('soft_lockup_risk', 'fail', `the guest's clock jumps ${fmtNs(jump)} at resume: soft lockup and RCU stall reports (arm64 has no PVCLOCK_GUEST_STOPPED)`, counterWrites);
    const drift = s64(vmp.after - vmp.before);
    if (abs(toNs(drift)) > th.clockErrorNs) add('counter_divergence', 'warn', `the virtual and physical counters drifted ${fmtNs(abs(toNs(drift)))} apart (CNTVCT−CNTPCT went from ${vmp.before} to ${vmp.after} ticks)`, counterWrites);
    if (skewAfter > skewBefore + th.skewCycles) add('vcpu_skew', 'warn', `virtual counters differ by ${skewAfter} ticks across vCPUs (${skewBefore} before)`, counterWrites);
  }
  if (ignored.length) add('counter_writes_ignored', 'warn', `${ignored.length} counter write(s) through KVM_SET_ONE_REG were accepted and silently ignored: KVM_ARM_SET_COUNTER_OFFSET is in force`, ignored);
  const hostSide = (after ?? before).host;
  const driftPpb = ((hostSide.actualCounterHz - hz) * 1_000_000_000n) / hz;
  if (abs(driftPpb) > th.driftPpb) {
    add('frequency_drift', abs(driftPpb) > th.driftWarnPpb ? 'warn' : 'info', `the host counter ticks at ${hostSide.actualCounterHz} Hz for a CNTFRQ of ${hz} Hz: the guest counters drift ${(Number(driftPpb) / 1000).toFixed(3)} ppm, ${perDay(driftPpb)}`, counterWrites);
  }
  if (trapping) {
    add('physical_counter_traps', 'info', `the guest's physical counter is offset on a host without FEAT_ECV: every CNTPCT read traps (${trapped} so far, ~${trapCostNs} ns each: ${fmtNs(BigInt(trapped) * trapCostNs)})`, counterWrites);
  }
  const verdict = verdictOf(mig, findings);
  const dstHost = a.src.host(mig.toHost);
  return {
    migrationId: mig.migrationId,
    strategy: mig.strategy,
    status: mig.status,
    ...(mig.failure ? { failure: { step: mig.failure.step, reason: mig.failure.reason, position: a.failurePosition } } : {}),
    vmId: mig.vmId,
    newVmId: mig.newVmId,
    fromHost: mig.fromHost,
    toHost: mig.toHost,
    profiles: a.opts.profile ? { source: a.opts.profile.name, destination: a.opts.profile.name } : { source: before.host.profile, destination: dstHost?.profile ?? '' },
    blackoutNs: BigInt(String(mig.params.blackoutNs)),
    trueElapsedNs: elapsed,
    stopTime,
    resumeTime: after?.time ?? stopTime,
    guestTscKhz: Number(hz / 1000n),
    vcpus,
    kvmclock: { before: null, after: null, advanceNs: null, errorNs: null },
    kvmclockMinusTscStepNs: null,
    skewCycles: { before: skewBefore, after: skewAfter },
    masterClock: { before: false, after: false },
    pvclock: null,
    tscFrequency: { nominalHz: hz, actualHz: hostSide.actualCounterHz, driftPpb, msPerDay: msPerDay(driftPpb) },
    arm64: {
      cntfrqHz: hz,
      physical,
      virtualMinusPhysical: vmp,
      trappedPhysReads: trapped,
      physTrapping: trapping,
      trapCostNs,
      trapOverheadNs: BigInt(trapped) * trapCostNs,
      ignoredCounterWrites: ignored.length,
    },
    findings,
    verdict,
  };
}
