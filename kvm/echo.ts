// How error messages quote what they were given: never more than a short prefix of it.

/** The most of a value an error message quotes. */
export const MAX_ECHO_CHARS = 64;

/** A value as an error message quotes it: at most MAX_ECHO_CHARS characters, saying how long it was when cut. */
export function preview(v: unknown): string {
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' ? String(v) : v === null ? 'null' : typeof v;
  return s.length <= MAX_ECHO_CHARS ? `'${s}'` : `'${s.slice(0, MAX_ECHO_CHARS)}…' (${s.length} characters)`;
}
