// The findings as a table of rules: what each judges (its code, the architecture, whether only
// once the guest resumed), its condition against the thresholds, its severity, its message, and the
// recorded events it cites. Rows are judged in table order; a code may have several rows (each a
// way to reach it). docs/audit.md is generated from this table and FINDING_CODES.
import { hostRealtimeNs } from '../../kvm/host.js';
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { s64 } from '../../kvm/u64.js';
import { KVM_CLOCK_REALTIME } from '../../kvm/uapi.js';
import type { GuestReport } from '../guest/types.js';
import { DEFAULT_GUEST, type GuestSettings } from '../guest/settings.js';
import type { AuditFrame } from './frame.js';
import { GUEST_RULES } from './guest-rules.js';
import { clockWindowsOf } from './window.js';
import { nsThreeDecimals, ppbAsPpm, ppbPerDayThreeDecimals } from '../../lib/units.js';
import { abs, worstError } from './magnitudes.js';
import { setsMsr, type Measurement } from './measure.js';
import type { Finding } from './report-types.js';
import { rule, type Rule, type RuleInput } from './rule.js';
import type { AuditThresholds } from './thresholds.js';

export type { Rule, RuleInput } from './rule.js';

/** The migration's accepted TSC writes to a guest whose TSC is protected: the positions of their ioctls. */
function protectedTscWrites(f: AuditFrame): number[] {
  if (!f.before.rec.secureTsc) return [];
  return f.ioctls((d) => {
    if (d.ret < 0) return false;
    // (KVM_SET_MSRS returns how many of its entries it set)
    if (d.ioctl === 'KVM_SET_MSRS') return setsMsr(d.arg, ['MSR_IA32_TSC', 'MSR_IA32_TSC_ADJUST'], d.ret);
    const arg = d.arg as { group?: unknown; attr?: unknown } | null;
    return (
      d.ioctl === 'KVM_SET_DEVICE_ATTR' && [0, 'KVM_VCPU_TSC_CTRL'].includes(arg?.group as never) && [0, 'KVM_VCPU_TSC_OFFSET'].includes(arg?.attr as never)
    );
  });
}
const when = (cond: boolean): true[] => (cond ? [true] : []);
const some = <S>(x: S | null | undefined): S[] => (x === null || x === undefined ? [] : [x]);
/** counter ticks as ns at the arm64 guest's CNTFRQ */
const ticksNs = (m: Measurement, ticks: bigint) => (ticks * NSEC_PER_SEC) / m.arm64!.cntfrqHz;

/** kvmclock behind true time: both its own finding and the guest wall clock's */
const kvmclockBehind = {
  arch: 'x86',
  atResume: true,
  condition: "kvmclock's error is below −clockErrorNs",
  thresholds: ['clockErrorNs'],
  cases: ({ m, th }: RuleInput) => some(m.kvmclock.errorNs).filter((e) => e < -th.clockErrorNs),
  severity: 'warn',
} as const satisfies Partial<Rule<bigint>>;

