// The audit of an imported host trace, from the log alone: per VM, the vCPUs' final TSC offsets
// and their spread, the TSC writes and their spacing against the kernel's one-second
// synchronization window, the master clock's transitions, and the pvclock the guest was given
// (its frequency, system_time steps, PVCLOCK_TSC_STABLE_BIT flips). Every finding cites the trace
// line numbers of the events behind it.
import { hvclockToHz, NSEC_PER_SEC, pvclockScaleDelta } from '../../kvm/arith.js';
import { s64 } from '../../kvm/u64.js';
import { MSRS, PVCLOCK_TSC_STABLE_BIT } from '../../kvm/uapi.js';
import type { EventStore } from '../../store/types.js';
import type { Severity } from '../audit/report.js';
import { readTrace } from './read.js';
import type { TraceImportedData, TracepointData } from './state.js';

/** The window kvm_synchronize_tsc() matches a TSC write in: one second (of cycles, at the guest rate). */
export const SYNC_WINDOW_NS = NSEC_PER_SEC;
/** A pvclock system_time step (against the guest TSC it is paired with) reported as a finding. */
export const PVCLOCK_STEP_NS = 1_000_000n;

export interface TraceFinding {
  code:
    | 'events_lost'
    | 'tsc_offsets_differ'
    | 'tsc_write_outside_sync_window'
    | 'master_clock_lost'
    | 'master_clock_off'
    | 'master_clock_before_vcpus'
    | 'pvclock_tsc_stable_cleared'
    | 'pvclock_time_step';
  severity: Severity;
  message: string;
  /** trace line numbers of the events behind it */
  lines: number[];
}

export interface TraceVcpu {
  vcpu: number;
  /** the last kvm_write_tsc_offset `next` (u64, as the kernel printed it) */
  tscOffset: bigint;
  /** the same offset read as the s64 it is added as */
  tscOffsetSigned: bigint;
  /** tscOffsetSigned in ns at the guest TSC frequency (null: frequency unknown) */
  tscOffsetNs: bigint | null;
  /** offset writes seen for this vCPU */
  writes: number;
  /** the line of its last write */
  line: number;
}

export interface TraceTscWrite {
  line: number;
  /** the vCPU (kvm_write_tsc_offset) or null (kvm_msr does not print one) */
  vcpu: number | null;
  task: string;
  timestamp: string;
  /** kvm_write_tsc_offset: the new offset; kvm_msr: the value written */
  value: bigint;
  /** ns since the previous write of the same kind in this VM (null: first, or a counter clock) */
  sincePreviousNs: bigint | null;
  /** that spacing is inside the one-second window (null: not known) */
  withinSyncWindow: boolean | null;
}

/** arch_timer_ctx_index() names: TIMER_PTIMER is 1, TIMER_VTIMER 0, then the EL2 timers (NV). */
export const ARM64_TIMER_NAMES = ['vtimer', 'ptimer', 'hvtimer', 'hptimer'] as const;

export interface Arm64TimerState {
  ctl: bigint;
  cval: bigint;
  line: number;
}

/**
 * One vCPU's arm64 timers as the capture shows them: none of these tracepoints prints the counter
 * offset (CNTVOFF), so this is the timers' state, not the offsets. A thread is a vCPU from the
 * first kvm_get_timer_map or kvm_timer_update_irq it prints.
 */
export interface Arm64TimerVcpu {
  vcpu: number;
  /** the threads its events came from */
  pids: number[];
  /** the last kvm_get_timer_map: arch_timer_ctx_index of each timer, -1 none (emulVtimer null: pre-6.3 format) */
  map: { directVtimer: number; directPtimer: number; emulVtimer: number | null; emulPtimer: number; line: number } | null;
  /** per timer index seen: the last kvm_timer_save_state and kvm_timer_restore_state */
  timers: { index: number; timer: string; saved: Arm64TimerState | null; restored: Arm64TimerState | null; expiries: number[]; emulated: { line: number; shouldFire: boolean }[] }[];
  /** per IRQ: the lines that raised it (level 1) and lowered it (level 0) */
  irqs: { irq: number; raised: number[]; lowered: number[] }[];
}

