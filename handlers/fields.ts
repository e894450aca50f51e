// The request fields shared by the handlers' zod schemas (defineHandler itself needs no zod at
// run time, so a handler whose module builds no schema up front starts without loading it).
import { z } from 'zod';

/** Fields every request may carry. */
export const commonFields = {
  /** retrying a request with the same id returns the first response and records nothing again */
  requestId: z.string().min(1).max(200).optional(),
  /** ties the events of several invocations together in their metadata */
  correlationId: z.string().min(1).max(200).optional(),
};

// ---- shared field schemas -------------------------------------------------------------------

export const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'ids are 1-128 letters, digits, dot, underscore, colon or dash');

/** A u64 as a decimal string or safe integer. */
export const u64Field = z
  .union([
    z.string().regex(/^[0-9]+$/, 'a non-negative decimal integer'),
    z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    z.bigint().nonnegative(),
  ])
  .transform((v, ctx) => {
    const b = BigInt(v);
    if (b >= 1n << 64n) {
      ctx.addIssue({ code: 'custom', message: 'does not fit in 64 bits' });
      return z.NEVER;
    }
    return b;
  });

/** An s64 as a decimal string or safe integer. */
export const s64Field = z
  .union([z.string().regex(/^-?[0-9]+$/, 'a decimal integer'), z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER), z.bigint()])
  .transform((v, ctx) => {
    const b = BigInt(v);
    if (b >= 1n << 63n || b < -(1n << 63n)) {
      ctx.addIssue({ code: 'custom', message: 'does not fit in a signed 64-bit integer' });
      return z.NEVER;
    }
    return b;
  });