export const RULES: readonly Rule[] = [
  rule({
    code: 'migration_in_flight',
    atResume: false,
    condition: 'the log ends inside the migration: it neither completed nor failed',
    thresholds: [],
    cases: ({ f }) => when(f.mig.status === 'running'),
    severity: 'info',
    message: (_, { f }) =>
      `the log ends ${f.mig.phase ? `in its ${f.mig.phase} phase` : 'before its first phase'} (the migration's last event is at ` +
      `position ${f.migEvents.at(-1)!.position}): it neither completed nor failed, so only the source before the stop is audited`,
    cites: (_, { f }) => [f.migEvents.at(-1)!.position],
  }),
  rule({
    code: 'migration_failed',
    atResume: false,
    condition: 'a step was refused and the migration ended in failed',
    thresholds: [],
    cases: ({ f }) => (f.mig.status === 'failed' ? some(f.mig.failure) : []),
    severity: 'fail',
    message: (failure) => `${failure.step} failed: ${failure.reason}; the source VM resumed`,
    cites: (_, { f }) => (f.failurePosition ? [f.failurePosition] : []),
  }),
  rule({
    code: 'time_backwards',
    atResume: true,
    condition: "a vCPU's counter (x86: TSC; arm64: virtual counter) advanced by less than zero",
    thresholds: [],
    cases: ({ m }) => m.vcpus.filter((v) => v.tscAdvance < 0n),
    severity: 'fail',
    message: (v, { m }) => `vCPU ${v.vcpu}'s ${m.counter.one} went back by ${-v.tscAdvance} ${m.counter.unit}`,
    cites: ['counterWrites', 'readsAfterResume'],
  }),
  rule({
    code: 'time_backwards',
    arch: 'arm64',
    atResume: true,
    condition: "a vCPU's physical counter advanced by less than zero",
    thresholds: [],
    cases: ({ m }) => m.arm64!.physical.filter((v) => v.advance < 0n),
    severity: 'fail',
    message: (v) => `vCPU ${v.vcpu}'s physical counter went back by ${-v.advance} ticks`,
    cites: ['counterWrites'],
  }),
  rule({
    code: 'tsc_lost_time',
    arch: 'x86',
    atResume: true,
    condition: "a vCPU's TSC error is below −clockErrorNs (the worst is reported)",
    thresholds: ['clockErrorNs'],
    cases: ({ m, th }) => {
      const lost = m.vcpus.filter((v) => v.tscErrorNs < -th.clockErrorNs);
      return lost.length ? [{ lost, worst: lost.reduce((a, b) => (a.tscErrorNs < b.tscErrorNs ? a : b)) }] : [];
    },
    severity: 'warn',
    message: ({ lost, worst }, { f }) =>
      `the guest TSC lost ${nsThreeDecimals(-worst.tscErrorNs)} of the ${nsThreeDecimals(f.elapsedNs)} that passed ` +
      `(vCPU ${lost.map((v) => v.vcpu).join(', ')})`,
    cites: ['counterWrites'],
  }),
  rule({
    code: 'tsc_jump',
    arch: 'x86',
    atResume: true,
    condition: "a vCPU's TSC error is above clockErrorNs (the worst is reported)",
    thresholds: ['clockErrorNs', 'softLockupNs'],
    cases: ({ m, th }) => {
      const jumped = m.vcpus.filter((v) => v.tscErrorNs > th.clockErrorNs);
      return jumped.length ? [{ jumped, worst: jumped.reduce((a, b) => (a.tscErrorNs > b.tscErrorNs ? a : b)) }] : [];
    },
    severity: 'warn',
    or: { severity: 'fail', when: ({ worst }, { th }) => worst.tscErrorNs > th.softLockupNs, condition: 'the worst error is beyond softLockupNs' },
    message: ({ jumped, worst }) =>
      `the guest TSC jumped ${nsThreeDecimals(worst.tscErrorNs)} ahead of true time (vCPU ${jumped.map((v) => v.vcpu).join(', ')})`,
    cites: ['counterWrites'],
  }),
  rule({
    code: 'time_backwards',
    arch: 'x86',
    atResume: true,
    condition: "the boot vCPU's kvmclock advanced by less than zero",
    thresholds: [],
    cases: ({ m }) => some(m.kvmclock.advanceNs).filter((a) => a < 0n),
    severity: 'fail',
    message: (advance) => `kvmclock went back by ${nsThreeDecimals(-advance)}`,
    cites: ['kvmclockWrites'],
  }),
  rule({
    code: 'time_backwards',
    arch: 'x86',
    atResume: true,
    condition: "no vCPU's TSC went back, but the lowest after the resume is below the highest before the stop",
    thresholds: [],
    cases: ({ m }) =>
      m.lowestAfter !== null && m.highestBefore !== null && m.lowestAfter < m.highestBefore && !m.vcpus.some((v) => v.tscAdvance < 0n)
        ? [m.highestBefore - m.lowestAfter]
        : [],
    severity: 'fail',
    message: (lower) => `across vCPUs the guest TSC reads ${lower} cycles lower after than before`,
    cites: ['counterWrites', 'readsAfterResume'],
  }),
  rule({
    code: 'time_backwards',
    arch: 'x86',
    atResume: true,
    condition:
      "the resumed guest ran (a vCPU in KVM_RUN) before the migration's KVM_SET_CLOCK / " +
      'KVM_SET_CLOCK_GUEST, reading a kvmclock more than clockErrorNs below what it read as the stop began',
    thresholds: ['clockErrorNs'],
    cases: ({ f, m, th }) => {
      const before = m.kvmclock.before;
      if (before === null) return [];
      return clockWindowsOf(f)
        .map((w) => ({ w, lowest: w.runs.reduce((a, b) => (b.kvmclock < a.kvmclock ? b : a)) }))
        .filter(({ lowest }) => before - lowest.kvmclock > th.clockErrorNs)
        .map((c) => ({ ...c, before }));
    },
    severity: 'fail',
    message: ({ w, lowest, before }) =>
      `the guest ran before its clock was restored: ${w.runs
        .map((r) => `vCPU ${r.vcpu} from its KVM_RUN (position ${r.position})`)
        .join(', ')} until ${w.write.ioctl} (position ${w.write.position}), ${nsThreeDecimals(w.write.time - w.runs[0]!.time)} later; ` +
      `its kvmclock read ${nsThreeDecimals(lowest.kvmclock)} there, ` +
      `${nsThreeDecimals(before - lowest.kvmclock)} behind its ${nsThreeDecimals(before)} as the stop began`,
    cites: ({ w }) => [...w.runs.map((r) => r.position), w.write.position],
  }),
  rule({
    code: 'kvmclock_lost_time',
    ...kvmclockBehind,
    message: (error, { f }) => `kvmclock lost ${nsThreeDecimals(-error)} of the ${nsThreeDecimals(f.elapsedNs)} that passed`,
    cites: ['kvmclockWrites'],
  }),
  rule({
    code: 'kvmclock_jump',
    arch: 'x86',
    atResume: true,
    condition: "kvmclock's error is above clockErrorNs",
    thresholds: ['clockErrorNs'],
    cases: ({ m, th }) => some(m.kvmclock.errorNs).filter((e) => e > th.clockErrorNs),
    severity: 'warn',
    message: (error) => `kvmclock jumped ${nsThreeDecimals(error)} ahead of true time`,
    cites: ['kvmclockWrites'],
  }),
  rule({
    code: 'kvmclock_tsc_step',
    arch: 'x86',
    atResume: true,
    condition: 'the kvmclock−TSC step (kvmclock error − boot vCPU TSC error) exceeds clockStepNs in magnitude',
    thresholds: ['clockStepNs'],
    cases: ({ m, th }) => some(m.kvmclockMinusTscStepNs).filter((s) => abs(s) > th.clockStepNs),
    severity: 'warn',
    message: (step) => `kvmclock moved ${nsThreeDecimals(abs(step))} ${step > 0n ? 'ahead of' : 'behind'} the TSC`,
    cites: ['kvmclockWrites', 'counterWrites'],
  }),
  rule({
    code: 'counter_lost_time',
    arch: 'arm64',
    atResume: true,
    condition: "the worst vCPU's virtual counter error is below −clockErrorNs",
    thresholds: ['clockErrorNs'],
    cases: ({ m, th }) => [worstError(m.vcpus.map((v) => v.tscErrorNs))].filter((w) => w < -th.clockErrorNs),
    severity: 'warn',
    message: (worst, { f }) => `the guest's virtual counter lost ${nsThreeDecimals(-worst)} of the ${nsThreeDecimals(f.elapsedNs)} that passed`,
    cites: ['counterWrites'],
  }),
  rule({
    code: 'counter_jump',
    arch: 'arm64',
    atResume: true,
    condition: "the worst vCPU's virtual counter error is above clockErrorNs",
    thresholds: ['clockErrorNs'],
    cases: ({ m, th }) => [worstError(m.vcpus.map((v) => v.tscErrorNs))].filter((w) => w > th.clockErrorNs),
    severity: 'warn',
    message: (worst) => `the guest's virtual counter jumped ${nsThreeDecimals(worst)} ahead of true time`,
    cites: ['counterWrites'],
  }),
  rule({
    code: 'counter_divergence',
    arch: 'arm64',
    atResume: true,
    condition: 'CNTVCT − CNTPCT on the boot vCPU changed across the stop by more than clockErrorNs',
    thresholds: ['clockErrorNs'],
    cases: ({ m, th }) => {
      const vmp = m.arm64!.virtualMinusPhysical;
      const apart = abs(ticksNs(m, s64(vmp.after - vmp.before)));
      return apart > th.clockErrorNs ? [{ vmp, apart }] : [];
    },
    severity: 'warn',
    message: ({ vmp, apart }) =>
      `the virtual and physical counters drifted ${nsThreeDecimals(apart)} apart (CNTVCT−CNTPCT went from ${vmp.before} to ${vmp.after} ticks)`,
    cites: ['counterWrites'],
  }),
  rule({
    code: 'vcpu_skew',
    atResume: true,
    condition: 'the counters differ across vCPUs (skewCycles.after) by more than before plus skewCycles',
    thresholds: ['skewCycles'],
    cases: ({ m, th }) => when(m.skewCycles.after > m.skewCycles.before + th.skewCycles),
    severity: 'warn',
    or: { severity: 'fail', when: (_, { m }) => m.masterClock.after, condition: 'the pvclock still claims TSC_STABLE (x86 master clock on)' },
    message: (_, { m }) =>
      `${m.counter.many} differ by ${m.skewCycles.after} ${m.counter.unit} across vCPUs ` +
      `(${m.skewCycles.before} before)${m.masterClock.after ? ' while the pvclock claims TSC_STABLE' : ''}`,
    cites: ['counterWrites'],
  }),
  rule({
    code: 'master_clock_lost',
    arch: 'x86',
    atResume: true,
    condition: 'the master clock was on as the stop began and is off after the resume',
    thresholds: [],
    cases: ({ m }) => when(m.masterClock.before && !m.masterClock.after),
    severity: 'warn',
    message: () => 'the master clock was lost: kvmclock no longer claims PVCLOCK_TSC_STABLE',
    cites: ['counterWrites'],
  }),
  rule({
    code: 'counter_writes_ignored',
    arch: 'arm64',
    atResume: false,
    condition: 'a KVM_SET_ONE_REG counter write was accepted and dropped while KVM_ARM_SET_COUNTER_OFFSET is in force',
    thresholds: [],
    cases: ({ m }) => when(m.cites.ignoredWrites.length > 0),
    severity: 'warn',
    message: (_, { m }) =>
      `${m.cites.ignoredWrites.length} counter write(s) through KVM_SET_ONE_REG were accepted and silently ignored: KVM_ARM_SET_COUNTER_OFFSET is in force`,
    cites: ['ignoredWrites'],
  }),
  rule({
    code: 'tsc_writes_ignored',
    arch: 'x86',
    atResume: false,
    condition:
      'the guest TSC is protected (createVm secureTsc) and the migration made TSC writes that ' +
      'KVM accepted: kvm_vcpu_write_tsc_offset() and __kvm_synchronize_tsc() return early',
    thresholds: [],
    cases: ({ f }) => {
      const ignored = protectedTscWrites(f);
      return ignored.length ? [ignored] : [];
    },
    severity: 'warn',
    message: (ignored: number[]) =>
      `the guest TSC is protected (TDX / SEV-SNP Secure TSC): ${ignored.length} TSC write(s) (IA32_TSC, ` +
      `IA32_TSC_ADJUST or KVM_VCPU_TSC_OFFSET) succeeded and left the offset as the platform set it`,
    cites: (ignored: number[]) => ignored,
  }),
  rule({
    code: 'frequency_drift',
    atResume: false,
    condition:
      "the guest counter's real rate (tscFrequency.actualHz: x86, the guest TSC's; " +
      "arm64, the host counter's) differs from its nominal one by more than driftPpb",
    thresholds: ['driftPpb', 'driftWarnPpb'],
    cases: ({ m, th }) => when(abs(m.tscFrequency.driftPpb) > th.driftPpb),
    severity: 'info',
    or: { severity: 'warn', when: (_, { m, th }) => abs(m.tscFrequency.driftPpb) > th.driftWarnPpb, condition: 'beyond driftWarnPpb' },
    message: (_, { m }) => {
      const t = m.tscFrequency;
      const drift = `${ppbAsPpm(t.driftPpb)} ppm, ${ppbPerDayThreeDecimals(t.driftPpb)}`;
      return m.arch === 'x86'
        ? `the guest TSC runs at ${t.actualHz} Hz for a nominal ${t.nominalHz} Hz: ${drift}`
        : `the host counter ticks at ${t.actualHz} Hz for a CNTFRQ of ${t.nominalHz} Hz: the guest counters drift ${drift}`;
    },
    cites: ['counterWrites'],
  }),
  rule({
    code: 'frequency_drift',
    arch: 'x86',
    atResume: false,
    condition: "kvmclock's rate (the pvclock's encoded frequency against the guest TSC's) is off by more than driftPpb",
    thresholds: ['driftPpb', 'driftWarnPpb'],
    cases: ({ m, th }) =>
      m.pvclock && m.pvclock.driftPpb !== null && abs(m.pvclock.driftPpb) > th.driftPpb ? [{ ...m.pvclock, driftPpb: m.pvclock.driftPpb }] : [],
    severity: 'info',
    or: { severity: 'warn', when: (pv, { th }) => abs(pv.driftPpb) > th.driftWarnPpb, condition: 'beyond driftWarnPpb' },
    message: (pv) =>
      `kvmclock's pvclock encodes ${pv.frequencyHz} Hz for a guest TSC at ${pv.guestTscHz} Hz: ` +
      `kvmclock drifts ${ppbAsPpm(pv.driftPpb)} ppm, ${ppbPerDayThreeDecimals(pv.driftPpb)}, against the TSC`,
    cites: ['kvmclockWrites', 'counterWrites'],
  }),
  rule({
    code: 'physical_counter_traps',
    arch: 'arm64',
    atResume: false,
    condition: "the destination's physical counter is offset on a host without FEAT_ECV (arm64.physTrapping)",
    thresholds: ['trapCostNs'],
    cases: ({ m }) => when(m.arm64!.physTrapping),
    severity: 'info',
    message: (_, { m }) => {
      const a = m.arm64!;
      const traps = `${a.trappedPhysReads} so far, ~${a.trapCostNs} ns each: ${nsThreeDecimals(a.trapOverheadNs)}`;
      return `the guest's physical counter is offset on a host without FEAT_ECV: every CNTPCT read traps (${traps})`;
    },
    cites: ['counterWrites'],
  }),
  rule({
    code: 'realtime_disagrees',
    atResume: true,
    condition:
      "the destination host's CLOCK_REALTIME and the source host's, read at the same true instant (the resume), differ by more than " +
      'clockErrorNs; warn when the restore passed KVM_CLOCK_REALTIME (the kernel then adds the difference to kvmclock)',
    thresholds: ['clockErrorNs'],
    cases: ({ f, th }) => {
      const dst = f.after!.host;
      const src = f.src.host(f.mig.fromHost, f.resumeTime);
      if (!src || dst.id === src.id) return [];
      const apartNs = hostRealtimeNs(dst, f.resumeTime) - hostRealtimeNs(src, f.resumeTime);
      return abs(apartNs) > th.clockErrorNs ? [{ apartNs, dst: dst.id, src: src.id, realtimeSets: setsClockRealtime(f) }] : [];
    },
    severity: 'info',
    or: { severity: 'warn', when: (s) => s.realtimeSets.length > 0, condition: 'the destination restored kvmclock with KVM_CLOCK_REALTIME' },
    message: ({ apartNs, dst, src, realtimeSets }) => {
      const apart = `host ${dst}'s CLOCK_REALTIME is ${nsThreeDecimals(abs(apartNs))} ${apartNs > 0n ? 'ahead of' : 'behind'} host ${src}'s`;
      return realtimeSets.length
        ? `${apart}: the restore passed KVM_CLOCK_REALTIME, so kvmclock moved by that difference besides the time that passed`
        : `${apart}: nothing in this migration's restore read it, ` +
            "but a realtime-based one (KVM_CLOCK_REALTIME, the offset procedure's ΔT) would move the guest by it";
    },
    cites: (s) => s.realtimeSets,
  }),
  ...GUEST_RULES,
];

