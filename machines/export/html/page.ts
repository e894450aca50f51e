// The pieces every HTML report shares: escaping, number formats (signed, hex, ms, MSR names), and
// the page itself — one self-contained file with its style inline, no script, and a
// Content-Security-Policy that lets it load nothing at all.
import { MSRS } from '../../../kvm/uapi.js';
import { printable } from '../../../lib/printable.js';

/** Any text put into the page: element content or a quoted attribute value (control characters shown as escapes). */
export function esc(v: unknown): string {
  return printable(String(v), true).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A u64/s64 as the report may carry it (bigint, decimal string, number); null when absent. */
export function big(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) return BigInt(v);
  return null;
}

/** Thousands grouped with a thin space: 30000840000 → 30 000 840 000. */
export function grouped(v: unknown): string {
  const b = big(v);
  if (b === null) return v === null || v === undefined ? '—' : String(v);
  const s = (b < 0n ? -b : b).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009');
  return b < 0n ? `\u2212${s}` : s;
}

/** The units a duration is written in, largest first (ns below a microsecond). */
const DURATION_UNITS: [bigint, string][] = [
  [3_600_000_000_000n, 'h'],
  [60_000_000_000n, 'min'],
  [1_000_000_000n, 's'],
  [1_000_000n, 'ms'],
  [1_000n, 'µs'],
];

/** |ns| in the largest unit it holds at least one of, three decimals (cut, not rounded): 300.160 ms, 75.000 h, 999 ns. */
function magnitude(a: bigint): string {
  for (const [unit, name] of DURATION_UNITS) {
    if (a >= unit) return `${a / unit}.${(((a % unit) * 1000n) / unit).toString().padStart(3, '0')} ${name}`;
  }
  return `${a} ns`;
}

/** A signed duration in ns (an error, a step), in the unit its size calls for: −320.460 ms, +20.000 ms, −1 ns, +75.000 h. */
export function signedDuration(v: unknown): string {
  const b = big(v);
  if (b === null) return '—';
  const text = magnitude(b < 0n ? -b : b);
  return b < 0n ? `\u2212${text}` : b > 0n ? `+${text}` : text;
}

/** A duration or an instant in ns, in the unit its size calls for, no plus sign: 300.000 ms, 12.345 s. */
export function duration(v: unknown): string {
  const b = big(v);
  if (b === null) return '—';
  return `${b < 0n ? '\u2212' : ''}${magnitude(b < 0n ? -b : b)}`;
}

/** A 64-bit offset, signed and in hex (two's complement) besides: −5 (0xfffffffffffffffb). */
export function offset(v: unknown): string {
  const b = big(v);
  if (b === null) return '—';
  const signed = BigInt.asIntN(64, b);
  const hex = BigInt.asUintN(64, b).toString(16).padStart(16, '0');
  return `${signed < 0n ? `\u2212${(-signed).toString()}` : signed.toString()} (0x${hex})`;
}

const MSR_NAMES = new Map<number, string>(Object.entries(MSRS).map(([name, index]) => [index, name]));

/** An MSR by its UAPI name when known, else in hex. */
export function msrName(v: unknown): string {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : null;
  if (n === null) return String(v);
  return MSR_NAMES.get(n) ?? `0x${n.toString(16)}`;
}

/**
 * An ioctl argument or output as text: MSR indices by name, 64-bit values that may be offsets
 * (device-attribute values, MSR data, clocks) signed and in hex as well as decimal.
 */
export function argText(v: unknown, key = ''): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return `[${v.map((x) => argText(x, key === 'indices' ? 'index' : '')).join(', ')}]`;
  if (typeof v === 'object')
    return `{ ${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}: ${argText(x, k)}`)
      .join(', ')} }`;
  if (key === 'index') return msrName(v);
  const b = big(v);
  if (b !== null && b !== 0n && (/^(value|data|offset|tsc_offset|clock|host_tsc)$/.test(key) || b >= 1n << 32n || b < 0n)) {
    // a u64 that reads as a negative s64 (an offset) shows both; a negative value is that offset; any other just its hex
    if (b < 0n) return offset(b);
    const signed = BigInt.asIntN(64, b);
    return signed === b ? `${b} (0x${b.toString(16)})` : `${b} = ${offset(b)}`;
  }
  return String(v);
}

const STYLE =
  `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#fff;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dce4;padding-bottom:4px}
.sub{color:#566074;margin-bottom:12px}
.verdict{display:inline-block;font-weight:700;padding:2px 10px;border-radius:4px;color:#fff;text-transform:uppercase;letter-spacing:.04em}
.v-pass{background:#1f8a4c}.v-warn{background:#c27c0e}.v-fail{background:#c0392b}.v-in_flight{background:#566074}
.sev{display:inline-block;min-width:36px;text-align:center;font-size:12px;font-weight:700;padding:0 6px;border-radius:3px;color:#fff}
.s-info{background:#4a6fa5}.s-warn{background:#c27c0e}.s-fail{background:#c0392b}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d8dce4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12.5px}
.finding{border-left:4px solid #d8dce4;padding:4px 10px;margin:8px 0}` +
  `.finding.f-fail{border-color:#c0392b}.finding.f-warn{border-color:#c27c0e}.finding.f-info{border-color:#4a6fa5}
.finding .code{font-weight:700;margin:0 6px}.finding .msg{margin-top:2px;white-space:pre-wrap;overflow-wrap:anywhere}
.pins a,.pins span{margin-right:6px}tr.pinned td{background:#fff6e0}.pin{font-size:11px;color:#8a5a00;font-weight:700}
.lanes td{font-size:12px}.lanes td.lane{min-width:120px;overflow-wrap:anywhere}` +
  `.lanes td.lane .mono{font-size:11px;color:#444b5a}.err{color:#c0392b;font-weight:700}
.legend span{display:inline-block;margin-right:14px}` +
  `.legend i{display:inline-block;width:22px;height:0;border-top:3px solid;vertical-align:middle;margin-right:5px}
.legend i.dash{border-top-style:dashed}
.side{display:grid;grid-template-columns:1fr 1fr;gap:18px}.side>div{min-width:0}.side table{font-size:12px}.scroll{overflow-x:auto;max-width:100%}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}dl.kv dt{color:#566074}dl.kv dd{margin:0}
svg text{font:11px system-ui,sans-serif;fill:#39404f}
`;

/** A whole page: title, body, the style inline, and a policy that forbids every load. */
export function page(title: string, body: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${STYLE.trim()}</style>`,
    '</head><body>',
    body,
    '<footer class="sub" style="margin-top:32px">clockledger report: computed from the event log alone (true time is the simulated axis)</footer>',
    '</body></html>',
    '',
  ].join('\n');
}

export const verdictBadge = (v: unknown) => `<span class="verdict v-${esc(v)}">${esc(v)}</span>`;
export const sevBadge = (s: unknown) => `<span class="sev s-${esc(s)}">${esc(s)}</span>`;

/** A table from a header and rows of already-escaped cells. */
export function table(head: string[], rows: string[][], cls = ''): string {
  return (
    `<table${cls ? ` class="${cls}"` : ''}>` +
    `<thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.join('')}</tr>`).join('')}</tbody></table>`
  );
}
export const td = (v: unknown) => `<td>${esc(v)}</td>`;
export const tdNum = (v: unknown) => `<td class="num">${esc(v)}</td>`;
