// Bisecting kernel behaviour: over an ordered list of profiles, the first whose re-execution of
// the log diverges from a reference; over a profile's switches, which single switch does.
import { switchNames, withSwitches, type KernelProfile, type SwitchName } from '../../kvm/profiles.js';
import type { EventStore } from '../../store/types.js';
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

/**
 * The first profile in order whose replay diverges. Like git bisect it assumes that once a
 * behaviour changed it stays changed, so it replays O(log n) profiles; `exhaustive` replays all.
 */
export function bisectProfiles(
  store: EventStore,
  profiles: KernelProfile[],
  reference: KernelProfile | undefined,
  scope: ReplayScope,
  exhaustive = false,
): { firstDivergent: Probe | null; probes: Probe[] } {
  const probes: Probe[] = [];
  const at = (i: number) => {
    const hit = probes.find((p) => p.profile === profiles[i]!.name);
    if (hit) return hit;
    const p = probe(store, profiles[i]!, reference, scope);
    probes.push(p);
    return p;
  };
  if (exhaustive) {
    profiles.forEach((_, i) => at(i));
    return { firstDivergent: probes.find((p) => p.diverged) ?? null, probes };
  }
  let lo = 0;
  let hi = profiles.length - 1;
  if (hi < 0 || !at(hi).diverged) return { firstDivergent: null, probes };
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (at(mid).diverged) hi = mid;
    else lo = mid + 1;
  }
  return { firstDivergent: at(lo), probes };
}

/** Which of the switches where `target` differs from `base`, flipped alone on `base`, make the replay diverge. */
export function bisectSwitches(store: EventStore, base: KernelProfile, target: KernelProfile, reference: KernelProfile | undefined, scope: ReplayScope) {
  const differing = switchNames().filter((sw) => switchValue(base, sw) !== switchValue(target, sw));
  const probes = differing.map((sw) => ({ switch: sw, value: switchValue(target, sw), ...probe(store, withSwitches(base, { [sw]: switchValue(target, sw) }), reference, scope) }));
  return { base: base.name, target: target.name, differing, probes, culprits: probes.filter((p) => p.diverged).map((p) => p.switch) };
}

function switchValue(p: KernelProfile, sw: SwitchName): boolean {
  const [arch, name] = sw.split('.') as ['x86' | 'arm64', string];
  return (p[arch] as unknown as Record<string, boolean>)[name]!;
}
