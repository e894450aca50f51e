// The arm64 timer tracepoints of a VM's capture (arch/arm64/kvm/trace_arm.h), set out by vCPU for
// the trace audit: none of them prints the counter offset (CNTVOFF), so this is the timers' state,
// not the offsets.
import type { TraceFields, TraceRecord } from './parse.js';

/** arch_timer_ctx_index() names: TIMER_PTIMER is 1, TIMER_VTIMER 0, then the EL2 timers (NV). */
export const ARM64_TIMER_NAMES = ['vtimer', 'ptimer', 'hvtimer', 'hptimer'] as const;

export interface Arm64TimerState {
  ctl: bigint;
  cval: bigint;
  line: number;
}

/** One timer of a vCPU by its arch_timer_ctx_index: its last saved and restored state, its expiries and emulations. */
export interface Arm64Timer {
  index: number;
  timer: string;
  saved: Arm64TimerState | null;
  restored: Arm64TimerState | null;
  expiries: number[];
  emulated: { line: number; shouldFire: boolean }[];
}

/**
 * One vCPU's arm64 timers as the capture shows them. A thread is a vCPU from the first
 * kvm_get_timer_map or kvm_timer_update_irq it prints.
 */
export interface Arm64TimerVcpu {
  vcpu: number;
  /** the threads its events came from */
  pids: number[];
  /** the last kvm_get_timer_map: arch_timer_ctx_index of each timer, -1 none (emulVtimer null: pre-6.3 format) */
  map: { directVtimer: number; directPtimer: number; emulVtimer: number | null; emulPtimer: number; line: number } | null;
  /** per timer index seen: the last kvm_timer_save_state and kvm_timer_restore_state */
  timers: Arm64Timer[];
  /** per IRQ: the lines that raised it (level 1) and lowered it (level 0) */
  irqs: { irq: number; raised: number[]; lowered: number[] }[];
}

/** The VM's timer tracepoints per vCPU, and the lines no vCPU could be told for (null: the VM has none). */
export type Arm64Timers = { vcpus: Arm64TimerVcpu[]; unattributedLines: number[] } | null;

const ARM64_TIMER_EVENTS = new Set([
  'kvm_timer_update_irq',
  'kvm_get_timer_map',
  'kvm_timer_save_state',
  'kvm_timer_restore_state',
  'kvm_timer_hrtimer_expire',
  'kvm_timer_emulate',
]);

/** The events that name their vCPU: a thread printing one is that vCPU's. */
type Named = Extract<TraceFields, { event: 'kvm_get_timer_map' | 'kvm_timer_update_irq' }>;
const namesVcpu = (f: TraceFields): f is Named => f.event === 'kvm_get_timer_map' || f.event === 'kvm_timer_update_irq';

/** The arm64 timer tracepoints by vCPU (null: none in this VM). */
export function arm64TimersOf(recs: TraceRecord[]): Arm64Timers {
  const timerRecs = recs.filter((e) => ARM64_TIMER_EVENTS.has(e.fields.event));
  if (!timerRecs.length) return null;
  // a thread is the vCPU its kvm_get_timer_map (kvm_timer_vcpu_load) or kvm_timer_update_irq names
  const vcpuOfPid = new Map<number, number>();
  for (const e of timerRecs) if (namesVcpu(e.fields) && !vcpuOfPid.has(e.pid)) vcpuOfPid.set(e.pid, e.fields.vcpu);
  const vcpus = new Map<number, Arm64TimerVcpu>();
  const unattributed: number[] = [];
  const vcpuEntry = (id: number) => vcpus.get(id) ?? vcpus.set(id, { vcpu: id, pids: [], map: null, timers: [], irqs: [] }).get(id)!;
  const timer = (v: Arm64TimerVcpu, index: number) => {
    let t = v.timers.find((x) => x.index === index);
    if (!t) v.timers.push((t = { index, timer: ARM64_TIMER_NAMES[index] ?? `timer ${index}`, saved: null, restored: null, expiries: [], emulated: [] }));
    return t;
  };
  for (const e of timerRecs) {
    const x = e.fields;
    // kvm_timer_update_irq and kvm_get_timer_map name their vCPU; the others are the thread's
    const id = namesVcpu(x) ? x.vcpu : vcpuOfPid.get(e.pid);
    if (id === undefined) {
      unattributed.push(e.line);
      continue;
    }
    const v = vcpuEntry(id);
    if (!v.pids.includes(e.pid)) v.pids.push(e.pid);
    switch (x.event) {
      case 'kvm_get_timer_map':
        v.map = { directVtimer: x.directVtimer, directPtimer: x.directPtimer, emulVtimer: x.emulVtimer, emulPtimer: x.emulPtimer, line: e.line };
        break;
      case 'kvm_timer_save_state':
      case 'kvm_timer_restore_state': {
        const st = { ctl: x.ctl, cval: x.cval, line: e.line };
        const t = timer(v, x.timerIndex);
        if (x.event === 'kvm_timer_save_state') t.saved = st;
        else t.restored = st;
        break;
      }
      case 'kvm_timer_hrtimer_expire':
        timer(v, x.timerIndex).expiries.push(e.line);
        break;
      case 'kvm_timer_emulate':
        timer(v, x.timerIndex).emulated.push({ line: e.line, shouldFire: x.shouldFire });
        break;
      case 'kvm_timer_update_irq': {
        let q = v.irqs.find((r) => r.irq === x.irq);
        if (!q) v.irqs.push((q = { irq: x.irq, raised: [], lowered: [] }));
        (x.level !== 0 ? q.raised : q.lowered).push(e.line);
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
