// Reading a host's ftrace capture: the tracefs `trace` file or `trace-cmd report` output, text in,
// typed tracepoint records out, each with its line number. Pure: no I/O, no clock.
//
// A line of either format is `TASK-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: EVENT: BODY`, where TASK
// may hold spaces and dashes (QEMU names its vCPU threads "CPU 0/KVM"), the TGID column appears
// with options/record-tgid, and the FLAGS column (irqs-off, need-resched, …) is absent when
// irq-info is off or in trace-cmd's default report. BODY is what the event's TP_printk printed;
// the clock-related KVM events are read field by field exactly as the kernel prints them:
//   arch/x86/kvm/trace.h     kvm_write_tsc_offset  "vcpu=%u prev=%llu next=%llu"
//                            kvm_update_master_clock "masterclock %d hostclock %s offsetmatched %u"
//                            kvm_track_tsc         "vcpu_id %u masterclock %u offsetmatched %u nr_online %u hostclock %s"
//                                                  (offsetmatched prints nr_vcpus_matched_tsc)
//                            kvm_pvclock_update    "vcpu_id %u, pvclock { version %u, tsc_timestamp 0x%llx,
//                                                  system_time 0x%llx, tsc_to_system_mul 0x%x, tsc_shift %d, flags 0x%x }"
//                            kvm_msr               "msr_%s %x = 0x%llx%s" (read|write, " (#GP)" or "")
//   arch/arm64/kvm/trace_arm.h kvm_timer_update_irq "VCPU: %ld, IRQ %d, level %d"
//                            kvm_timer_save_state  "   CTL: %#08lx CVAL: %#16llx arch_timer_ctx_index: %d"
//                            kvm_timer_restore_state "CTL: %#08lx CVAL: %#16llx arch_timer_ctx_index: %d"
//                            kvm_get_timer_map     "VCPU: %ld, dv: %d, dp: %d, ep: %d" (6.3+: "…, dp: %d, ev: %d, ep: %d")
//                            kvm_timer_hrtimer_expire "arch_timer_ctx_index: %d"
//                            kvm_timer_emulate     "arch_timer_ctx_index: %d (should_fire: %d)"
// Every other event is counted, not read. A known event whose body does not read is refused.
import { CodedError } from '../../lib/coded-error.js';

/** A capture that cannot be read: the line it stopped at, and why. */
export class TraceParseError extends CodedError<'invalid_trace'> {
  constructor(message: string, details?: Record<string, unknown>) {
    super('invalid_trace', message, details);
  }
}

export type TraceFormat = 'tracefs' | 'trace-cmd' | 'unknown';

export type TraceFields =
  | { event: 'kvm_write_tsc_offset'; vcpu: number; prev: bigint; next: bigint }
  | { event: 'kvm_update_master_clock'; masterclock: boolean; hostclock: string; offsetMatched: boolean }
  | { event: 'kvm_track_tsc'; vcpu: number; masterclock: boolean; nrVcpusMatchedTsc: number; nrOnline: number; hostclock: string }
  | { event: 'kvm_pvclock_update'; vcpu: number; version: number; tscTimestamp: bigint; systemTime: bigint; tscToSystemMul: number; tscShift: number; flags: number }
  | { event: 'kvm_msr'; write: boolean; msr: number; data: bigint; gp: boolean }
  | { event: 'kvm_timer_update_irq'; vcpu: number; irq: number; level: number }
  | { event: 'kvm_timer_save_state' | 'kvm_timer_restore_state'; ctl: bigint; cval: bigint; timerIndex: number }
  /** the timers a vCPU load maps: arch_timer_ctx_index of each, -1 for none; emulVtimer null in the pre-6.3 format */
  | { event: 'kvm_get_timer_map'; vcpu: number; directVtimer: number; directPtimer: number; emulVtimer: number | null; emulPtimer: number }
  | { event: 'kvm_timer_hrtimer_expire'; timerIndex: number }
  | { event: 'kvm_timer_emulate'; timerIndex: number; shouldFire: boolean };

