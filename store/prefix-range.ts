/**
 * The stream ids starting with a prefix are exactly [prefix, prefix with its last code point + 1)
 * when text compares as UTF-8 bytes (SQLite's TEXT, PostgreSQL's COLLATE "C"), which order as code
 * points do. (The same function the SQLite store keeps privately.)
 */
export function prefixRange(prefix: string): [string, string | null] {
  const cps = [...prefix];
  const last = cps.pop()!.codePointAt(0)!;
  if (last >= 0x10ffff) return [prefix, null];
  let next = last + 1;
  if (next >= 0xd800 && next <= 0xdfff) next = 0xe000; // skip the surrogate range
  return [prefix, cps.join('') + String.fromCodePoint(next)];
}
