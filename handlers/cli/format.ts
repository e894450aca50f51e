// Human output: aligned tables, key: value blocks, offsets and instants with a hint, and a generic
// rendering for any JSON response (durations and rates are written by lib/units.ts). u64/s64
// values stay the exact decimal strings they are; text from the log or a request has its control
// characters escaped (lib/printable.ts).

import { MSRS } from '../../kvm/uapi.js';
import { isPlainObject } from '../../lib/plain-object.js';
import { printable } from '../../lib/printable.js';
import { nsExactAndReadable, nsReadable } from '../../lib/units.js';
import { wrapWords } from '../../lib/wrap.js';

export type Cell = string | number | boolean | null | undefined;

const NUMERIC = /^-?\d+(\.\d+)?( \(.*\))?$/;

/**
 * The width human output wraps to: the terminal's, else $COLUMNS, else none (a pipe or a file
 * gets whole lines).
 */
export function outputWidth(): number {
  if (process.stdout.isTTY && process.stdout.columns) return process.stdout.columns;
  const env = Number(process.env.COLUMNS);
  return Number.isInteger(env) && env > 0 ? env : Infinity;
}

/**
 * An aligned table: a header, a rule, one line per row; numeric columns right-aligned. Nothing
 * is cut: when the table is wider than `width` (default outputWidth()), the `wrap` column
 * (default the last, unless numeric) is wrapped onto continuation lines.
 */
export function table(columns: string[], rows: Cell[][], opts: { indent?: string; width?: number; wrap?: number | false } = {}): string {
  const indent = opts.indent ?? '';
  const text = rows.map((r) => columns.map((_, i) => cellText(r[i]).replace(/\s*\n\s*/g, ' ')));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((r) => r[i]!.length)));
  const numeric = columns.map((_, i) => text.length > 0 && text.every((r) => r[i] === '' || NUMERIC.test(r[i]!)));
  const w = opts.wrap === undefined ? (numeric[columns.length - 1] ? false : columns.length - 1) : opts.wrap;
  const total = opts.width ?? outputWidth();
  let cells: string[][][] = text.map((r) => r.map((c) => [c]));
  if (w !== false && Number.isFinite(total)) {
    const others = indent.length + widths.reduce((a, x, i) => (i === w ? a : a + x + 2), 0);
    const avail = Math.max(24, columns[w]!.length, total - others);
    if (widths[w]! > avail) {
      cells = text.map((r) => r.map((c, i) => (i === w && c.length > avail ? wrapWords(c, avail, { breakLongWords: true }) : [c])));
      widths[w] = Math.max(columns[w]!.length, ...cells.map((r) => Math.max(...r[w]!.map((l) => l.length))));
    }
  }
  const line = (cs: string[], header = false) =>
    indent +
    cs
      .map((c, i) => (numeric[i] && !header ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(columns, true), indent + widths.map((x) => '-'.repeat(x)).join('  ')];
  for (const r of cells) {
    const height = Math.max(...r.map((c) => c.length));
    for (let k = 0; k < height; k++) out.push(line(r.map((c) => c[k] ?? '')));
  }
  return out.join('\n');
}

/** A yes/no answer as people read it (anything else as a cell). */
export const yesNo = (v: unknown): string => (v === true ? 'yes' : v === false ? 'no' : cellText(v));

/** A value as one cell or field of human output: its control characters escaped (a line break too). */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return printable(v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return printable(JSON.stringify(v));
}