export type KnownEvent = TraceFields['event'];

/** One tracepoint hit of a known event, as the capture printed it. */
export interface TraceRecord {
  /** 1-based line number in the capture */
  line: number;
  task: string;
  /** the thread id printed after the task name */
  pid: number;
  /** the thread group (the VMM process), when the capture has the TGID column */
  tgid: number | null;
  cpu: number;
  /** the latency flags column, when present */
  flags: string | null;
  /** the timestamp as printed (seconds.fraction for the time clocks, a bare count for counter clocks) */
  timestamp: string;
  /** the timestamp in ns, when it is seconds.fraction (null for counter clocks such as x86-tsc) */
  timeNs: bigint | null;
  fields: TraceFields;
}

export interface ParsedTrace {
  format: TraceFormat;
  records: TraceRecord[];
  /** event lines of events this reader does not read */
  ignored: number;
  /** per ignored event name, how many */
  ignoredByEvent: Record<string, number>;
  /** header and comment lines */
  headerLines: number;
  /** lines that are neither (buffer-start banners, anything else) */
  otherLines: number;
  /** events the ring buffer dropped, from tracefs "CPU:N [LOST M EVENTS]" lines: line and count */
  lost: { line: number; cpu: number; events: number }[];
}

/** The most lines a capture may have (a bound on work, not on the format). */
export const MAX_TRACE_LINES = 2_000_000;

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffff_ffff;

// TASK-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: EVENT: BODY
const EVENT_LINE = /^\s*(.+?)-(\d+)\s+(?:\(\s*(\d+|-+)\)\s+)?\[(\d+)\]\s+(?:([A-Za-z0-9.]{4,5})\s+)?(\d+(?:\.\d+)?):\s+([A-Za-z0-9_]+):\s*(.*)$/;

// The TP_printk of each known event, as a pattern over BODY.
const BODIES: { [E in KnownEvent]: RegExp } = {
  kvm_write_tsc_offset: /^vcpu=(\d+) prev=(\d+) next=(\d+)$/,
  kvm_update_master_clock: /^masterclock (-?\d+) hostclock (\S+) offsetmatched (\d+)$/,
  kvm_track_tsc: /^vcpu_id (\d+) masterclock (\d+) offsetmatched (\d+) nr_online (\d+) hostclock (\S+)$/,
  kvm_pvclock_update:
    /^vcpu_id (\d+), pvclock \{ version (\d+), tsc_timestamp 0x([0-9a-f]+), system_time 0x([0-9a-f]+), tsc_to_system_mul 0x([0-9a-f]+), tsc_shift (-?\d+), flags 0x([0-9a-f]+) \}$/,
  kvm_msr: /^msr_(read|write) ([0-9a-f]+) = 0x([0-9a-f]+)( \(#GP\))?$/,
  kvm_timer_update_irq: /^VCPU: (\d+), IRQ (\d+), level (\d+)$/,
  // (%#08lx and %#16llx: "0x" then the digits, padded with zeros or spaces to the width)
  kvm_timer_save_state: /^\s*CTL: (?:0x)?([0-9a-f]+) CVAL:\s*(?:0x)?([0-9a-f]+) arch_timer_ctx_index: (-?\d+)$/,
  kvm_timer_restore_state: /^\s*CTL: (?:0x)?([0-9a-f]+) CVAL:\s*(?:0x)?([0-9a-f]+) arch_timer_ctx_index: (-?\d+)$/,
  kvm_get_timer_map: /^VCPU: (\d+), dv: (-?\d+), dp: (-?\d+)(?:, ev: (-?\d+))?, ep: (-?\d+)$/,
  kvm_timer_hrtimer_expire: /^arch_timer_ctx_index: (-?\d+)$/,
  kvm_timer_emulate: /^arch_timer_ctx_index: (-?\d+) \(should_fire: (\d+)\)$/,
};

const isKnown = (e: string): e is KnownEvent => Object.prototype.hasOwnProperty.call(BODIES, e);

/** Read a capture. Throws TraceParseError (invalid_trace) naming the first line it cannot read. */
export function parseTrace(text: string): ParsedTrace {
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_TRACE_LINES) throw new TraceParseError(`the capture has ${lines.length} lines, more than the ${MAX_TRACE_LINES} read at once`, { lines: lines.length, max: MAX_TRACE_LINES });
  const out: ParsedTrace = { format: 'unknown', records: [], ignored: 0, ignoredByEvent: {}, headerLines: 0, otherLines: 0, lost: [] };
  let eventLines = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const lineNo = i + 1;
    if (raw.trim() === '') continue;
    const header = headerKind(raw);
    if (header) {
      out.headerLines++;
      if (out.format === 'unknown' && header !== 'comment') out.format = header;
      continue;
    }
    const m = EVENT_LINE.exec(raw);
    if (!m) {
      const lost = /^\s*CPU:(\d+) \[LOST (\d+) EVENTS\]\s*$/.exec(raw);
      if (lost) out.lost.push({ line: lineNo, cpu: Number(lost[1]), events: Number(lost[2]) });
      else out.otherLines++;
      continue;
    }
    eventLines++;
    const [, task, pid, tgid, cpu, flags, ts, event, body] = m;
    if (!isKnown(event!)) {
      out.ignored++;
      out.ignoredByEvent[event!] = (out.ignoredByEvent[event!] ?? 0) + 1;
      continue;
    }
    const fields = readBody(event, body!.trimEnd(), lineNo);
    out.records.push({
      line: lineNo,
      task: task!.trim(),
      pid: toInt(pid!, lineNo, 'pid'),
      tgid: tgid === undefined || /^-+$/.test(tgid) ? null : toInt(tgid, lineNo, 'tgid'),
      cpu: toInt(cpu!, lineNo, 'cpu'),
      flags: flags ?? null,
      timestamp: ts!,
      timeNs: timestampNs(ts!),
      fields,
    });
  }
  if (eventLines === 0) throw new TraceParseError('no trace event lines: not a tracefs trace file or trace-cmd report output', { line: null });
  return out;
}

