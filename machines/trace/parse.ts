// Reading a host's ftrace capture: the tracefs `trace` file (or trace_pipe), `trace-cmd report` output
// (also with counter timestamps, -C x86-tsc) or `perf script` output, as it comes: lines quoted in
// email ("> ") and prose between the lines included. Text in, typed tracepoint records out, each with
// its line number, and an account of every line. Pure: no I/O, no clock.
//
// A line's columns (TASK-PID [(TGID)] [CPU] [FLAGS] TIMESTAMP: [SYSTEM:]EVENT: BODY, line.ts reads
// them in linear time) are bounded before any is converted. BODY is what the event's TP_printk printed;
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
// Every other line is counted by what it is (ParsedTrace.lines: other events by name, header, blank,
// lost-event markers, unreadable with the first one shown). A known event whose columns or body do
// not read is refused (invalid_trace, naming the line), and so is a line of no known layout that
// names a known event ("kvm_write_tsc_offset:"): dropping it would change what the trace says.
import { CodedError } from '../../lib/coded-error.js';
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { KVM_MAX_VCPU_IDS as ARM64_KVM_MAX_VCPU_IDS } from '../../kvm/arm64/vm.js';
import { scanTraceLine, type LineColumns } from './line.js';

/** A capture that cannot be read: the line it stopped at, and why. */
export class TraceParseError extends CodedError<'invalid_trace'> {
  constructor(message: string, details?: Record<string, unknown>) {
    super('invalid_trace', message, details);
  }
}

export type TraceFormat = 'tracefs' | 'trace-cmd' | 'perf-script' | 'unknown';

export type TraceFields =
  | { event: 'kvm_write_tsc_offset'; vcpu: number; prev: bigint; next: bigint }
  | { event: 'kvm_update_master_clock'; masterclock: boolean; hostclock: string; offsetMatched: boolean }
  | { event: 'kvm_track_tsc'; vcpu: number; masterclock: boolean; nrVcpusMatchedTsc: number; nrOnline: number; hostclock: string }
  | {
      event: 'kvm_pvclock_update';
      vcpu: number;
      version: number;
      tscTimestamp: bigint;
      systemTime: bigint;
      tscToSystemMul: number;
      tscShift: number;
      flags: number;
    }
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
  /** the thread group (the VMM process), when the capture has the TGID column (perf script: PID/TID) */
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

/** What each line of a capture was: every line is counted in exactly one of the kinds after total. */
export interface TraceLineCounts {
  total: number;
  /** event lines of the events read (the records) */
  read: number;
  /** event lines of other events: counted by name (ignoredByEvent), not read */
  ignored: number;
  /** '#' header and comment lines, and the header lines of trace-cmd report */
  header: number;
  blank: number;
  /** "CPU:N [LOST M EVENTS]" markers (their counts are in lost) */
  lostMarkers: number;
  /** lines of no layout read here: prose between trace lines, banners, other tools' output (firstUnreadable) */
  unreadable: number;
  /** of all these, the lines that carried an email quote prefix ("> "), read without it */
  quoted: number;
}

export interface ParsedTrace {
  format: TraceFormat;
  records: TraceRecord[];
  /** event lines of events this reader does not read */
  ignored: number;
  /** per event read, how many lines */
  readByEvent: Record<string, number>;
  /** per ignored event name, how many (perf's system prefix kept when it is not "kvm") */
  ignoredByEvent: Record<string, number>;
  lines: TraceLineCounts;
  /** the first unreadable line, as it reads (at most MAX_SHOWN_CHARS characters) */
  firstUnreadable: { line: number; text: string } | null;
  /** events the ring buffer dropped, from tracefs "CPU:N [LOST M EVENTS]" lines: line and count */
  lost: { line: number; cpu: number; events: number }[];
}

/** The most lines a capture may have (a bound on work, not on the format). */
export const MAX_TRACE_LINES = 2_000_000;
/** A known event's body longer than any its TP_printk prints (the longest, kvm_pvclock_update, is 174 characters) is refused. */
export const MAX_BODY_CHARS = 256;
/**
 * A task name longer than this is refused: the kernel's comm is at most 15 characters
 * (include/linux/sched.h TASK_COMM_LEN 16), and ftrace, trace-cmd and perf print it padded, not longer.
 */