export interface TraceVmAudit {
  vm: string;
  /** the arm64 timer tracepoints per vCPU (null: the VM has none) */
  arm64Timers: { vcpus: Arm64TimerVcpu[]; unattributedLines: number[] } | null;
  guestTscHz: bigint | null;
  guestTscHzFrom: 'pvclock' | 'request' | null;
  vcpus: TraceVcpu[];
  tscOffsetSpreadCycles: bigint;
  tscOffsetSpreadNs: bigint | null;
  /** every kvm_write_tsc_offset, in trace order */
  tscOffsetWrites: TraceTscWrite[];
  /** guest writes of MSR_IA32_TSC (kvm_msr msr_write 10) */
  tscMsrWrites: TraceTscWrite[];
  masterClock: {
    final: boolean | null;
    finalLine: number | null;
    updates: number;
    transitions: { line: number; from: boolean; to: boolean }[];
    /**
     * the VM's creation, when the trace shows it: kvm_arch_init_vm() evaluates the master clock
     * before any vCPU exists (masterclock 0 offsetmatched 0), and the first vCPU's creation write
     * (kvm_write_tsc_offset prev=0) follows; the line of that update
     */
    creationLine: number | null;
    /** updates before the VM's first vCPU tracepoint (no vCPU to match: off, as at creation) */
    beforeVcpus: number;
  };
  pvclock: {
    frequencyHz: bigint | null;
    tscToSystemMul: number | null;
    tscShift: number | null;
    line: number | null;
    updates: number;
    systemTimeSteps: { vcpu: number; line: number; previousLine: number; stepNs: bigint }[];
    stableBitFlips: { vcpu: number; line: number; stable: boolean }[];
  };
  findings: TraceFinding[];
}

export interface TraceAudit {
  traceId: string;
  format: string;
  source: string | null;
  events: number;
  /** the capture dropped events (every VM's audit may miss some): the lost-event lines */
  lost: { line: number; cpu: number; events: number }[];
  vms: TraceVmAudit[];
}

export interface TraceAuditOptions {
  /** the guest TSC frequency, when the trace has no kvm_pvclock_update to read it from */
  guestTscHz?: bigint;
}

type Fields = Record<string, string | number | boolean | null>;
/** The x86 tracepoints that name a vCPU: the first of them in a VM is its first vCPU. */
const X86_VCPU_EVENTS = new Set(['kvm_write_tsc_offset', 'kvm_track_tsc', 'kvm_pvclock_update']);
const big = (v: unknown) => BigInt(v as string);

/** Audit an imported trace (null: no such trace). */
export function auditTrace(store: EventStore, traceId: string, opts: TraceAuditOptions = {}): TraceAudit | null {
  const trace = readTrace(store, traceId);
  if (!trace) return null;
  const { head, byVm } = trace;
  return {
    traceId: head.traceId,
    format: head.format,
    source: head.source,
    events: head.events,
    lost: head.lost ?? [],
    vms: [...byVm].map(([vm, evs]) => auditVm(vm, evs, opts, head!.lost ?? [])),
  };
}

