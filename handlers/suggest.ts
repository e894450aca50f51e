// "Did you mean …?": the nearest known names to a misspelled one (strategies, kernel profiles,
// behaviour switches), for error messages.
import { PROFILE_NAMES, PROFILES, resolveProfile, type KernelProfile } from '../kvm/profiles.js';

/** Levenshtein distance (insertions, deletions, substitutions), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length]!;
}

/** The candidates nearest to `input` (all those tied), if near enough to be a likely typo. */
export function nearest(input: string, candidates: readonly string[]): string[] {
  const scored = candidates.map((c) => ({ c, d: c.toLowerCase().startsWith(input.toLowerCase()) && input.length >= 3 ? 0.5 : editDistance(input, c) }));
  const best = Math.min(...scored.map((s) => s.d));
  const limit = Math.max(2, Math.floor(input.length / 3));
  return best <= limit ? scored.filter((s) => s.d === best).map((s) => s.c) : [];
}

/** ": did you mean 'a' or 'b'?", or '' when nothing is near. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const n = nearest(input, candidates);
  return n.length ? `: did you mean ${n.map((c) => `'${c}'`).join(' or ')}?` : '';
}

const SWITCH_NAMES: readonly string[] = (() => {
  const p = PROFILES[0]!;
  return [...Object.keys(p.x86).map((k) => `x86.${k}`), ...Object.keys(p.arm64).map((k) => `arm64.${k}`)];
})();

/** resolveProfile, with the nearest profile or switch name in the error when one is misspelled. */
export function resolveProfileExplained(spec: string): KernelProfile {
  try {
    return resolveProfile(spec);
  } catch (e) {
    const message = (e as Error).message;
    const [name, rest] = spec.split('+', 2) as [string, string | undefined];
    if (!PROFILE_NAMES.includes(name))
      throw new RangeError(`unknown kernel profile '${name}'${didYouMean(name, PROFILE_NAMES)} (known: ${PROFILE_NAMES.join(', ')})`);
    const unknown = (rest ?? '')
      .split(',')
      .map((p) => p.split('=')[0] ?? '')
      .find((k) => k && !SWITCH_NAMES.includes(k));
    throw new RangeError(unknown ? `${message}${didYouMean(unknown, SWITCH_NAMES)}` : message);
  }
}