/** Aligned "key: value" lines. */
export function keyValues(pairs: [string, unknown][], indent = ''): string {
  const shown = pairs.filter(([, v]) => v !== undefined);
  const w = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${indent}${`${k}:`.padEnd(w + 1)} ${v === null || v === '' ? '-' : cellText(v)}`).join('\n');
}

/**
 * A 64-bit offset (a u64 or s64 decimal string), signed and in hex besides:
 * "-30000000000 (0xfffffff903d48400)". KVM adds offsets modulo 2^64, so a u64 at or above 2^63
 * is the negative offset it is.
 */
export function fmtOffset(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  if (!/^-?\d+$/.test(s)) return s;
  const b = BigInt(s);
  const u = BigInt.asUintN(64, b);
  const signed = BigInt.asIntN(64, b);
  return u === 0n ? '0' : `${signed} (0x${u.toString(16).padStart(16, '0')})`;
}

const MSR_NAMES = new Map<number, string>(Object.entries(MSRS).map(([name, index]) => [index, name]));

/** An MSR by its UAPI name when known ("MSR_KVM_SYSTEM_TIME_NEW"), else in hex ("0x4b564d05"). */
export function msrLabel(v: unknown): string {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^(\d+|0x[0-9a-fA-F]+)$/.test(v) ? Number(v) : NaN;
  if (Number.isNaN(n)) return cellText(v);
  return MSR_NAMES.get(n) ?? `0x${n.toString(16)}`;
}

/** A copy of an ioctl argument or output with MSR indices named (KVM_[GS]ET_MSRS entries and indices). */
export function withMsrNames(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withMsrNames);
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'index') out[k] = msrLabel(x);
    else if (k === 'indices' && Array.isArray(x)) out[k] = x.map(msrLabel);
    else out[k] = withMsrNames(x);
  }
  return out;
}

/** A CLOCK_REALTIME value in ns since the epoch, with its UTC date. */
export function fmtRealtime(ns: unknown): string {
  if (ns === null || ns === undefined) return '';
  const s = String(ns);
  if (!/^-?\d+$/.test(s)) return s;
  const ms = Number(BigInt(s) / 1_000_000n);
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? s : `${s} (${d.toISOString()})`;
}

const isScalar = (v: unknown) => v === null || ['string', 'number', 'boolean', 'bigint'].includes(typeof v);

/** Keys whose values are durations or instants in ns get the hint. */
function hintFor(key: string, v: unknown): string {
  if (typeof v !== 'string' && typeof v !== 'number') return cellText(v);
  if (/realtime/i.test(key) && !/offset|step|delta/i.test(key)) return fmtRealtime(v);
  if (/(Ns|_ns|^ns|^now|^time|Time|^at)$/.test(key)) return nsExactAndReadable(v);
  return cellText(v);
}

/**
 * Any JSON response, readable: scalar fields as key: value, nested objects indented, arrays of
 * flat objects as tables, arrays of scalars joined. `{ columns, rows }` objects are tables.
 */
export function formatGeneric(value: unknown, indent = '', depth = 0): string {
  if (!isPlainObject(value)) return indent + cellText(value);
  const out: string[] = [];
  const scalars: [string, unknown][] = [];
  const flush = () => {
    if (scalars.length)
      out.push(
        keyValues(
          scalars.splice(0).map(([k, v]) => [k, hintFor(k, v)]),
          indent,
        ),
      );
  };
  for (const [k, v] of Object.entries(value)) {
    if (k === 'ok' && depth === 0) continue;
    if (isScalar(v)) {
      scalars.push([k, v]);
      continue;
    }
    if (isPlainObject(v) && Object.keys(v).length === 0) {
      scalars.push([k, '(none)']);
      continue;
    }
    if (Array.isArray(v) && v.every(isScalar)) {
      scalars.push([k, v.length ? v.map(cellText).join(', ') : '(none)']);
      continue;
    }
    flush();
    if (isPlainObject(v) && Array.isArray(v.columns) && Array.isArray(v.rows)) {
      out.push(`${indent}${k}:`, table(v.columns.map(String), v.rows as Cell[][], { indent: `${indent}  ` }));
    } else if (Array.isArray(v)) {
      out.push(`${indent}${k}:`, arrayTable(v, `${indent}  `, depth + 1));
    } else if (depth >= 4) {
      scalars.push([k, JSON.stringify(v)]);
    } else {
      out.push(`${indent}${k}:`, formatGeneric(v, `${indent}  `, depth + 1));
    }
  }
  flush();
  return out.filter((l) => l !== '').join('\n');
}

function arrayTable(items: unknown[], indent: string, depth: number): string {
  if (items.length === 0) return `${indent}(none)`;
  if (!items.every(isPlainObject)) return items.map((i) => formatGeneric(i, indent, depth)).join('\n');
  const all: string[] = [];
  for (const it of items) for (const k of Object.keys(it)) if (!all.includes(k)) all.push(k);
  // Nested values make unreadable cells: leave them to --json when there is anything else to show.
  const flat = all.filter((c) => items.every((it) => isScalar(it[c]) || it[c] === undefined || (Array.isArray(it[c]) && (it[c] as unknown[]).every(isScalar))));
  const cols = flat.length ? flat : all;
  const cell = (c: string, v: unknown) => (Array.isArray(v) ? v.map(cellText).join(',') : isScalar(v) ? hintShort(c, v) : JSON.stringify(v));
  const t = table(
    cols,
    items.map((it) => cols.map((c) => cell(c, it[c]))),
    { indent },
  );
  const nested = all.filter((c) => !cols.includes(c));
  if (nested.length === 0) return t;
  // the nested values of each row, below the table, under the row's first cell
  const blocks = items.map((it) => {
    const rest = Object.fromEntries(nested.filter((c) => it[c] !== undefined && it[c] !== null).map((c) => [c, it[c]]));
    if (Object.keys(rest).length === 0) return '';
    return `${indent}${cols[0]} ${cell(cols[0]!, it[cols[0]!])}:\n${formatGeneric(rest, `${indent}  `, depth + 1)}`;
  });
  return [t, ...blocks.filter(Boolean)].join('\n');
}

/** In table cells keep the exact value; the hint only for durations. */
function hintShort(key: string, v: unknown): string {
  if ((typeof v === 'string' || typeof v === 'number') && /(Ns|_ns)$/.test(key)) return nsExactAndReadable(v);
  return cellText(v);
}

// ---- events ----------------------------------------------------------------------------------

export interface EventJson {
  position: number;
  streamId: string;
  version: number;
  type: string;
  time: string;
  data: unknown;
  metadata?: unknown;
}

// the whole value: a long one wraps in the table, it is never cut
const short = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** One line about what an event did: the ioctl and its ret/errno, the guest op, the phase... */
export function eventSummary(e: EventJson): string {
  const d = (isPlainObject(e.data) ? e.data : {}) as Record<string, unknown>;
  const vcpu = d.vcpu === null || d.vcpu === undefined ? '' : `vcpu${d.vcpu} `;
  switch (e.type) {
    case 'IoctlIssued': {
      const arg = d.arg === null || d.arg === undefined ? '' : ` ${short(/MSRS/.test(String(d.ioctl)) ? withMsrNames(d.arg) : d.arg)}`;
      return `${vcpu}${d.ioctl}${arg} → ret=${d.ret}${d.errno ? ` errno=${d.errno}` : ''}`;
    }
    case 'GuestExecuted': {
      const r = isPlainObject(d.result) && 'value' in d.result ? ` → ${cellText(d.result.value)}` : '';
      const msr = d.msr !== undefined ? ` ${msrLabel(d.msr)}` : '';
      const val = d.value !== undefined ? `=${cellText(d.value)}` : '';
      return `${vcpu}${d.op}${msr}${val}${r}`;
    }
    case 'VcpuExited':
      return `${vcpu}left KVM_RUN`;
    case 'TimerFired':
      return String(d.timer ?? '');
    case 'VmDestroyed':
      return String(d.reason ?? '');
    case 'VmCreated':
      return `on ${d.hostId} (${d.arch}, ${d.profile})`;
    case 'TimeAdvanced':
      return d.from !== undefined && d.to !== undefined ? `+${nsReadable(BigInt(String(d.to)) - BigInt(String(d.from)))} → ${d.to}` : short(d);
    case 'HostCreated':
      return short(isPlainObject(d.spec) ? d.spec : d);
    case 'MigrationPhaseEntered':
      return `phase ${d.phase}`;
    case 'MatrixChecked':
      return matrixSummary(d);
    default: {
      const { hw: _hw, trace: _trace, ...rest } = d;
      return Object.keys(rest).length ? short(rest) : '';
    }
  }
}

/** A MatrixChecked event (machines/matrix/state.ts): its cells and verdicts, and for a before/after the other side and the cells that changed. */
function matrixSummary(d: Record<string, unknown>): string {
  const verdicts = (v: unknown) => {
    const s = (isPlainObject(v) ? v : {}) as Record<string, unknown>;
    const na = Number(s.notApplicable ?? 0) ? `, ${s.notApplicable} n/a` : '';
    return `${s.pass ?? '?'} pass, ${s.warn ?? '?'} warn, ${s.fail ?? '?'} fail${na}`;
  };
  const after = isPlainObject(d.after) ? d.after : null;
  const changed = after && Array.isArray(after.changed) ? `; ${after.changed.length} changed` : '';
  return `${d.cells} cells: ${verdicts(d.summary)}${after ? `; after: ${verdicts(after.summary)}${changed}` : ''}`;
}

export function eventsTable(events: EventJson[]): string {
  if (events.length === 0) return '(no events)';
  return table(
    ['POS', 'TIME (ns)', 'STREAM', 'VER', 'TYPE', 'SUMMARY'],
    events.map((e) => [e.position, e.time, e.streamId, e.version, e.type, eventSummary(e)]),
  );
}