/** The audit of one VM's events (in trace order). */
export function auditVm(vm: string, evs: TracepointData[], opts: TraceAuditOptions = {}, lost: TraceImportedData['lost'] = []): TraceVmAudit {
  const findings: TraceFinding[] = [];
  if (lost.length) {
    const n = lost.reduce((a, l) => a + l.events, 0);
    findings.push({ code: 'events_lost', severity: 'warn', message: `the ring buffer dropped ${n} event(s): writes or updates may be missing from what follows`, lines: lost.map((l) => l.line) });
  }
  const f = (e: TracepointData) => e.fields as Fields;

  // pvclock: the frequency its (mul, shift) encodes, steps and stable-bit flips per vCPU
  const pv = evs.filter((e) => e.event === 'kvm_pvclock_update');
  const lastPv = pv.at(-1);
  const pvHz = lastPv ? hvclockToHz(f(lastPv).tscToSystemMul as number, f(lastPv).tscShift as number) : null;
  const guestTscHz = opts.guestTscHz ?? (pvHz !== null && pvHz > 0n ? pvHz : null);
  const toNs = (cycles: bigint) => (guestTscHz === null ? null : (cycles * NSEC_PER_SEC) / guestTscHz);
  const steps: TraceVmAudit['pvclock']['systemTimeSteps'] = [];
  const flips: TraceVmAudit['pvclock']['stableBitFlips'] = [];
  const prevPv = new Map<number, TracepointData>();
  for (const e of pv) {
    const x = f(e);
    const vcpu = x.vcpu as number;
    const p = prevPv.get(vcpu);
    if (p) {
      const y = f(p);
      const dSys = s64(big(x.systemTime) - big(y.systemTime));
      const dTsc = big(x.tscTimestamp) - big(y.tscTimestamp);
      // the time the earlier pvclock would give at the later tsc_timestamp (pvclock_scale_delta)
      const scaled = (d: bigint) => pvclockScaleDelta(d, y.tscToSystemMul as number, y.tscShift as number);
      const expected = dTsc >= 0n ? scaled(dTsc) : -scaled(-dTsc);
      steps.push({ vcpu, line: e.line, previousLine: p.line, stepNs: dSys - expected });
      const was = ((y.flags as number) & PVCLOCK_TSC_STABLE_BIT) !== 0;
      const is = ((x.flags as number) & PVCLOCK_TSC_STABLE_BIT) !== 0;
      if (was !== is) flips.push({ vcpu, line: e.line, stable: is });
    }
    prevPv.set(vcpu, e);
  }

  // TSC offsets: the last write per vCPU, and every write's spacing from the one before it
  const vcpuMap = new Map<number, TraceVcpu>();
  const offsetWrites = spaced(
    evs.filter((e) => e.event === 'kvm_write_tsc_offset'),
    (e) => ({ vcpu: f(e).vcpu as number, value: big(f(e).next) }),
  );
  for (const w of offsetWrites) {
    const signed = s64(w.value);
    const prev = vcpuMap.get(w.vcpu!);
    vcpuMap.set(w.vcpu!, { vcpu: w.vcpu!, tscOffset: w.value, tscOffsetSigned: signed, tscOffsetNs: toNs(signed), writes: (prev?.writes ?? 0) + 1, line: w.line });
  }
  const vcpus = [...vcpuMap.values()].sort((a, b) => a.vcpu - b.vcpu);
  let spread = 0n;
  if (vcpus.length) {
    const vals = vcpus.map((v) => v.tscOffsetSigned);
    spread = vals.reduce((a, b) => (b > a ? b : a)) - vals.reduce((a, b) => (b < a ? b : a));
  }
  const msrWrites = spaced(
    evs.filter((e) => e.event === 'kvm_msr' && f(e).write === true && f(e).msr === MSRS.MSR_IA32_TSC),
    (e) => ({ vcpu: null, value: big(f(e).data) }),
  );

  if (spread !== 0n) {
    const ns = toNs(spread);
    findings.push({
      code: 'tsc_offsets_differ',
      severity: 'fail',
      message: `the vCPUs' final TSC offsets differ by ${spread} cycles${ns === null ? '' : ` (${ns} ns at ${guestTscHz} Hz)`}: the kernel keeps its master clock only while every vCPU's offset matches`,
      lines: vcpus.map((v) => v.line),
    });
  }
  // (when the offsets end up apart: the vCPUs' final writes that came a second or more after the
  // write before them and took another offset, each cited with that earlier write)
  const finalLines = new Set(vcpus.map((v) => v.line));
  const late: number[] = [];
  for (let i = 1; i < offsetWrites.length && spread !== 0n; i++) {
    const w = offsetWrites[i]!;
    if (finalLines.has(w.line) && w.withinSyncWindow === false && w.value !== offsetWrites[i - 1]!.value) late.push(offsetWrites[i - 1]!.line, w.line);
  }
  if (late.length) {
    findings.push({
      code: 'tsc_write_outside_sync_window',
      severity: 'warn',
      message: `${late.length / 2} vCPU(s) took their final TSC offset in a write that came ${SYNC_WINDOW_NS} ns or more after the previous write and set another offset: a VMM writing the same TSC value a second or more later is not matched by kvm_synchronize_tsc()`,
      lines: [...new Set(late)],
    });
  }

  // the master clock: its final state, every change, and whether the trace shows the VM's creation
  const mc = evs.filter((e) => e.event === 'kvm_update_master_clock');
  const transitions: TraceVmAudit['masterClock']['transitions'] = [];
  for (let i = 1; i < mc.length; i++) {
    const from = f(mc[i - 1]!).masterclock as boolean;
    const to = f(mc[i]!).masterclock as boolean;
    if (from !== to) transitions.push({ line: mc[i]!.line, from, to });
  }
  const last = mc.at(-1);
  const final = last ? (f(last).masterclock as boolean) : null;
  // (pvclock_update_vm_gtod_copy() with no vCPU online: nr_vcpus_matched_tsc + 1 == online_vcpus is false)
  const firstVcpu = evs.find((e) => X86_VCPU_EVENTS.has(e.event));
  const beforeVcpus = mc.filter((e) => firstVcpu === undefined || e.line < firstVcpu.line);
  const atCreation = (e: TracepointData) => f(e).masterclock === false && f(e).offsetMatched === false;
  const createdFirst = firstVcpu?.event === 'kvm_write_tsc_offset' && big(f(firstVcpu).prev) === 0n;
  const creation = mc[0] && beforeVcpus[0] === mc[0] && atCreation(mc[0]) && createdFirst ? mc[0] : null;
  if (final === false) {
    const lost = transitions.filter((t) => t.from && !t.to);
    if (lost.length) {
      findings.push({ code: 'master_clock_lost', severity: 'fail', message: `the master clock went off (kvm_update_master_clock masterclock 0, offsetmatched ${f(last!).offsetMatched ? 1 : 0}) and stayed off to the end of the trace`, lines: lost.map((t) => t.line) });
    } else if (beforeVcpus.length === mc.length) {
      findings.push({
        code: 'master_clock_before_vcpus',
        severity: 'info',
        message:
          'the master clock is off only in kvm_update_master_clock before any vCPU of this VM (masterclock 0 offsetmatched 0, ' +
          `as KVM evaluates it when it creates a VM${creation ? `, which the trace shows at line ${creation.line}` : ''}); ` +
          'the trace has no update once the vCPUs exist, so it does not show whether the master clock came on',
        lines: mc.map((e) => e.line),
      });
    } else {
      findings.push({
        code: 'master_clock_off',
        severity: 'warn',
        message:
          `the master clock is off in every kvm_update_master_clock of the trace once the VM has vCPUs (the last at line ${last!.line}` +
          `${creation ? `; the VM's creation is at line ${creation.line}` : ''})`,
        lines: mc.filter((e) => !beforeVcpus.includes(e)).map((e) => e.line),
      });
    }
  }
  const cleared = flips.filter((x) => !x.stable);
  if (cleared.length) {
    findings.push({ code: 'pvclock_tsc_stable_cleared', severity: 'warn', message: `PVCLOCK_TSC_STABLE_BIT was cleared in ${cleared.length} pvclock update(s): the guest's kvmclock stops trusting the TSC and serializes its reads`, lines: cleared.map((x) => x.line) });
  }
  const big1 = steps.filter((x) => (x.stepNs < 0n ? -x.stepNs : x.stepNs) >= PVCLOCK_STEP_NS);
  if (big1.length) {
    findings.push({
      code: 'pvclock_time_step',
      severity: 'warn',
      message: `${big1.length} pvclock update(s) stepped system_time by ${PVCLOCK_STEP_NS} ns or more against the guest TSC (largest ${big1.map((x) => x.stepNs).reduce((a, b) => ((b < 0n ? -b : b) > (a < 0n ? -a : a) ? b : a))} ns)`,
      lines: big1.flatMap((x) => [x.previousLine, x.line]),
    });
  }

  return {
    vm,
    arm64Timers: arm64TimersOf(evs),
    guestTscHz,
    guestTscHzFrom: opts.guestTscHz !== undefined ? 'request' : guestTscHz !== null ? 'pvclock' : null,
    vcpus,
    tscOffsetSpreadCycles: spread,
    tscOffsetSpreadNs: toNs(spread),
    tscOffsetWrites: offsetWrites,
    tscMsrWrites: msrWrites,
    masterClock: {
      final,
      finalLine: last?.line ?? null,
      updates: mc.length,
      transitions,
      creationLine: creation?.line ?? null,
      beforeVcpus: beforeVcpus.length,
    },
    pvclock: {
      frequencyHz: pvHz,
      tscToSystemMul: lastPv ? (f(lastPv).tscToSystemMul as number) : null,
      tscShift: lastPv ? (f(lastPv).tscShift as number) : null,
      line: lastPv?.line ?? null,
      updates: pv.length,
      systemTimeSteps: steps,
      stableBitFlips: flips,
    },
    findings,
  };
}

