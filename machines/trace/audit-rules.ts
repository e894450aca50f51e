// The trace audit's findings as a table of rules (as machines/audit/rules.ts judges a migration):
// each row reads one VM's measurement (audit-measure.ts), finds its cases, and gives each a
// severity, a message and the trace lines it stands on. Rows are judged in table order, which is
// the order of the findings.
import type { Severity } from '../audit/report.js';
import { SYNC_WINDOW_NS, type TraceMeasurement } from './audit-measure.js';
import type { TraceFinding, TraceFindingCode } from './audit-report.js';
import type { TraceImportedData } from './state.js';

/** A pvclock system_time step (against the guest TSC it is paired with) reported as a finding. */
export const PVCLOCK_STEP_NS = 1_000_000n;

export interface TraceRuleInput {
  m: TraceMeasurement;
  /** the capture's lost-event lines (every VM's audit may miss events) */
  lost: TraceImportedData['lost'];
}

export interface TraceRule<S = any> {
  code: TraceFindingCode;
  /** the condition, in words */
  condition: string;
  severity: Severity;
  /** each case found (one finding each; none: no finding) */
  cases(c: TraceRuleInput): S[];
  message(s: S, c: TraceRuleInput): string;
  /** the trace lines the finding cites */
  lines(s: S, c: TraceRuleInput): number[];
}

const rule = <S>(r: TraceRule<S>): TraceRule<S> => r;
const when = <S>(cond: boolean, s: S): S[] => (cond ? [s] : []);
const abs = (x: bigint) => (x < 0n ? -x : x);

/** The vCPUs' final writes that came a window or more after the write before them and took another offset: [that write, it] lines. */
function lateFinalWrites(m: TraceMeasurement): [number, number][] {
  const w = m.tscOffsetWrites;
  const finalLines = new Set(m.vcpus.map((v) => v.line));
  const late: [number, number][] = [];
  for (let i = 1; i < w.length; i++) {
    if (finalLines.has(w[i]!.line) && w[i]!.withinSyncWindow === false && w[i]!.value !== w[i - 1]!.value) late.push([w[i - 1]!.line, w[i]!.line]);
  }
  return late;
}

/** The master clock ended off: the on → off transitions (none: it was never on). */
const endedOff = (m: TraceMeasurement) => (m.masterClock.final === false ? [m.masterClock.transitions.filter((t) => t.from && !t.to)] : []);
const creationShown = (m: TraceMeasurement, lead: string) => (m.masterClock.creationLine === null ? '' : `${lead}${m.masterClock.creationLine}`);