export const MAX_TASK_CHARS = 64;
/** What a message or firstUnreadable quotes of a line. */
export const MAX_SHOWN_CHARS = 120;
/**
 * The vCPU ids an x86 host can print: KVM_MAX_VCPU_IDS = KVM_MAX_VCPUS × KVM_VCPU_ID_RATIO (4)
 * (arch/x86/include/asm/kvm_host.h, torvalds/linux 004a0aa56ede), KVM_MAX_VCPUS being
 * CONFIG_KVM_MAX_NR_VCPUS, "range 1024 4096" (arch/x86/kvm/Kconfig, torvalds/linux 0542972950ef):
 * ids below 4096 × 4 with the largest configuration.
 */
export const X86_TRACE_MAX_VCPU_IDS = 4096 * 4;
/** arm64: KVM_MAX_VCPU_IDS defaults to KVM_MAX_VCPUS, the GICv3 limit 512 (kvm/arm64/vm.ts cites it). */
export const ARM64_TRACE_MAX_VCPU_IDS = ARM64_KVM_MAX_VCPU_IDS;

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffff_ffff;

// The TP_printk of each known event, as a pattern over BODY (at most MAX_BODY_CHARS characters).
const BODIES: { [E in KnownEvent]: RegExp } = {
  kvm_write_tsc_offset: /^vcpu=(\d+) prev=(\d+) next=(\d+)$/,
  kvm_update_master_clock: /^masterclock (-?\d+) hostclock (\S+) offsetmatched (\d+)$/,
  kvm_track_tsc: /^vcpu_id (\d+) masterclock (\d+) offsetmatched (\d+) nr_online (\d+) hostclock (\S+)$/,
  kvm_pvclock_update: new RegExp(
    String.raw`^vcpu_id (\d+), pvclock \{ version (\d+), tsc_timestamp 0x([0-9a-f]+), system_time 0x([0-9a-f]+), ` +
      String.raw`tsc_to_system_mul 0x([0-9a-f]+), tsc_shift (-?\d+), flags 0x([0-9a-f]+) \}$`,
  ),
  kvm_msr: /^msr_(read|write) ([0-9a-f]+) = 0x([0-9a-f]+)( \(#GP\))?$/,
  kvm_timer_update_irq: /^VCPU: (\d+), IRQ (\d+), level (\d+)$/,
  // (%#08lx and %#16llx: "0x" then the digits, padded with zeros or spaces to the width)
  kvm_timer_save_state: /^\s*CTL: (?:0x)?([0-9a-f]+) CVAL:\s*(?:0x)?([0-9a-f]+) arch_timer_ctx_index: (-?\d+)$/,
  kvm_timer_restore_state: /^\s*CTL: (?:0x)?([0-9a-f]+) CVAL:\s*(?:0x)?([0-9a-f]+) arch_timer_ctx_index: (-?\d+)$/,
  kvm_get_timer_map: /^VCPU: (\d+), dv: (-?\d+), dp: (-?\d+)(?:, ev: (-?\d+))?, ep: (-?\d+)$/,
  kvm_timer_hrtimer_expire: /^arch_timer_ctx_index: (-?\d+)$/,
  kvm_timer_emulate: /^arch_timer_ctx_index: (-?\d+) \(should_fire: (\d+)\)$/,
};
const KNOWN = Object.keys(BODIES) as KnownEvent[];

const isKnown = (e: string): e is KnownEvent => Object.hasOwn(BODIES, e);

/** Read a capture. Throws TraceParseError (invalid_trace) naming the first line it cannot read. */
export function parseTrace(text: string): ParsedTrace {
  const out: ParsedTrace = {
    format: 'unknown',
    records: [],
    ignored: 0,
    readByEvent: {},
    ignoredByEvent: {},
    lines: { total: 0, read: 0, ignored: 0, header: 0, blank: 0, lostMarkers: 0, unreadable: 0, quoted: 0 },
    firstUnreadable: null,
    lost: [],
  };
  let headerFormat: TraceFormat | null = null;
  let lineFormat: TraceFormat | null = null;
  // lines one at a time (a split would hold every line of a 256 MiB file at once)
  for (let pos = 0, lineNo = 1; pos < text.length; lineNo++) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    if (lineNo > MAX_TRACE_LINES) {
      throw new TraceParseError(`the capture has more than the ${MAX_TRACE_LINES} lines read at once`, { line: lineNo, max: MAX_TRACE_LINES });
    }
    const line = unquoted(text.slice(pos, nl), out.lines);
    pos = nl + 1;
    out.lines.total++;
    const kind = readLine(line, lineNo, out);
    if (kind === 'perf-script' || kind === 'event') lineFormat ??= kind === 'perf-script' ? 'perf-script' : 'unknown';
    else if (kind === 'tracefs' || kind === 'trace-cmd') headerFormat ??= kind;
  }
  out.format = headerFormat ?? lineFormat ?? 'unknown';
  if (out.lines.read + out.lines.ignored === 0) {
    const first = out.firstUnreadable;
    throw new TraceParseError(
      "no trace event lines (TASK-PID [CPU] [FLAGS] TIMESTAMP: EVENT: ..., or perf script's TASK PID [CPU] TIMESTAMP: SYSTEM:EVENT: ...)" +
        (first ? `: the first line not read is line ${first.line}, "${first.text}"` : ''),
      { line: first?.line ?? null },
    );
  }
  return out;
}

/** The line without an email quote prefix ("> ", "> > ", ">> "), counted when it had one. */
function unquoted(raw: string, counts: TraceLineCounts): string {
  const s = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  if (s.charCodeAt(0) !== 62 /* > */) return s;
  let k = 0;
  while (s.charCodeAt(k) === 62) {
    k++;
    if (s.charCodeAt(k) === 32) k++;
  }
  counts.quoted++;
  return s.slice(k);
}

/** Read one line into out; what it was. */
function readLine(s: string, lineNo: number, out: ParsedTrace): TraceFormat | 'event' | 'other' {
  let first = 0;
  while (first < s.length && (s.charCodeAt(first) === 32 || s.charCodeAt(first) === 9)) first++;
  if (first === s.length) {
    out.lines.blank++;
    return 'other';
  }
  const header = headerKind(s, first);
  if (header) {
    out.lines.header++;
    return header === 'comment' ? 'other' : header;
  }
  const col = scanTraceLine(s);
  if (!col) {
    const lost = /^\s*CPU:(\d{1,10}) \[LOST (\d{1,20}) EVENTS\]\s*$/.exec(s);
    if (lost) {
      out.lines.lostMarkers++;
      out.lost.push({ line: lineNo, cpu: Number(lost[1]), events: Number(lost[2]) });
      return 'other';
    }
    const named = namedKnownEvent(s);
    if (named) {
      throw new TraceParseError(
        `line ${lineNo}: ${named}: the line names a clock event read here but its columns do not read as TASK-PID [CPU] [FLAGS] TIMESTAMP: EVENT: ` +
          `(read "${shown(s)}")`,
        { line: lineNo, event: named },
      );
    }
    out.lines.unreadable++;
    out.firstUnreadable ??= { line: lineNo, text: shown(s) };
    return 'other';
  }
  const shape = col.shape === 'perf' || col.system !== null ? 'perf-script' : 'event';
  // (perf names an event with its system: the kvm tracepoints are "kvm:...", any other system is another event)
  const name = col.system === null || col.system === 'kvm' ? col.event : `${col.system}:${col.event}`;
  if (!isKnown(name)) {
    out.lines.ignored++;
    out.ignored++;
    out.ignoredByEvent[name] = (out.ignoredByEvent[name] ?? 0) + 1;
    return shape;
  }
  out.records.push(recordOf(col, s, name, lineNo));
  out.lines.read++;
  out.readByEvent[name] = (out.readByEvent[name] ?? 0) + 1;
  return shape;
}

/** Header and comment lines of either format ('comment': a '#' line that says nothing of the format). */
function headerKind(line: string, first: number): TraceFormat | 'comment' | null {
  if (line.charCodeAt(first) === 35 /* # */) return /^#\s*tracer:/.test(line) ? 'tracefs' : 'comment';
  // trace-cmd report: "version = 6", "cpus=8", "CPU 3 is empty", "CPU0 data recorded at offset=0x..."
  if (/^(version = \d+|cpus=\d+|CPU ?\d+ is empty|CPU ?\d+ data recorded at .*|\s+\d+ bytes in size.*)\s*$/.test(line)) return 'trace-cmd';
  return null;
}

/** The known event a line names as a tracepoint ("kvm_msr:", not as part of a longer name), if any. */
function namedKnownEvent(s: string): KnownEvent | null {
  for (const e of KNOWN) {
    const key = `${e}:`;
    for (let k = s.indexOf(key); k !== -1; k = s.indexOf(key, k + 1)) {
      const before = k === 0 ? 32 : s.charCodeAt(k - 1);
      if (!(before === 95 || (before >= 48 && before <= 57) || (before >= 65 && before <= 90) || (before >= 97 && before <= 122))) return e;
    }
  }
  return null;
}

const shown = (s: string) => (s.length > MAX_SHOWN_CHARS ? `${s.slice(0, MAX_SHOWN_CHARS - 3)}...` : s);

function bad(lineNo: number, event: string, why: string, text: string): TraceParseError {
  return new TraceParseError(`line ${lineNo}: ${event}: ${why} (read "${shown(text)}")`, { line: lineNo, event });
}

/** A known event's record: its columns bounded before they are converted, then its body. */
function recordOf(col: LineColumns, s: string, event: KnownEvent, lineNo: number): TraceRecord {
  if (col.task.length > MAX_TASK_CHARS) throw bad(lineNo, event, `a task name of ${col.task.length} characters, longer than any the kernel prints`, col.task);
  const body = s.slice(col.bodyStart);
  if (body.length > MAX_BODY_CHARS) throw bad(lineNo, event, `a body of ${body.length} characters, longer than any ${event} prints (${MAX_BODY_CHARS})`, body);
  return {
    line: lineNo,
    task: col.task,
    pid: toInt(col.pid, lineNo, 'pid', U32_MAX, event),
    tgid: col.tgid === null || col.tgid.startsWith('-') ? null : toInt(col.tgid, lineNo, 'tgid', U32_MAX, event),
    cpu: toInt(col.cpu, lineNo, 'cpu', U32_MAX, event),
    flags: col.flags,
    timestamp: col.timestamp,
    timeNs: timestampNs(col.timestamp, lineNo, event),
    fields: readBody(event, body.trimEnd(), lineNo),
  };
}

/** seconds.fraction → ns (exact, within u64); a bare count (counter clocks) → null, within u64. */
function timestampNs(ts: string, lineNo: number, event: string): bigint | null {
  const dot = ts.indexOf('.');
  const secs = dot < 0 ? ts : ts.slice(0, dot);
  const frac = dot < 0 ? '' : ts.slice(dot + 1);
  if (secs.length > 20 || frac.length > 9) {
    throw bad(lineNo, event, `timestamp ${shown(ts)} has more digits than a u64 count of ns (20, and 9 after the point)`, ts);
  }
  if (dot < 0) {
    if (BigInt(secs) > U64_MAX) throw bad(lineNo, event, 'timestamp does not fit in 64 bits', ts);
    return null;
  }
  const ns = BigInt(secs) * NSEC_PER_SEC + BigInt(frac.padEnd(9, '0'));
  if (ns > U64_MAX) throw bad(lineNo, event, 'timestamp is more ns than 64 bits hold', ts);
  return ns;
}

/** A decimal field as a number, its digits counted before it is converted. */
function toInt(s: string, lineNo: number, what: string, max = U32_MAX, event = 'trace'): number {
  const v = s.length > 16 ? Infinity : Number(s);
  if (!Number.isSafeInteger(v) || v > max || v < 0) throw bad(lineNo, event, `${what} ${shown(s)} out of range`, s);
  return v;
}

/** A hexadecimal field within 32 bits (leading zeros allowed), its digits counted before it is converted. */
function hexInt(digits: string, lineNo: number, event: string, what: string, max = U32_MAX): number {
  const d = digits.replace(/^0+(?=.)/, '');
  const v = d.length > 8 ? Infinity : parseInt(d, 16);
  if (v > max) throw bad(lineNo, event, `${what} 0x${shown(digits)} out of range`, digits);
  return v;
}

function u64Of(digits: string, radix: 10 | 16, lineNo: number, event: string, what: string): bigint {
  const d = digits.replace(/^0+(?=.)/, '');
  if (d.length > (radix === 16 ? 16 : 20)) throw bad(lineNo, event, `${what} does not fit in 64 bits`, digits);
  const v = radix === 16 ? BigInt(`0x${d}`) : BigInt(d);
  if (v > U64_MAX) throw bad(lineNo, event, `${what} does not fit in 64 bits`, digits);
  return v;
}

function readBody(event: KnownEvent, body: string, lineNo: number): TraceFields {
  const m = BODIES[event].exec(body);
  const printk = BODIES[event].source;
  if (!m) throw bad(lineNo, event, `does not read as the kernel's TP_printk (${printk})`, body);
  const int = (s: string, what: string, max = U32_MAX) => toInt(s, lineNo, what, max, event);
  const sint = (s: string, what: string, min: number, max: number) => {
    const v = s.length > 16 ? NaN : Number(s);
    if (!Number.isSafeInteger(v) || v < min || v > max) throw bad(lineNo, event, `${what} ${shown(s)} out of range`, body);
    return v;
  };
  const flag = (s: string, what: string) => {
    // (a C bool printed with %d or %u)
    if (s !== '0' && s !== '1') throw bad(lineNo, event, `${what} ${shown(s)} is not 0 or 1`, body);
    return s === '1';
  };
  // a vCPU id within what the host's KVM can create (KVM_MAX_VCPU_IDS of the event's architecture)
  const vcpuId = (s: string, what: string, ids: number) => {
    const v = toInt(s, lineNo, what, U32_MAX, event);
    if (v >= ids) throw bad(lineNo, event, `${what} ${v} is not a vCPU id a host's KVM creates (KVM_MAX_VCPU_IDS is at most ${ids})`, body);
    return v;
  };
  const x86Vcpu = (s: string, what: string) => vcpuId(s, what, X86_TRACE_MAX_VCPU_IDS);
  const arm64Vcpu = (s: string, what: string) => vcpuId(s, what, ARM64_TRACE_MAX_VCPU_IDS);
  switch (event) {
    case 'kvm_write_tsc_offset':
      return { event, vcpu: x86Vcpu(m[1]!, 'vcpu'), prev: u64Of(m[2]!, 10, lineNo, event, 'prev'), next: u64Of(m[3]!, 10, lineNo, event, 'next') };
    case 'kvm_update_master_clock':
      return { event, masterclock: flag(m[1]!, 'masterclock'), hostclock: m[2]!, offsetMatched: flag(m[3]!, 'offsetmatched') };
    case 'kvm_track_tsc':
      return {
        event,
        vcpu: x86Vcpu(m[1]!, 'vcpu_id'),
        masterclock: flag(m[2]!, 'masterclock'),
        nrVcpusMatchedTsc: int(m[3]!, 'offsetmatched'),
        nrOnline: int(m[4]!, 'nr_online'),
        hostclock: m[5]!,
      };
    case 'kvm_pvclock_update':
      return {
        event,
        vcpu: x86Vcpu(m[1]!, 'vcpu_id'),
        version: int(m[2]!, 'version'),
        tscTimestamp: u64Of(m[3]!, 16, lineNo, event, 'tsc_timestamp'),
        systemTime: u64Of(m[4]!, 16, lineNo, event, 'system_time'),
        tscToSystemMul: hexInt(m[5]!, lineNo, event, 'tsc_to_system_mul'),
        tscShift: sint(m[6]!, 'tsc_shift', -128, 127),
        flags: hexInt(m[7]!, lineNo, event, 'flags', 0xff),
      };
    case 'kvm_msr':
      return { event, write: m[1] === 'write', msr: hexInt(m[2]!, lineNo, event, 'msr'), data: u64Of(m[3]!, 16, lineNo, event, 'data'), gp: !!m[4] };
    case 'kvm_timer_update_irq':
      return { event, vcpu: arm64Vcpu(m[1]!, 'VCPU'), irq: int(m[2]!, 'IRQ'), level: int(m[3]!, 'level') };
    case 'kvm_timer_save_state':
    case 'kvm_timer_restore_state':
      return {
        event,
        ctl: u64Of(m[1]!, 16, lineNo, event, 'CTL'),
        cval: u64Of(m[2]!, 16, lineNo, event, 'CVAL'),
        timerIndex: sint(m[3]!, 'arch_timer_ctx_index', -1, 3),
      };
    case 'kvm_get_timer_map': {
      const idx = (s: string, what: string) => sint(s, what, -1, 3);
      return {
        event,
        vcpu: arm64Vcpu(m[1]!, 'VCPU'),
        directVtimer: idx(m[2]!, 'dv'),
        directPtimer: idx(m[3]!, 'dp'),
        emulVtimer: m[4] === undefined ? null : idx(m[4], 'ev'),
        emulPtimer: idx(m[5]!, 'ep'),
      };
    }
    case 'kvm_timer_hrtimer_expire':
      return { event, timerIndex: sint(m[1]!, 'arch_timer_ctx_index', -1, 3) };
    case 'kvm_timer_emulate':
      return { event, timerIndex: sint(m[1]!, 'arch_timer_ctx_index', -1, 3), shouldFire: flag(m[2]!, 'should_fire') };
  }
}
