// One line of a capture split into its columns by a hand-written scanner, in time linear in the
// line (no backtracking pattern: `^\s*(.+?)-(\d+)\s+…` cost quadratic time on a line of spaces).
// Pure: no I/O, no clock.
//
// The shapes read, all anchored on the CPU column `[NNN]` (the first one the rest agrees with):
//   tracefs trace / trace_pipe   TASK-PID [(TGID)] [CPU] [FLAGS] SECS.USECS: EVENT: BODY
//   trace-cmd report             TASK-PID [CPU] [FLAGS] SECS.USECS: EVENT: BODY (event name padded)
//                                (-C x86-tsc, counter clocks: a bare count instead of SECS.USECS)
//   perf script                  TASK TID [CPU] SECS.USECS: SYSTEM:EVENT: BODY, or TASK PID/TID [CPU] …
//                                (tools/perf/builtin-script.c perf_sample__fprintf_start: "%16s ",
//                                "%7d/%-7d " or "%7d ", "[%03d] ", the time, then "%s: " of the event name)
// FLAGS (irq-info) is 4 to 7 characters: 4 before migrate-disable was printed, 5 since, more on
// kernels that print more latency fields. The TGID column is options/record-tgid ("(-------)" for
// a pid it does not know). TASK may hold spaces and dashes (QEMU names its vCPU threads "CPU 0/KVM"):
// the pid is the digits just before the CPU column (and TGID), after a '-' (ftrace) or a space (perf).
//
// Why linear: the candidates `[` are found left to right once (indexOf). A candidate first reads
// its digits and ']' (a run no other candidate's digits share), then backwards over whitespace,
// the TGID column and the pid (characters that cannot include the ']' of an earlier candidate, so
// those regions are disjoint), then forwards over at most two tokens, whitespace and the event
// name (a later candidate that passes its backward check starts after whitespace, so it can begin
// only at one of those two tokens). Every character is examined a bounded number of times;
// ScanMeter counts them, and the fuzz suite holds the count under a constant times the length.

export interface LineColumns {
  task: string;
  /** the thread id as printed (digits) */
  pid: string;
  /** the thread group: the TGID column (digits, or dashes for unknown), perf's PID of PID/TID, or null */
  tgid: string | null;
  cpu: string;
  flags: string | null;
  /** SECS.FRACTION or a bare count, as printed */
  timestamp: string;
  /** perf script's system prefix ("kvm" of "kvm:kvm_msr"), null when the event name has none */
  system: string | null;
  event: string;
  /** where the body starts (after the event's colon and the whitespace after it) */
  bodyStart: number;
  /** 'perf': the pid was separated from the task by whitespace (perf script); 'ftrace': by '-' */
  shape: 'ftrace' | 'perf';
}

/** Characters examined by the scanner (a test's measure of its work). */
export interface ScanMeter {
  steps: number;
}

const isWs = (c: number) => c === 32 || c === 9 || c === 13; // space, tab, CR
const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlnum = (c: number) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isNameChar = (c: number) => isAlnum(c) || c === 95; // [A-Za-z0-9_]
const isFlagChar = (c: number) => isAlnum(c) || c === 46; // [A-Za-z0-9.]
const notWs = (c: number) => !isWs(c);
const isTgidChar = (c: number) => isWs(c) || isDigit(c) || c === 45; // the TGID column: digits or dashes, padded

/** The latency flags column's width: 4 (before migrate-disable), 5, and up to 7 on newer kernels. */
export const FLAGS_MIN = 4;
export const FLAGS_MAX = 7;

// Characters examined by the scan in progress: each loop below adds the characters it read.
let steps = 0;

/** The first index at or after i whose character fails test (n if none). */
function skip(s: string, i: number, n: number, test: (c: number) => boolean): number {
  const start = i;
  while (i < n && test(s.charCodeAt(i))) i++;
  steps += i - start + 1;
  return i;
}

/** The last index at or before i whose character fails test (-1 if none). */
function skipBack(s: string, i: number, test: (c: number) => boolean): number {
  const start = i;
  while (i >= 0 && test(s.charCodeAt(i))) i--;
  steps += start - i + 1;
  return i;
}

/** [a, b) is DIGITS[.DIGITS]: (a timestamp and its colon) */
function isTimestamp(s: string, a: number, b: number): boolean {
  if (b - a < 2 || s.charCodeAt(b - 1) !== 58) return false;
  const k = skip(s, a, b - 1, isDigit);
  if (k === a) return false;
  if (k === b - 1) return true;
  if (s.charCodeAt(k) !== 46) return false;
  const e = skip(s, k + 1, b - 1, isDigit);
  return e === b - 1 && e > k + 1;
}