/** Header and comment lines of either format ('comment': a '#' line that says nothing of the format). */
function headerKind(line: string): TraceFormat | 'comment' | null {
  if (/^\s*#/.test(line)) return /^#\s*tracer:/.test(line) ? 'tracefs' : 'comment';
  // trace-cmd report: "version = 6", "cpus=8", "CPU 3 is empty", "CPU0 data recorded at offset=0x..."
  if (/^(version = \d+|cpus=\d+|CPU ?\d+ is empty|CPU ?\d+ data recorded at .*|\s+\d+ bytes in size.*)\s*$/.test(line)) return 'trace-cmd';
  return null;
}

/** seconds.fraction → ns (exact); a bare count (counter clocks) → null. */
function timestampNs(ts: string): bigint | null {
  const dot = ts.indexOf('.');
  if (dot < 0) return null;
  const frac = ts.slice(dot + 1);
  if (frac.length > 9) return BigInt(ts.slice(0, dot)) * 1_000_000_000n + BigInt(frac.slice(0, 9));
  return BigInt(ts.slice(0, dot)) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'));
}

function bad(lineNo: number, event: string, why: string, body: string): TraceParseError {
  const shown = body.length > 120 ? `${body.slice(0, 117)}...` : body;
  return new TraceParseError(`line ${lineNo}: ${event}: ${why} (read "${shown}")`, { line: lineNo, event });
}

function toInt(s: string, lineNo: number, what: string, max = U32_MAX, event = 'trace'): number {
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v > max || v < 0) throw bad(lineNo, event, `${what} ${s} out of range`, s);
  return v;
}

function u64Of(digits: string, radix: 10 | 16, lineNo: number, event: string, what: string): bigint {
  const v = radix === 16 ? BigInt(`0x${digits}`) : BigInt(digits);
  if (v > U64_MAX) throw bad(lineNo, event, `${what} does not fit in 64 bits`, digits);
  return v;
}

