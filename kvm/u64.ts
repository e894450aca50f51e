// Fixed-width integer helpers: the kernel's u64/s64/u32 wrap-around semantics on bigint.

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