/** The columns of an event line, or null: the line is not one (prose, a banner, another layout). */
export function scanTraceLine(s: string, meter?: ScanMeter): LineColumns | null {
  steps = 0;
  const n = s.length;
  const first = skip(s, 0, n, isWs);
  let found: LineColumns | null = null;
  let from = first;
  for (let open = s.indexOf('[', first); open !== -1; open = s.indexOf('[', open + 1)) {
    steps += open - from + 1;
    from = open + 1;
    found = scanAt(s, open, first);
    if (found) break;
  }
  if (!found) steps += n - Math.min(from, n);
  if (meter) meter.steps += steps;
  return found;
}

/** The line read with the CPU column at `open` (first: the line's first non-blank character). */
function scanAt(s: string, open: number, first: number): LineColumns | null {
  const n = s.length;
  // [CPU]
  let i = skip(s, open + 1, n, isDigit);
  if (i === open + 1 || i >= n || s.charCodeAt(i) !== 93 /* ] */) return null;
  const cpu = s.slice(open + 1, i);
  const close = i;

  // backwards: whitespace, [(TGID) whitespace], PID, then '-' (ftrace) or whitespace / PID/ (perf)
  if (open === 0 || !isWs(s.charCodeAt(open - 1))) return null;
  let j = skipBack(s, open - 1, isWs);
  let tgid: string | null = null;
  if (j >= 0 && s.charCodeAt(j) === 41 /* ) */) {
    const end = j;
    j = skipBack(s, j - 1, isTgidChar);
    if (j < 0 || s.charCodeAt(j) !== 40 /* ( */) return null;
    tgid = s.slice(j + 1, end).trim();
    if (!/^(?:\d+|-+)$/.test(tgid)) return null; // (within the run the scan above read)
    if (j === 0 || !isWs(s.charCodeAt(j - 1))) return null;
    j = skipBack(s, j - 1, isWs);
  }
  const pidEnd = j + 1;
  j = skipBack(s, j, isDigit);
  if (j + 1 === pidEnd || j < 0) return null;
  const pid = s.slice(j + 1, pidEnd);
  let taskEnd: number;
  let shape: LineColumns['shape'];
  const sep = s.charCodeAt(j);
  if (sep === 45 /* - */) {
    shape = 'ftrace';
    taskEnd = j;
  } else if (sep === 47 /* / */ && tgid === null) {
    // perf script's PID/TID: the process id before the slash
    const slash = j;
    j = skipBack(s, j - 1, isDigit);
    if (j + 1 === slash || j < 0 || !isWs(s.charCodeAt(j))) return null;
    tgid = s.slice(j + 1, slash);
    shape = 'perf';
    taskEnd = j;
  } else if (isWs(sep) && tgid === null) {
    shape = 'perf';
    taskEnd = j;
  } else return null;
  // a task: some non-blank character before its end
  if (taskEnd <= first) return null;

  // forwards: whitespace, [FLAGS whitespace], TIMESTAMP ':'
  if (close + 1 >= n || !isWs(s.charCodeAt(close + 1))) return null;
  let t0 = skip(s, close + 1, n, isWs);
  i = skip(s, t0, n, notWs);
  let flags: string | null = null;
  if (!isTimestamp(s, t0, i)) {
    const w = i - t0;
    if (w < FLAGS_MIN || w > FLAGS_MAX || skip(s, t0, i, isFlagChar) !== i || i >= n) return null;
    flags = s.slice(t0, i);
    t0 = skip(s, i, n, isWs);
    i = skip(s, t0, n, notWs);
    if (!isTimestamp(s, t0, i)) return null;
  }
  const timestamp = s.slice(t0, i - 1);

  // whitespace, [SYSTEM:]EVENT ':', then whitespace or the end
  if (i >= n) return null;
  const e0 = skip(s, i, n, isWs);
  i = skip(s, e0, n, isNameChar);
  if (i === e0 || i >= n || s.charCodeAt(i) !== 58 /* : */) return null;
  let system: string | null = null;
  let event = s.slice(e0, i);
  if (i + 1 < n && isNameChar(s.charCodeAt(i + 1))) {
    system = event;
    const e1 = i + 1;
    i = skip(s, e1, n, isNameChar);
    if (i >= n || s.charCodeAt(i) !== 58) return null;
    event = s.slice(e1, i);
  }
  i++;
  if (i < n && !isWs(s.charCodeAt(i))) return null;
  return { task: s.slice(first, taskEnd).trimEnd(), pid, tgid, cpu, flags, timestamp, system, event, bodyStart: skip(s, i, n, isWs), shape };
}
