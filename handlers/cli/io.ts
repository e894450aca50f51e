// Input for the CLI: the request JSON (from --data or stdin), durations with unit suffixes, and
// the small value syntaxes of the friendly subcommands. Nothing here imports a handler.

import { CodedError } from '../../lib/coded-error.js';

/** A mistake in how the command was called (exit code 2), reported like a handler error. */
export class UsageError extends CodedError<'invalid_request' | 'unknown_handler'> {}

/** Parse request JSON; an empty text is the empty request. */
export function parseRequestJson(text: string, source: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError('invalid_request', `malformed JSON: ${(e as Error).message} (in ${source})`, { source });
  }
}

/** JSON for --arg style options; a bare identifier (a UAPI name) is taken as a string. */
export function parseJsonArg(text: string, option: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) return text;
    if (/^0x[0-9a-fA-F]+$/.test(text)) return BigInt(text).toString();
    throw new UsageError('invalid_request', `malformed JSON: ${(e as Error).message} (in ${option})`, { field: option });
  }
}

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  min: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};

/**
 * A duration in ns as a decimal string: "300ms", "1.5s", "20us", "2m", "1h", "0". A bare number
 * other than 0 is refused (`--blackout 300` would be 300 ns): the unit is required, unless
 * bareNs (a value that is naturally in ns, such as an epoch instant). JSON requests stay in ns.
 * signed: allow a leading '-' (realtime steps, offsets).
 */
export function parseDuration(text: string, option: string, signed = false, bareNs = false): string {
  const m = /^(-)?(\d+)(?:\.(\d+))?\s*(ns|us|µs|ms|s|m|min|h|d)?$/.exec(text.trim());
  const what = `a ${signed ? 'signed ' : ''}duration with a unit (ns, us, ms, s, m, h or d: 300ms, 1.5s, 20us)`;
  if (!m || (m[1] && !signed)) throw new UsageError('invalid_request', `${option}: '${text}' is not ${what}`, { field: option });
  const zero = /^0+$/.test(m[2]!) && !m[3];
  if (!m[4] && !bareNs && !zero) {
    const n = text.trim();
    throw new UsageError('invalid_request', `${option}: '${text}' has no unit: write ${n}ms, ${n}s, or ${n}ns if you mean nanoseconds`, { field: option });
  }
  const unit = UNITS[m[4] ?? 'ns']!;
  const frac = m[3] ?? '';
  const scale = 10n ** BigInt(frac.length);
  const total = BigInt(m[2]!) * unit + (frac ? (BigInt(frac) * unit) / scale : 0n);
  if (frac && (BigInt(frac) * unit) % scale !== 0n) {
    throw new UsageError('invalid_request', `${option}: '${text}' is not a whole number of nanoseconds`, { field: option });
  }
  return (m[1] ? -total : total).toString();
}

/** A non-negative integer option (vCPU index, kHz, counts). */
export function parseIntArg(text: string, option: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError('invalid_request', `${option}: '${text}' is not a non-negative integer`, { field: option });
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError('invalid_request', `${option}: '${text}' is too large`, { field: option });
  return n;
}

/** A u64 option: decimal or 0x hex, kept as a decimal string. */
export function parseU64Arg(text: string, option: string): string {
  const t = text.trim();
  if (/^\d+$/.test(t)) return BigInt(t).toString();
  if (/^0x[0-9a-fA-F]+$/.test(t)) return BigInt(t).toString();
  throw new UsageError('invalid_request', `${option}: '${text}' is not an unsigned integer (decimal or 0x hex)`, { field: option });
}

/** An MSR, cap or attribute: a number (decimal or hex) or a UAPI name. */
export function parseNameOrNumber(text: string): string | number {
  const t = text.trim();
  if (/^\d+$/.test(t) || /^0x[0-9a-fA-F]+$/.test(t)) {
    const n = Number(BigInt(t));
    return Number.isSafeInteger(n) ? n : BigInt(t).toString();
  }
  return t;
}

/** A guest value (wrmsr): decimal or hex become a decimal string, JSON is parsed, anything else a string. */
export function parseGuestValue(text: string): unknown {
  const t = text.trim();
  if (/^\d+$/.test(t) || /^0x[0-9a-fA-F]+$/.test(t)) return BigInt(t).toString();
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
}

/** --option key=value (repeatable): true/false become booleans, numbers numbers. */
export function collectOption(text: string, prev: Record<string, string | number | boolean> = {}): Record<string, string | number | boolean> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError('invalid_request', `--option: '${text}' is not key=value`, { field: 'option' });
  const key = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  const value =
    raw === 'true' ? true : raw === 'false' ? false : /^-?\d+(\.\d+)?$/.test(raw) && Number.isSafeInteger(Math.trunc(Number(raw))) ? Number(raw) : raw;
  return { ...prev, [key]: value };
}

/** JSON.stringify that also survives a stray bigint. */
export function toJsonText(value: unknown, pretty = false): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), pretty ? 2 : undefined);
}

/** A command that answers for its handler without calling it (exit code 1, like a handler refusal). */
export class CliRefusal extends CodedError<'not_found'> {}