export const TRACE_RULES: readonly TraceRule[] = [
  rule({
    code: 'events_lost',
    condition: 'the ring buffer dropped events ("CPU:N [LOST M EVENTS]") anywhere in the capture',
    severity: 'warn',
    cases: ({ lost }) => when(lost.length > 0, lost),
    message: (lost) => `the ring buffer dropped ${lost.reduce((a, l) => a + l.events, 0)} event(s): writes or updates may be missing from what follows`,
    lines: (lost) => lost.map((l) => l.line),
  }),
  rule({
    code: 'tsc_offsets_differ',
    condition: "the vCPUs' final TSC offsets (their last kvm_write_tsc_offset) are not all equal",
    severity: 'fail',
    cases: ({ m }) => when(m.tscOffsetSpreadCycles !== 0n, m.tscOffsetSpreadCycles),
    message: (spread, { m }) =>
      `the vCPUs' final TSC offsets differ by ${spread} cycles${m.tscOffsetSpreadNs === null ? '' : ` (${m.tscOffsetSpreadNs} ns at ${m.guestTscHz} Hz)`}: ` +
      "the kernel keeps its master clock only while every vCPU's offset matches",
    lines: (_, { m }) => m.vcpus.map((v) => v.line),
  }),
  rule({
    code: 'tsc_write_outside_sync_window',
    condition: "the offsets end up apart, and a vCPU's final write came a second or more after the write before it and set another offset",
    severity: 'warn',
    cases: ({ m }) => {
      const late = m.tscOffsetSpreadCycles === 0n ? [] : lateFinalWrites(m);
      return when(late.length > 0, late);
    },
    message: (late) =>
      `${late.length} vCPU(s) took their final TSC offset in a write that came ${SYNC_WINDOW_NS} ns or more after the previous write and set another offset: ` +
      'a VMM writing the same TSC value a second or more later is not matched by kvm_synchronize_tsc()',
    lines: (late) => [...new Set(late.flat())],
  }),
  rule({
    code: 'master_clock_lost',
    condition: 'the master clock went from on to off and is off in the last kvm_update_master_clock',
    severity: 'fail',
    cases: ({ m }) => endedOff(m).filter((lost) => lost.length > 0),
    message: (_, { m }) =>
      `the master clock went off (kvm_update_master_clock masterclock 0, offsetmatched ${m.masterClock.finalOffsetMatched ? 1 : 0}) ` +
      'and stayed off to the end of the trace',
    lines: (lost) => lost.map((t) => t.line),
  }),
  rule({
    code: 'master_clock_before_vcpus',
    condition: 'the master clock was never on, and every kvm_update_master_clock came before the VM had a vCPU',
    severity: 'info',
    cases: ({ m }) => endedOff(m).filter((lost) => lost.length === 0 && m.masterClock.beforeVcpus === m.masterClock.updateLines.length),
    message: (_, { m }) =>
      'the master clock is off only in kvm_update_master_clock before any vCPU of this VM (masterclock 0 offsetmatched 0, ' +
      `as KVM evaluates it when it creates a VM${creationShown(m, ', which the trace shows at line ')}); ` +
      'the trace has no update once the vCPUs exist, so it does not show whether the master clock came on',
    lines: (_, { m }) => m.masterClock.updateLines,
  }),
  rule({
    code: 'master_clock_off',
    condition: 'the master clock was never on, in updates once the VM had vCPUs',
    severity: 'warn',
    cases: ({ m }) => endedOff(m).filter((lost) => lost.length === 0 && m.masterClock.beforeVcpus < m.masterClock.updateLines.length),
    message: (_, { m }) =>
      `the master clock is off in every kvm_update_master_clock of the trace once the VM has vCPUs (the last at line ${m.masterClock.finalLine}` +
      `${creationShown(m, "; the VM's creation is at line ")})`,
    // (the updates before the first vCPU are the first ones: the records are in capture order)
    lines: (_, { m }) => m.masterClock.updateLines.slice(m.masterClock.beforeVcpus),
  }),
  rule({
    code: 'pvclock_tsc_stable_cleared',
    condition: "a vCPU's pvclock update cleared PVCLOCK_TSC_STABLE_BIT that its previous update had set",
    severity: 'warn',
    cases: ({ m }) => {
      const cleared = m.pvclock.stableBitFlips.filter((x) => !x.stable);
      return when(cleared.length > 0, cleared);
    },
    message: (cleared) =>
      `PVCLOCK_TSC_STABLE_BIT was cleared in ${cleared.length} pvclock update(s): the guest's kvmclock stops trusting the TSC and serializes its reads`,
    lines: (cleared) => cleared.map((x) => x.line),
  }),
  rule({
    code: 'pvclock_time_step',
    condition: `a vCPU's pvclock system_time moved ${PVCLOCK_STEP_NS} ns or more away from what its previous pvclock gives at the new tsc_timestamp`,
    severity: 'warn',
    cases: ({ m }) => {
      const steps = m.pvclock.systemTimeSteps.filter((x) => abs(x.stepNs) >= PVCLOCK_STEP_NS);
      return when(steps.length > 0, steps);
    },
    message: (steps) => {
      const largest = steps.map((x) => x.stepNs).reduce((a, b) => (abs(b) > abs(a) ? b : a));
      return `${steps.length} pvclock update(s) stepped system_time by ${PVCLOCK_STEP_NS} ns or more against the guest TSC (largest ${largest} ns)`;
    },
    lines: (steps) => steps.flatMap((x) => [x.previousLine, x.line]),
  }),
];

/** The findings of one VM's measurement, in table order. */
export function judgeTrace(c: TraceRuleInput): TraceFinding[] {
  return TRACE_RULES.flatMap((r) => r.cases(c).map((s) => ({ code: r.code, severity: r.severity, message: r.message(s, c), lines: r.lines(s, c) })));
}
