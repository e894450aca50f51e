// The magnitudes the audit compares: the worst error across vCPUs, a spread. (How it writes numbers
// into its messages is lib/units.ts: nsThreeDecimals, ppbPerDayThreeDecimals, ppbAsMsPerDay, ppbAsPpm.)

export const abs = (x: bigint): bigint => (x < 0n ? -x : x);

/** The error of largest magnitude (0 for none), its sign kept: the worst vCPU's. */
export function worstError(errors: readonly bigint[]): bigint {
  return errors.reduce((w, e) => (abs(e) > abs(w) ? e : w), 0n);
}

/** The spread (largest − smallest) of readings across vCPUs; 0 for none. */
export function spread(xs: readonly bigint[]): bigint {
  return xs.length ? xs.reduce((a, b) => (a > b ? a : b)) - xs.reduce((a, b) => (a < b ? a : b)) : 0n;
}