/** The destination's accepted KVM_SET_CLOCK calls with KVM_CLOCK_REALTIME: the positions of their ioctls. */
function setsClockRealtime(f: AuditFrame): number[] {
  return f.ioctls((d) => {
    const flags = Number((d.arg as { flags?: unknown } | null)?.flags ?? 0);
    return d.ioctl === 'KVM_SET_CLOCK' && d.ret === 0 && (flags & KVM_CLOCK_REALTIME) !== 0;
  });
}

/** The findings of one migration: every rule of its architecture, in table order. */
export function judge(f: AuditFrame, m: Measurement, th: AuditThresholds, g: GuestReport | null = null, gs: GuestSettings = DEFAULT_GUEST): Finding[] {
  const c: RuleInput = { f, m, th, g, gs };
  const findings: Finding[] = [];
  for (const r of RULES) {
    if ((r.arch && r.arch !== m.arch) || (r.atResume && !f.after)) continue;
    for (const s of r.cases(c)) {
      const positions = typeof r.cites === 'function' ? r.cites(s, c) : r.cites.flatMap((k) => m.cites[k]);
      findings.push({
        code: r.code,
        severity: r.or?.when(s, c) ? r.or.severity : r.severity,
        message: r.message(s, c),
        positions: [...new Set(positions)].sort((a, b) => a - b),
        ...(r.guestLog ? { guestLog: r.guestLog(s, c) } : {}),
      });
    }
  }
  return findings;
}
