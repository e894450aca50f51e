// Durations, frequencies and drifts written for people. Each name says what it takes and how it
// writes it, so one name never means two formats: the command line shows an exact value with a
// readable hint (nsExactAndReadable), the audit's messages a rounded one (nsThreeDecimals).
// u64/s64 values arrive as bigints or as the decimal strings JSON carries.

const NS_UNITS: [bigint, string][] = [
  [86_400_000_000_000n, 'd'],
  [3_600_000_000_000n, 'h'],
  [60_000_000_000n, 'min'],
  [1_000_000_000n, 's'],
  [1_000_000n, 'ms'],
  [1_000n, 'µs'],
];

/**
 * A duration in ns in the largest unit it fills, exact to three decimals (truncated, trailing
 * zeros dropped): "320 ms", "1.5 s", "-300.26 ms", "999 ns". A value that is no integer is
 * written as it is.
 */
export function nsReadable(ns: string | number | bigint): string {
  let v: bigint;
  try {
    v = BigInt(ns);
  } catch {
    return String(ns);
  }
  const neg = v < 0n;
  const a = neg ? -v : v;
  for (const [unit, name] of NS_UNITS) {
    if (a >= unit) {
      const whole = a / unit;
      const frac = ((a % unit) * 1000n) / unit;
      const f = frac === 0n ? '' : `.${frac.toString().padStart(3, '0').replace(/0+$/, '')}`;
      return `${neg ? '-' : ''}${whole}${f} ${name}`;
    }
  }
  return `${neg ? '-' : ''}${a} ns`;
}

/**
 * The exact value in ns and, past three digits, its readable form: "320000000 (320 ms)",
 * "999 ns". null and undefined are ''; a value that is no integer is written as it is.
 */
export function nsExactAndReadable(ns: unknown): string {
  if (ns === null || ns === undefined) return '';
  const s = String(ns);
  if (!/^-?\d+$/.test(s)) return s;
  const a = s.startsWith('-') ? s.slice(1) : s;
  return a.length <= 3 ? `${s} ns` : `${s} (${nsReadable(s)})`;
}

/**
 * A signed duration in the largest unit that keeps it at least 1 (s, ms, µs, ns), three decimals,
 * a minus sign (U+2212) before a negative one: "1.500 s", "−2.000 ms", "999 ns".
 */
export function nsThreeDecimals(ns: bigint): string {
  const a = Number(ns < 0n ? -ns : ns);
  const sign = ns < 0n ? '−' : '';
  if (a >= 1e9) return `${sign}${(a / 1e9).toFixed(3)} s`;
  if (a >= 1e6) return `${sign}${(a / 1e6).toFixed(3)} ms`;
  if (a >= 1e3) return `${sign}${(a / 1e3).toFixed(3)} µs`;
  return `${sign}${a} ns`;
}

/** A frequency in Hz, readable: "3 GHz", "2.6 GHz", "24 MHz" (six significant digits at most). */
export function hzReadable(hz: unknown): string {
  if (hz === null || hz === undefined || hz === '') return '';
  const n = Number(hz);
  if (!Number.isFinite(n)) return String(hz);
  for (const [unit, div] of [
    ['THz', 1e12],
    ['GHz', 1e9],
    ['MHz', 1e6],
    ['kHz', 1e3],
  ] as const)
    if (n >= div) return `${+(n / div).toPrecision(6)} ${unit}`;
  return `${n} Hz`;
}

/**
 * A drift given in ms per day, in the unit that reads best, at most three decimals (trailing
 * zeros dropped): "28.771 ms/day", "-1.5 s/day", "10.231 h/day", "500 µs/day"; null and undefined are '-'.
 */
export function msPerDayReadable(msPerDay: unknown): string {
  if (msPerDay === null || msPerDay === undefined) return '-';
  const ms = Number(msPerDay);
  if (!Number.isFinite(ms)) return String(msPerDay);
  const a = Math.abs(ms);
  const [v, unit] =
    a >= 3_600_000
      ? [ms / 3_600_000, 'h']
      : a >= 60_000
        ? [ms / 60_000, 'min']
        : a >= 1_000
          ? [ms / 1_000, 's']
          : a >= 1 || a === 0
            ? [ms, 'ms']
            : [ms * 1000, 'µs'];
  return `${+v.toFixed(3)} ${unit}/day`;
}

/** A drift in ppb as milliseconds per day, three decimals: 333n → "28.771". */
export function ppbAsMsPerDay(ppb: bigint): string {
  return (((Number(ppb) * 86_400) / 1e9) * 1000).toFixed(3);
}

/** A drift in ppb per day in the unit that reads best (ms, s, min, h), three decimals: "28.771 ms/day", "10.231 h/day". */
export function ppbPerDayThreeDecimals(ppb: bigint): string {
  const ms = (Number(ppb) * 86_400) / 1e6;
  const a = Math.abs(ms);
  const [v, unit] = a >= 3_600_000 ? [ms / 3_600_000, 'h'] : a >= 60_000 ? [ms / 60_000, 'min'] : a >= 1_000 ? [ms / 1_000, 's'] : [ms, 'ms'];
  return `${v.toFixed(3)} ${unit}/day`;
}

/** A drift in ppb as ppm, three decimals: 1500n → "1.500". */
export function ppbAsPpm(ppb: bigint): string {
  return (Number(ppb) / 1000).toFixed(3);
}
