// The fleet safety matrix, planned: host pairs × VMM strategies × blackouts × guests, every cell
// an index over those axes, the guest innermost. A guest's settings only change what the audit's
// simulated guest does with a migration, not the migration, so the cells of one (pair, strategy,
// blackout) are one run: one migration on a scratch ledger, audited once per guest. Pure: the
// plan is data, and a cell's coordinates are a function of its index alone.
import type { Json } from '../codec.js';

export type Arch = 'x86' | 'arm64';

/** A host class: createHost's request fields (less hostId), named. */
export interface HostClass {
  name: string;
  arch: Arch;
  /** the host kernel profile, with any switch overrides (linux-6.18+x86.periodicClockSync=false) */
  kernel: string;
  tscKhz?: number;
  cntfrqHz?: bigint;
  actualTscHz?: bigint;
  vendor?: 'vmx' | 'svm';
  tscScaling?: boolean;
  clocksource?: 'tsc' | 'hpet' | 'arch_sys_counter';
  constantTsc?: boolean;
  tscUnstable?: boolean;
  ecv?: boolean;
  /** the counter at true time 0 (default: its rate × the uptime of the role it plays, CellSetup) */
  initialTsc?: bigint;
  realtimeOffsetNs?: bigint;
}

/**
 * A guest: the simulated Linux guest's settings as a request gives them (the audit's
 * `thresholds.guest`, createVm's `guest` once VMs carry one: kernel, clocksource, boot
 * parameters, ntp), u64s as decimal strings, named.
 */
export interface GuestClass {
  name: string;
  settings: { [k: string]: Json };
}

/** How every cell's guest is prepared before its migration; recorded with the matrix so a re-run prepares it the same way. */
export interface CellSetup {
  vcpus: number;
  /** the source host's uptime at true time 0 (its counter then: rate × uptime), and the destination's */
  sourceUptimeNs: bigint;
  destinationUptimeNs: bigint;
  /** how long the guest runs (kvmclock enabled on every x86 vCPU) before the migration */
  warmupNs: bigint;
  /** x86: just before the migration the guest's sleeper arms vCPU 0's TSC-deadline timer this far ahead (0: not armed) */
  sleeperNs: bigint;
  /** the time each VMM ioctl takes (migrate's vmmLatencyNs) */
  vmmLatencyNs: bigint;
}

export interface MatrixPlan {
  hosts: HostClass[];
  /** [from, to] indices into hosts, in order */
  pairs: [number, number][];
  /** strategy specs as given (name[@X.Y[.Z]][+switch=value,...]) */
  strategies: string[];
  guests: GuestClass[];
  blackoutsNs: bigint[];
  setup: CellSetup;
}

/** Where a cell sits on the axes. */
export interface CellCoord {
  index: number;
  pair: number;
  strategy: number;
  blackout: number;
  guest: number;
}

/** One migration and the guests its audit is read for: cells firstCell .. firstCell + guests.length − 1. */
export interface RunSpec {
  run: number;
  firstCell: number;
  from: HostClass;
  to: HostClass;
  strategy: string;
  blackoutNs: bigint;
  guests: GuestClass[];
  setup: CellSetup;
}

export const runCount = (p: MatrixPlan): number => p.pairs.length * p.strategies.length * p.blackoutsNs.length;
export const cellCount = (p: MatrixPlan): number => runCount(p) * p.guests.length;

/** The coordinates of cell `index` (pair, then strategy, then blackout, then guest). */
export function cellAt(p: MatrixPlan, index: number): CellCoord {
  const g = p.guests.length;
  const b = p.blackoutsNs.length;
  const s = p.strategies.length;
  if (!Number.isInteger(index) || index < 0 || index >= cellCount(p)) throw new RangeError(`cell ${index} is outside the matrix (0..${cellCount(p) - 1})`);
  const guest = index % g;
  const run = (index - guest) / g;
  return { index, guest, blackout: run % b, strategy: Math.floor(run / b) % s, pair: Math.floor(run / (b * s)) };
}

/** The index of the cell at these coordinates. */
export function indexOf(p: MatrixPlan, c: Omit<CellCoord, 'index'>): number {
  return ((c.pair * p.strategies.length + c.strategy) * p.blackoutsNs.length + c.blackout) * p.guests.length + c.guest;
}

/** Run `run`: its migration and every guest audited on it. */
export function runAt(p: MatrixPlan, run: number): RunSpec {
  const c = cellAt(p, run * p.guests.length);
  const [from, to] = p.pairs[c.pair]!;
  const [strategy, blackoutNs] = [p.strategies[c.strategy]!, p.blackoutsNs[c.blackout]!];
  return { run, firstCell: c.index, from: p.hosts[from]!, to: p.hosts[to]!, strategy, blackoutNs, guests: p.guests, setup: p.setup };
}

/** A cell's run, narrowed to its own guest (what re-running one cell runs). */
export function cellRun(p: MatrixPlan, index: number): RunSpec {
  const c = cellAt(p, index);
  const r = runAt(p, (index - c.guest) / p.guests.length);
  return { ...r, firstCell: index, guests: [p.guests[c.guest]!] };
}

/** Every ordered pair of host classes of one architecture (a guest cannot move between architectures), and how many were left out. */
export function allPairs(hosts: readonly HostClass[]): { pairs: [number, number][]; crossArch: number } {
  const pairs: [number, number][] = [];
  let crossArch = 0;
  for (const [i, a] of hosts.entries()) {
    for (const [j, b] of hosts.entries()) {
      if (a.arch === b.arch) pairs.push([i, j]);
      else crossArch++;
    }
  }
  return { pairs, crossArch };
}

/** The counter a host class starts from in a role: as given, else its rate × the role's uptime. */
export function initialCounter(h: HostClass, uptimeNs: bigint): bigint {
  if (h.initialTsc !== undefined) return h.initialTsc;
  const hz = h.arch === 'x86' ? BigInt(h.tscKhz ?? 0) * 1000n : (h.cntfrqHz ?? 0n);
  return (hz * uptimeNs) / 1_000_000_000n;
}

/** A guest's label when it has no name: the settings it sets, as key=value ("default" for none). */
export function guestLabel(settings: { [k: string]: Json }): string {
  const parts: string[] = [];
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const k of Object.keys(o).sort()) {
      const v = o[k];
      if (v === undefined) continue;
      if (v !== null && typeof v === 'object') walk(v as Record<string, unknown>, `${prefix}${k}.`);
      else parts.push(`${prefix}${k}=${String(v)}`);
    }
  };
  walk(settings as Record<string, unknown>, '');
  return parts.length ? parts.join(' ') : 'default';
}
