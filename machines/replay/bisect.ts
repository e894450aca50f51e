// Bisecting kernel behaviour: over an ordered list of profiles, the first whose re-execution of
// the log diverges from a reference; over a profile's switches, which single switch does.
import type { HostState } from '../../kvm/host.js';
import { resolveProfile, switchNames, withSwitches, type KernelProfile, type SwitchName } from '../../kvm/profiles.js';
import type { EventStore } from '../../store/types.js';
import { hostStreamId } from '../host/host.js';
import { rebuildStream } from '../rebuild.js';
import { replayLog, type Divergence, type ReplayScope } from './replay.js';

export interface Probe {
  profile: string;
  diverged: boolean;
  divergenceCount: number;
  firstDivergence: Divergence | null;
}

function probe(store: EventStore, profile: KernelProfile, reference: KernelProfile | undefined, scope: ReplayScope): Probe {
  const r = replayLog(store, { ...scope, profile, reference, keep: 1 });
  return { profile: profile.name, diverged: r.divergenceCount > 0, divergenceCount: r.divergenceCount, firstDivergence: r.divergences[0] ?? null };
}

/** How the profiles were searched: all on request; the two ends decided; bisected; or one by one. */
export type ProfileSearch = 'exhaustive' | 'ends' | 'bisect' | 'linear';

/**
 * The first profile in order whose replay diverges from the reference (the recording, or the
 * profile given): always the one an exhaustive search finds, in fewer replays when that is safe.
 *
 * Bisection assumes the answer is monotone along the order (clean, ..., clean, diverged, ...,
 * diverged), which does not hold in general: a log recorded under the last profile of the order
 * diverges at the start and not at the end. So both ends are replayed first, and the order is
 * bisected only where monotonicity can be shown from the profiles themselves: against a single
 * reference profile, each profile's set of switches that differ from it contains the previous
 * profile's set (the order moves away from the reference, as newer kernels do from an old
 * recording). Then a profile that changes behaviour stays changed along the order, the first end
 * being clean and the last diverged brackets the first divergence, and both ends clean means none.
 * If the sets shrink instead (the order moves towards the reference) and the first end is clean,
 * nothing diverges. Anything else (several recorded profiles, a reference inside the order, a
 * switch turned on then off, ends contradicting the sets) is searched one by one, in order,
 * up to the first divergence.
 */
export function bisectProfiles(
  store: EventStore,
  profiles: KernelProfile[],
  reference: KernelProfile | undefined,
  scope: ReplayScope,
  exhaustive = false,
): { firstDivergent: Probe | null; probes: Probe[]; search: ProfileSearch } {
  const probes: Probe[] = [];
  const at = (i: number) => {
    const hit = probes.find((p) => p.profile === profiles[i]!.name);
    if (hit) return hit;
    const p = probe(store, profiles[i]!, reference, scope);
    probes.push(p);
    return p;
  };
  const n = profiles.length;
  if (exhaustive) {
    for (let i = 0; i < profiles.length; i++) at(i);
    return { firstDivergent: probes.find((p) => p.diverged) ?? null, probes, search: 'exhaustive' };
  }
  if (n === 0) return { firstDivergent: null, probes, search: 'ends' };
  // The first end diverging is the answer whatever the order.
  if (at(0).diverged) return { firstDivergent: at(0), probes, search: 'ends' };
  const last = at(n - 1);
  if (n <= 2) return { firstDivergent: last.diverged ? last : null, probes, search: 'ends' };
  const refs = reference ? [reference] : recordedProfiles(store);
  const direction = refs.length === 1 ? monotoneDirection(profiles, refs[0]!) : null;
  if (direction !== null && !last.diverged) return { firstDivergent: null, probes, search: 'ends' };
  if (direction === 'away') {
    // profiles[lo] is clean, profiles[hi] diverges
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (at(mid).diverged) hi = mid;
      else lo = mid;
    }
    return { firstDivergent: at(hi), probes, search: 'bisect' };
  }
  for (let i = 1; i < n; i++) if (at(i).diverged) return { firstDivergent: at(i), probes, search: 'linear' };
  return { firstDivergent: null, probes, search: 'linear' };
}

/** The profiles the log was recorded under: its hosts' (null if one is not a known profile). */
function recordedProfiles(store: EventStore): KernelProfile[] {
  const names = new Set<string>();
  for (const sid of store.streams(hostStreamId(''))) {
    const h = rebuildStream<HostState>(store, sid).state;
    if (h) names.add(h.profile);
  }
  try {
    return [...names].map(resolveProfile);
  } catch {
    return [];
  }
}

/**
 * Whether, along the order, each profile differs from the reference in a superset of the
 * switches the previous one does ('away'), in a subset ('towards'), or neither (null).
 */
function monotoneDirection(profiles: KernelProfile[], ref: KernelProfile): 'away' | 'towards' | null {
  const differing = profiles.map((p) => new Set(switchNames().filter((sw) => switchValue(p, sw) !== switchValue(ref, sw))));
  const within = (a: Set<SwitchName>, b: Set<SwitchName>) => [...a].every((sw) => b.has(sw));
  const pairs = differing.slice(1).map((d, i) => [differing[i]!, d] as const);
  if (pairs.every(([a, b]) => within(a, b))) return 'away';
  if (pairs.every(([a, b]) => within(b, a))) return 'towards';
  return null;
}

/** Which of the switches where `target` differs from `base`, flipped alone on `base`, make the replay diverge. */
export function bisectSwitches(store: EventStore, base: KernelProfile, target: KernelProfile, reference: KernelProfile | undefined, scope: ReplayScope) {
  const differing = differingSwitches(base, target).map((d) => d.switch);
  const probes = differing.map((sw) => ({
    switch: sw,
    value: switchValue(target, sw),
    ...probe(store, withSwitches(base, { [sw]: switchValue(target, sw) }), reference, scope),
  }));
  return { base: base.name, target: target.name, differing, probes, culprits: probes.filter((p) => p.diverged).map((p) => p.switch) };
}

/** The behaviour switches on which two profiles differ, each with its value in both. */
export function differingSwitches(base: KernelProfile, target: KernelProfile): { switch: SwitchName; from: boolean; to: boolean }[] {
  return switchNames()
    .filter((sw) => switchValue(base, sw) !== switchValue(target, sw))
    .map((sw) => ({ switch: sw, from: switchValue(base, sw), to: switchValue(target, sw) }));
}

function switchValue(p: KernelProfile, sw: SwitchName): boolean {
  const [arch, name] = sw.split('.') as ['x86' | 'arm64', string];
  return (p[arch] as unknown as Record<string, boolean>)[name]!;
}
