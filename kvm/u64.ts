// Fixed-width integer helpers: the kernel's u64/s64/u32 wrap-around semantics on bigint, and the
// checked conversion of the narrow integer arguments (u32, s8, ...) that may come as numbers.
import { preview } from './echo.js';
import { InvalidArgumentError } from './errors.js';

export const U64_MASK = (1n << 64n) - 1n;
export const U32_MASK = (1n << 32n) - 1n;
export const U64_MAX = U64_MASK;

/** Truncate to u64, as a C assignment to a u64 does. */
export function u64(x: bigint): bigint {
  return x & U64_MASK;
}

/** Reinterpret the low 64 bits as s64 (two's complement). */
export function s64(x: bigint): bigint {
  return BigInt.asIntN(64, x);
}

/** Truncate to u32. */
export function u32(x: bigint): bigint {
  return x & U32_MASK;
}

/** Number of trailing zero bits of a non-zero value. */
export function ctz(x: bigint): number {
  let n = 0;
  while ((x & 1n) === 0n && x !== 0n) {
    x >>= 1n;
    n++;
  }
  return n;
}

const C_INT_RANGE = {
  u8: [0n, 0xffn],
  s8: [-0x80n, 0x7fn],
  u32: [0n, U32_MASK],
  s32: [-(1n << 31n), (1n << 31n) - 1n],
} as const;
/** The narrow C integer types the kernel's arithmetic takes besides u64. */
export type CIntType = keyof typeof C_INT_RANGE;

/**
 * A kernel argument of a narrow C integer type, given as a number or a bigint, as a bigint.
 * Not an integer, or out of the type's range: an InvalidArgumentError naming the argument (a C
 * call would have truncated it silently).
 */
export function cIntArg(x: number | bigint, type: CIntType, field: string): bigint {
  let b: bigint;
  if (typeof x === 'bigint') b = x;
  else if (typeof x === 'number' && Number.isInteger(x)) b = BigInt(x);
  else throw new InvalidArgumentError(field, `${typeof x === 'string' ? preview(x) : String(x)} is not an integer (${type}: a number or a bigint)`);
  const [lo, hi] = C_INT_RANGE[type];
  if (b < lo || b > hi) throw new InvalidArgumentError(field, `${b} is out of range for ${type} (${lo} to ${hi})`);
  return b;
}
