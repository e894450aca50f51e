// Before and after: what differs between a cell's two runs, broken into changes that can each be
// applied alone to the "before" run. A VMM release differs from another by its behaviour switches
// (the release bisect's flips), a host kernel profile from another by its switches (the profile
// bisect's), a host class or a guest by its fields. A changed cell is re-run once per change with
// that change alone: the changes whose run gives the "after" verdict are the ones responsible.
import type { Json } from '../codec.js';
import { resolveProfile } from '../../kvm/profiles.js';
import { differingSwitches } from '../replay/bisect.js';
import { switchFlips } from '../replay/release-bisect.js';
import { resolveStrategyRelease, strategyNameOf } from '../migration/strategies/releases.js';
import { toJson } from '../codec.js';
import type { GuestClass, HostClass, RunSpec } from './plan.js';

export interface Change {
  /** the axis the change is on */
  axis: 'strategy' | 'host' | 'guest';
  /**
   * a VMM behaviour switch (kvmclockCtrl), a kernel switch (x86.periodicClockSync), a host field
   * (tscScaling), a guest setting (ntp.client), or the whole value (strategy, release, kernel)
   */
  name: string;
  /** the host class or guest it is made on (host and guest changes) */
  on?: string;
  from: Json;
  to: Json;
}

/** A change, and the cell's "before" run with that change alone applied. */
export interface Probe {
  change: Change;
  run: RunSpec;
}

/** A kernel profile spec with one switch set: `linux-6.18+x86.a=true` and x86.b=false → `linux-6.18+x86.a=true,x86.b=false`. */
export function profileWith(spec: string, sw: string, value: boolean): string {
  const [name, rest] = spec.split('+', 2) as [string, string | undefined];
  const overrides = new Map((rest ? rest.split(',') : []).map((p) => p.split('=') as [string, string]));
  overrides.set(sw, String(value));
  return `${name}+${[...overrides].map(([k, v]) => `${k}=${v}`).join(',')}`;
}

const same = (a: unknown, b: unknown) => JSON.stringify(toJson(a)) === JSON.stringify(toJson(b));

/** The changes between two releases of one strategy or two strategies, each with the strategy spec that makes it alone. */
function strategyChanges(before: string, after: string): { change: Change; strategy: string }[] {
  if (before === after) return [];
  if (strategyNameOf(before) !== strategyNameOf(after)) return [{ change: { axis: 'strategy', name: 'strategy', from: before, to: after }, strategy: after }];
  const b = resolveStrategyRelease(before);
  const a = resolveStrategyRelease(after);
  const flips = switchFlips(b, a);
  if (flips.length) return flips.map((f) => ({ change: { axis: 'strategy', name: f.switch, from: f.from, to: f.to }, strategy: f.spec }));
  // the same switches under another label: nothing to take apart
  return b.release === a.release ? [] : [{ change: { axis: 'strategy', name: 'release', from: b.release, to: a.release }, strategy: after }];
}

const HOST_FIELDS = [
  'arch',
  'tscKhz',
  'cntfrqHz',
  'actualTscHz',
  'vendor',
  'tscScaling',
  'clocksource',
  'constantTsc',
  'tscUnstable',
  'ecv',
  'initialTsc',
  'realtimeOffsetNs',
] as const;

/** The changes between two host classes, each with the class that makes it alone. */
function hostChanges(b: HostClass, a: HostClass): { change: Change; host: HostClass }[] {
  const out: { change: Change; host: HostClass }[] = [];
  if (b.kernel !== a.kernel) {
    // the switches of the host's own architecture (the other's say nothing about its migrations)
    const flips = differingSwitches(resolveProfile(b.kernel), resolveProfile(a.kernel)).filter((f) => f.switch.startsWith(`${b.arch}.`));
    for (const f of flips) {
      out.push({ change: { axis: 'host', name: f.switch, on: b.name, from: f.from, to: f.to }, host: { ...b, kernel: profileWith(b.kernel, f.switch, f.to) } });
    }
    if (!flips.length && resolveProfile(b.kernel).name !== resolveProfile(a.kernel).name) {
      // two names for the same switches: nothing to take apart, but say what was compared
      out.push({ change: { axis: 'host', name: 'kernel', on: b.name, from: b.kernel, to: a.kernel }, host: { ...b, kernel: a.kernel } });
    }
  }
  for (const k of HOST_FIELDS) {
    if (same(b[k] ?? null, a[k] ?? null)) continue;
    const host = { ...b, [k]: a[k] } as HostClass;
    if (a[k] === undefined) delete (host as unknown as Record<string, unknown>)[k];
    out.push({ change: { axis: 'host', name: k, on: b.name, from: toJson(b[k] ?? null), to: toJson(a[k] ?? null) }, host });
  }
  return out;
}

/** The settings of a guest as dotted paths (ntp.client), values as JSON. */
function flatten(o: Record<string, unknown>, prefix = '', out = new Map<string, Json>()): Map<string, Json> {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (v !== null && typeof v === 'object' && typeof v !== 'bigint') flatten(v as Record<string, unknown>, `${prefix}${k}.`, out);
    else out.set(`${prefix}${k}`, toJson(v));
  }
  return out;
}

function withSetting(settings: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(settings);
  const keys = path.split('.');
  let o = copy;
  for (const k of keys.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
  if (value === undefined) delete o[keys[keys.length - 1]!];
  else o[keys[keys.length - 1]!] = value;
  return copy;
}

function getSetting(settings: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), settings);
}

/** The changes between two guests, each with the guest that makes it alone. */
function guestChanges(b: GuestClass, a: GuestClass): { change: Change; guest: GuestClass }[] {
  const fb = flatten(b.settings);
  const fa = flatten(a.settings);
  const paths = [...new Set([...fb.keys(), ...fa.keys()])].sort();
  return paths
    .filter((p) => !same(fb.get(p) ?? null, fa.get(p) ?? null))
    .map((p) => ({
      change: { axis: 'guest' as const, name: p, on: b.name, from: fb.get(p) ?? null, to: fa.get(p) ?? null },
      guest: { name: b.name, settings: withSetting(b.settings, p, getSetting(a.settings, p)) as GuestClass['settings'] },
    }));
}

/**
 * The probes of a changed cell: its "before" run (one guest) with each change alone applied. A
 * host class on both sides of the pair (a migration between two hosts of one class) changes on both.
 */
export function probesOf(before: RunSpec, after: RunSpec): Probe[] {
  const probes: Probe[] = strategyChanges(before.strategy, after.strategy).map(({ change, strategy }) => ({ change, run: { ...before, strategy } }));
  const sameClass = before.from.name === before.to.name;
  for (const { change, host } of hostChanges(before.from, after.from)) {
    probes.push({ change, run: { ...before, from: host, ...(sameClass ? { to: { ...host } } : {}) } });
  }
  if (!sameClass) for (const { change, host } of hostChanges(before.to, after.to)) probes.push({ change, run: { ...before, to: host } });
  for (const { change, guest } of guestChanges(before.guests[0]!, after.guests[0]!)) probes.push({ change, run: { ...before, guests: [guest] } });
  return probes;
}

/** A change in a line: "kvmclockCtrl false → true", "host b: x86.periodicClockSync true → false". */
export function changeText(c: Change): string {
  const where = c.axis === 'host' ? `host ${c.on}: ` : c.axis === 'guest' ? `guest ${c.on}: ` : '';
  return `${where}${c.name} ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`;
}
