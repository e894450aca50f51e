// Schemas for ioctl and guest-operation arguments. Numbers wider than 53 bits travel as decimal
// strings; names (MSRs, caps, attributes, registers) may stand for their numbers.
import { z } from 'zod';
import { preview } from './echo.js';
import { InvalidArgumentError } from './errors.js';
import { IOCTLS_WITHOUT_ARG, type IoctlName } from './uapi.js';
import { U64_MASK } from './u64.js';

export { preview } from './echo.js';

const INT_LIKE = /^-?(0|[1-9][0-9]*)$|^0x[0-9a-fA-F]+$/;

/** More significant digits than a 64-bit value has (decimal: 20, hex: 16): refused before BigInt() converts them. */
function tooWide(s: string): boolean {
  const hex = s.startsWith('0x');
  const digits = s.slice(hex ? 2 : s.startsWith('-') ? 1 : 0).replace(/^0+/, '');
  return digits.length > (hex ? 16 : 20);
}

/** A u64 given as a decimal string, a safe integer or a bigint. Negative values down to −2^63 wrap as a (u64) cast would. */
export const u64Schema = z.union([z.string(), z.number(), z.bigint()]).transform((v, ctx) => {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) {
      ctx.addIssue({ code: 'custom', message: `${v} is not an exact integer; pass values above 2^53 as decimal strings` });
      return z.NEVER;
    }
    b = BigInt(v);
  } else {
    const s = v.trim();
    if (!INT_LIKE.test(s)) {
      ctx.addIssue({ code: 'custom', message: `${preview(v)} is not an integer` });
      return z.NEVER;
    }
    if (tooWide(s)) {
      ctx.addIssue({ code: 'custom', message: `${preview(s)} does not fit in 64 bits` });
      return z.NEVER;
    }
    b = s.startsWith('-') ? -BigInt(s.slice(1)) : BigInt(s);
  }
  if (b > U64_MASK || b < -(1n << 63n)) {
    ctx.addIssue({ code: 'custom', message: `${b} does not fit in 64 bits` });
    return z.NEVER;
  }
  return b & U64_MASK;
});

/** An unsigned integer that fits in `bits` bits, as a JSON number. */
export function uintSchema(bits: 8 | 16 | 32) {
  return z
    .number()
    .int()
    .min(0)
    .max(2 ** bits - 1);
}

/** A number, or a UAPI name from a table, resolved to the number. */
export function namedNumber(table: Record<string, number>, what: string) {
  return z.union([z.number().int().min(0).max(0xffff_ffff), z.string()]).transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const s = v.trim();
    if (Object.hasOwn(table, s)) return table[s] as number;
    if (/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(s) && Number(s) <= 0xffff_ffff) return Number(s);
    ctx.addIssue({ code: 'custom', message: `unknown ${what} ${preview(v)} (known: ${Object.keys(table).join(', ')})` });
    return z.NEVER;
  });
}

/** Parse with a schema; a failure becomes an InvalidArgumentError naming the first bad field. */
export function parseArg<T extends z.ZodTypeAny>(schema: T, value: unknown, field: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue?.path.length ? `${field}.${issue.path.join('.')}` : field;
  throw new InvalidArgumentError(path, issue?.message ?? 'invalid');
}

/** A parser of one argument: parseArg() with its schema, behind a plain check for what is plainly valid. */
export type ArgParser<T> = (value: unknown, field: string) => T;

/**
 * parseArg() with a zod-free parser tried first: `plain` returns the parsed value for an input the
 * schema plainly accepts (the same value the schema would give) and undefined for anything else,
 * which the schema then parses, so every refusal (its field and its message) stays the schema's.
 * Replay parses the recorded argument of every ioctl again: this keeps zod off that path for the
 * arguments a replay meets most (device attributes, clock data, GET_MSRS indices, kHz, caps, vCPU
 * ids); KVM_SET_MSRS entries, guest MSR operands and arm64 ONE_REG values still go to their schemas.
 */
export function argParser<T extends z.ZodTypeAny>(schema: T, plain: (v: unknown) => z.output<T> | undefined): ArgParser<z.output<T>> {
  return (value, field) => {
    const r = plain(value);
    return r !== undefined ? r : parseArg(schema, value, field);
  };
}

const PLAIN_U64 = /^(0|[1-9][0-9]{0,19})$/;

/** u64Schema's value for a plainly valid input (a decimal string without sign or padding, a safe integer ≥ 0, a bigint in range), else undefined. */
export function plainU64(v: unknown): bigint | undefined {
  if (typeof v === 'string') {
    if (!PLAIN_U64.test(v)) return undefined;
    const b = BigInt(v);
    return b <= U64_MASK ? b : undefined;
  }
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined;
  if (typeof v === 'bigint') return v >= 0n && v <= U64_MASK ? v : undefined;
  return undefined;
}

/** uintSchema(bits)'s value for a plainly valid input, else undefined. */
export function plainUint(v: unknown, max: number): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max ? v : undefined;
}

/** namedNumber(table)'s value for a plainly valid input (a number in range, or a name of the table as given), else undefined. */
export function plainNamed(table: Record<string, number>, v: unknown): number | undefined {
  if (typeof v === 'number') return plainUint(v, 0xffff_ffff);
  return typeof v === 'string' && Object.hasOwn(table, v) ? table[v] : undefined;
}

/** Refuse an argument given to an ioctl that takes none (nothing is issued, nothing recorded). */
export function checkIoctlTakesArg(ioctl: IoctlName, arg: unknown): void {
  if (arg !== undefined && arg !== null && IOCTLS_WITHOUT_ARG.has(ioctl)) {
    throw new InvalidArgumentError('arg', `${ioctl} takes no argument (got ${preview(arg)})`);
  }
}