function readBody(event: KnownEvent, body: string, lineNo: number): TraceFields {
  const m = BODIES[event].exec(body);
  const printk = BODIES[event].source;
  if (!m) throw bad(lineNo, event, `does not read as the kernel's TP_printk (${printk})`, body);
  const int = (s: string, what: string, max = U32_MAX) => toInt(s, lineNo, what, max, event);
  const sint = (s: string, what: string, min: number, max: number) => {
    const v = Number(s);
    if (!Number.isSafeInteger(v) || v < min || v > max) throw bad(lineNo, event, `${what} ${s} out of range`, body);
    return v;
  };
  const flag = (s: string, what: string) => {
    // (a C bool printed with %d or %u)
    if (s !== '0' && s !== '1') throw bad(lineNo, event, `${what} ${s} is not 0 or 1`, body);
    return s === '1';
  };
  switch (event) {
    case 'kvm_write_tsc_offset':
      return { event, vcpu: int(m[1]!, 'vcpu'), prev: u64Of(m[2]!, 10, lineNo, event, 'prev'), next: u64Of(m[3]!, 10, lineNo, event, 'next') };
    case 'kvm_update_master_clock':
      return { event, masterclock: flag(m[1]!, 'masterclock'), hostclock: m[2]!, offsetMatched: flag(m[3]!, 'offsetmatched') };
    case 'kvm_track_tsc':
      return { event, vcpu: int(m[1]!, 'vcpu_id'), masterclock: flag(m[2]!, 'masterclock'), nrVcpusMatchedTsc: int(m[3]!, 'offsetmatched'), nrOnline: int(m[4]!, 'nr_online'), hostclock: m[5]! };
    case 'kvm_pvclock_update':
      return {
        event,
        vcpu: int(m[1]!, 'vcpu_id'),
        version: int(m[2]!, 'version'),
        tscTimestamp: u64Of(m[3]!, 16, lineNo, event, 'tsc_timestamp'),
        systemTime: u64Of(m[4]!, 16, lineNo, event, 'system_time'),
        tscToSystemMul: int(String(parseInt(m[5]!, 16)), 'tsc_to_system_mul'),
        tscShift: sint(m[6]!, 'tsc_shift', -128, 127),
        flags: int(String(parseInt(m[7]!, 16)), 'flags', 0xff),
      };
    case 'kvm_msr':
      return { event, write: m[1] === 'write', msr: int(String(parseInt(m[2]!, 16)), 'msr'), data: u64Of(m[3]!, 16, lineNo, event, 'data'), gp: m[4] !== undefined };
    case 'kvm_timer_update_irq':
      return { event, vcpu: int(m[1]!, 'VCPU'), irq: int(m[2]!, 'IRQ'), level: int(m[3]!, 'level') };
    case 'kvm_timer_save_state':
    case 'kvm_timer_restore_state':
      return { event, ctl: u64Of(m[1]!, 16, lineNo, event, 'CTL'), cval: u64Of(m[2]!, 16, lineNo, event, 'CVAL'), timerIndex: sint(m[3]!, 'arch_timer_ctx_index', -1, 3) };
    case 'kvm_get_timer_map': {
      const idx = (s: string, what: string) => sint(s, what, -1, 3);
      return { event, vcpu: int(m[1]!, 'VCPU'), directVtimer: idx(m[2]!, 'dv'), directPtimer: idx(m[3]!, 'dp'), emulVtimer: m[4] === undefined ? null : idx(m[4], 'ev'), emulPtimer: idx(m[5]!, 'ep') };
    }
    case 'kvm_timer_hrtimer_expire':
      return { event, timerIndex: sint(m[1]!, 'arch_timer_ctx_index', -1, 3) };
    case 'kvm_timer_emulate':
      return { event, timerIndex: sint(m[1]!, 'arch_timer_ctx_index', -1, 3), shouldFire: flag(m[2]!, 'should_fire') };
  }
}
