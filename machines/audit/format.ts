// How the audit writes numbers into its messages and its report: durations, drift per day, magnitudes.

export const abs = (x: bigint): bigint => (x < 0n ? -x : x);

/** The error of largest magnitude (0 for none), its sign kept: the worst vCPU's. */
export function worstError(errors: readonly bigint[]): bigint {
  return errors.reduce((w, e) => (abs(e) > abs(w) ? e : w), 0n);
}

/** The spread (largest − smallest) of readings across vCPUs; 0 for none. */
export function spread(xs: readonly bigint[]): bigint {
  return xs.length ? xs.reduce((a, b) => (a > b ? a : b)) - xs.reduce((a, b) => (a < b ? a : b)) : 0n;
}

/** A drift in ppb as milliseconds per day, three decimals. */
export const msPerDay = (ppb: bigint): string => (((Number(ppb) * 86_400) / 1e9) * 1000).toFixed(3);
/** The drift per day in the unit that reads best, for messages: "28.771 ms/day", "10.231 h/day". */
export const perDay = (ppb: bigint): string => {
  const ms = (Number(ppb) * 86_400) / 1e6;
  const a = Math.abs(ms);
  const [v, unit] = a >= 3_600_000 ? [ms / 3_600_000, 'h'] : a >= 60_000 ? [ms / 60_000, 'min'] : a >= 1_000 ? [ms / 1_000, 's'] : [ms, 'ms'];
  return `${v.toFixed(3)} ${unit}/day`;
};

/** A drift in ppb as ppm, three decimals. */
export const ppm = (ppb: bigint): string => (Number(ppb) / 1000).toFixed(3);

/** A signed duration in the largest unit that keeps it ≥ 1 (s, ms, µs, ns). */
export function fmtNs(ns: bigint): string {
  const a = Number(abs(ns));
  const sign = ns < 0n ? '−' : '';
  if (a >= 1e9) return `${sign}${(a / 1e9).toFixed(3)} s`;
  if (a >= 1e6) return `${sign}${(a / 1e6).toFixed(3)} ms`;
  if (a >= 1e3) return `${sign}${(a / 1e3).toFixed(3)} µs`;
  return `${sign}${a} ns`;
}