/** Writes in trace order, each with its spacing from the one before it (trace timestamps). */
function spaced(evs: TracepointData[], read: (e: TracepointData) => { vcpu: number | null; value: bigint }): TraceTscWrite[] {
  let prevNs: bigint | null = null;
  return evs.map((e, i) => {
    const t = e.timeNs === null ? null : BigInt(e.timeNs);
    const since = i > 0 && t !== null && prevNs !== null ? t - prevNs : null;
    prevNs = t;
    const { vcpu, value } = read(e);
    return { line: e.line, vcpu, task: e.task, timestamp: e.timestamp, value, sincePreviousNs: since, withinSyncWindow: since === null ? null : since < SYNC_WINDOW_NS };
  });
}

const ARM64_TIMER_EVENTS = new Set(['kvm_timer_update_irq', 'kvm_get_timer_map', 'kvm_timer_save_state', 'kvm_timer_restore_state', 'kvm_timer_hrtimer_expire', 'kvm_timer_emulate']);

/** The arm64 timer tracepoints by vCPU (null: none in this VM). */
function arm64TimersOf(evs: TracepointData[]): TraceVmAudit['arm64Timers'] {
  const timerEvs = evs.filter((e) => ARM64_TIMER_EVENTS.has(e.event));
  if (!timerEvs.length) return null;
  const f = (e: TracepointData) => e.fields as Fields;
  // a thread is the vCPU its kvm_get_timer_map (kvm_timer_vcpu_load) or kvm_timer_update_irq names
  const vcpuOfPid = new Map<number, number>();
  for (const e of timerEvs) if ((e.event === 'kvm_get_timer_map' || e.event === 'kvm_timer_update_irq') && !vcpuOfPid.has(e.pid)) vcpuOfPid.set(e.pid, f(e).vcpu as number);
  const vcpus = new Map<number, Arm64TimerVcpu>();
  const unattributed: number[] = [];
  const vcpuEntry = (id: number) => vcpus.get(id) ?? vcpus.set(id, { vcpu: id, pids: [], map: null, timers: [], irqs: [] }).get(id)!;
  const timer = (v: Arm64TimerVcpu, index: number) => {
    let t = v.timers.find((x) => x.index === index);
    if (!t) v.timers.push((t = { index, timer: ARM64_TIMER_NAMES[index] ?? `timer ${index}`, saved: null, restored: null, expiries: [], emulated: [] }));
    return t;
  };
  for (const e of timerEvs) {
    const x = f(e);
    // kvm_timer_update_irq and kvm_get_timer_map name their vCPU; the others are the thread's
    const id = e.event === 'kvm_timer_update_irq' || e.event === 'kvm_get_timer_map' ? (x.vcpu as number) : vcpuOfPid.get(e.pid);
    if (id === undefined) {
      unattributed.push(e.line);
      continue;
    }
    const v = vcpuEntry(id);
    if (!v.pids.includes(e.pid)) v.pids.push(e.pid);
    switch (e.event) {
      case 'kvm_get_timer_map':
        v.map = { directVtimer: x.directVtimer as number, directPtimer: x.directPtimer as number, emulVtimer: x.emulVtimer as number | null, emulPtimer: x.emulPtimer as number, line: e.line };
        break;
      case 'kvm_timer_save_state':
      case 'kvm_timer_restore_state': {
        const st = { ctl: big(x.ctl), cval: big(x.cval), line: e.line };
        const t = timer(v, x.timerIndex as number);
        if (e.event === 'kvm_timer_save_state') t.saved = st;
        else t.restored = st;
        break;
      }
      case 'kvm_timer_hrtimer_expire':
        timer(v, x.timerIndex as number).expiries.push(e.line);
        break;
      case 'kvm_timer_emulate':
        timer(v, x.timerIndex as number).emulated.push({ line: e.line, shouldFire: x.shouldFire as boolean });
        break;
      case 'kvm_timer_update_irq': {
        const irq = x.irq as number;
        let q = v.irqs.find((r) => r.irq === irq);
        if (!q) v.irqs.push((q = { irq, raised: [], lowered: [] }));
        ((x.level as number) !== 0 ? q.raised : q.lowered).push(e.line);
        break;
      }
    }
  }
  const list = [...vcpus.values()].sort((a, b) => a.vcpu - b.vcpu);
  for (const v of list) {
    v.pids.sort((a, b) => a - b);
    v.timers.sort((a, b) => a.index - b.index);
    v.irqs.sort((a, b) => a.irq - b.irq);
  }
  return { vcpus: list, unattributedLines: unattributed };
}
