// The matrix request: its schema, every field checked with an error naming it (strategies and
// kernel profiles with the nearest known names), and its resolution into the plans to run, every
// default filled in, with the size bound checked before anything runs.
import { z } from 'zod';
import { DEFAULT_PROFILE } from '../../kvm/profiles.js';
import { toJson, type Json } from '../../machines/codec.js';
import { hostSpecFromJson, type HostSpecJson } from '../../machines/host/host.js';
import { STRATEGY_NAMES, STRATEGIES } from '../../machines/migration/strategies/index.js';
import { ReleaseSpecError, releaseTable, resolveStrategyRelease, strategyNameOf } from '../../machines/migration/strategies/releases.js';
import { allPairs, cellCount, guestLabel, type GuestClass, type HostClass, type MatrixPlan } from '../../machines/matrix/plan.js';
import { GUEST_STREAM_PREFIX, guestVmIdOf, HOST_STREAM_PREFIX } from '../../machines/stream-ids.js';
import type { EventStore } from '../../store/types.js';
import { HandlerError } from '../errors.js';
import { commonFields, idSchema, s64Field, u64Field } from '../fields.js';
import { refineProfileName } from '../profile-field.js';
import { didYouMean } from '../suggest.js';
import { hostHardwareFields, needsItsCounterFrequency } from './hosts.js';
import { guestSchema } from './migrations.js';

/** The most cells a matrix may have unless the request sets maxCells (before and after together). */
export const MATRIX_MAX_CELLS = 20_000;
/** The most maxCells may allow. */
export const MATRIX_MAX_CELLS_CEILING = 200_000;
/** The most entries of each axis. */
export const MATRIX_MAX_AXIS = 64;

/** How every cell's guest is prepared unless the request says otherwise (modelling choices, not version facts). */
export const DEFAULT_SETUP = {
  /** hosts up for a week (source) and a day (destination) at true time 0: their counters differ, as two machines' do */
  sourceUptimeNs: 7n * 86_400n * 1_000_000_000n,
  destinationUptimeNs: 86_400n * 1_000_000_000n,
  /** the guest runs 10 s with kvmclock on every vCPU before it moves */
  warmupNs: 10_000_000_000n,
  /**
   * no LAPIC deadline armed: of the strategies only firecracker and crosvm model IA32_TSC_DEADLINE
   * in their saved MSRs, so under the others an armed deadline would be lost by the model, not by
   * the VMM (QEMU saves it); 100 ms (the guest model's sleeperPeriodNs) for firecracker #4099 cells
   */
  sleeperNs: 0n,
  /** migrate's default vmmLatencyNs */
  vmmLatencyNs: 20_000n,
};

const hostName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,119}$/, 'a host name is 1-120 letters, digits, dot, underscore, colon or dash');
const guestName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'a guest name is printable text');

const hostClassSchema = z
  .object({
    name: hostName,
    ...hostHardwareFields,
    kernel: z.string().max(200).superRefine(refineProfileName).default(DEFAULT_PROFILE),
    initialTsc: u64Field.optional(),
    realtimeOffsetNs: s64Field.optional(),
  })
  .strict()
  .superRefine(needsItsCounterFrequency);

/** A guest: the audit's guest settings, and optionally a name (default: the settings it sets). */
const guestEntry = z.record(z.string(), z.unknown()).transform((o, ctx): GuestClass => {
  const { name, ...settings } = o;
  const n = name === undefined ? undefined : guestName.safeParse(name);
  if (n && !n.success) ctx.addIssue({ code: 'custom', path: ['name'], message: n.error.issues[0]!.message });
  const g = guestSchema.safeParse(settings);
  if (!g.success) for (const i of g.error.issues) ctx.addIssue({ code: 'custom', path: i.path as (string | number)[], message: i.message });
  if (!g.success || (n && !n.success)) return z.NEVER;
  const canonical = toJson(g.data ?? {}) as { [k: string]: Json };
  return { name: (n?.data as string | undefined) ?? guestLabel(canonical), settings: canonical };
});

/** Why a strategy spec does not resolve, with the nearest known name, release or switch (null: it resolves). */
export function strategyProblem(spec: string): string | null {
  const name = strategyNameOf(spec);
  if (!STRATEGY_NAMES.includes(name)) return `unknown strategy '${name}'${didYouMean(name, STRATEGY_NAMES)} (known: ${STRATEGY_NAMES.join(', ')})`;
  try {
    resolveStrategyRelease(spec);
    return null;
  } catch (e) {
    if (!(e instanceof ReleaseSpecError)) throw e;
    if (e.message.includes('did you mean')) return e.message;
    const t = releaseTable(name);
    const versions = t.releases.map((r) => r.version);
    const version = /^[^@+]*@([^+]*)/.exec(spec)?.[1];
    if (/older than every/.test(e.message)) return `${e.message}: did you mean '${name}@${versions[0]}'?`;
    if (/^malformed version/.test(e.message) && version !== undefined) return `${e.message}${didYouMean(version, versions)}`;
    const unknown = /^unknown switch '?([^' ]+)/.exec(e.message)?.[1];
    if (unknown) return `${e.message}${didYouMean(unknown, Object.keys(t.switches))}`;
    return e.message;
  }
}

const strategySpec = z
  .string()
  .min(1)
  .max(200)
  .superRefine((v, ctx) => {
    const p = strategyProblem(v);
    if (p) ctx.addIssue({ code: 'custom', message: p });
  });

/** Entries of an axis given at most once each. */
function distinct<T>(key: (x: T) => string, what: string) {
  return (xs: T[], ctx: z.RefinementCtx) => {
    const seen = new Map<string, number>();
    xs.forEach((x, i) => {
      const k = key(x);
      if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [i], message: `the same ${what} as entry ${seen.get(k)} (${k}): each ${what} once` });
      else seen.set(k, i);
    });
  };
}

const axis = <T extends z.ZodTypeAny>(t: T) => z.array(t).min(1).max(MATRIX_MAX_AXIS);
const hostsAxis = axis(hostClassSchema).superRefine(distinct((h: z.output<typeof hostClassSchema>) => h.name, 'host name'));
const strategiesAxis = axis(strategySpec).superRefine(distinct((s: string) => s, 'strategy'));
const guestsAxis = axis(guestEntry)
  .superRefine(distinct((g: GuestClass) => g.name, 'guest name'))
  .superRefine(distinct((g: GuestClass) => JSON.stringify(g.settings), 'guest'));

const setupSchema = z
  .object({
    sourceUptimeNs: u64Field.default(DEFAULT_SETUP.sourceUptimeNs),
    destinationUptimeNs: u64Field.default(DEFAULT_SETUP.destinationUptimeNs),
    warmupNs: u64Field.refine((v) => v >= 1_000_000n && v <= 3_600_000_000_000n, 'from 1 ms to 1 h').default(DEFAULT_SETUP.warmupNs),
    sleeperNs: u64Field.refine((v) => v <= 60_000_000_000n, 'at most 60 s').default(DEFAULT_SETUP.sleeperNs),
    vmmLatencyNs: u64Field.refine((v) => v <= 1_000_000_000n, 'at most 1 s').default(DEFAULT_SETUP.vmmLatencyNs),
  })
  .strict()
  .default({ ...DEFAULT_SETUP });

export const matrixSchema = z
  .object({
    ...commonFields,
    /** the host classes (or fleet: true for the ledger's own hosts) */
    hosts: hostsAxis.optional(),
    fleet: z.boolean().default(false),
    /** 'all': every ordered pair of classes of one architecture (a class with itself included); or [from, to] names */
    pairs: z
      .union([
        z.literal('all'),
        z
          .array(z.tuple([hostName, hostName]))
          .min(1)
          .max(4096),
      ])
      .default('all'),
    strategies: strategiesAxis,
    /** the guests (default: with fleet: true the guests recorded with the ledger's VMs, else the default guest) */
    guests: guestsAxis.optional(),
    blackoutsNs: axis(u64Field.refine((v) => v <= 3_600_000_000_000n, 'at most 1 h')).superRefine(distinct((b: bigint) => b.toString(), 'blackout')),
    vcpus: z.number().int().min(1).max(64).default(2),
    setup: setupSchema,
    /** the "after" side: each axis given replaces the one of the request, entry for entry */
    compareWith: z
      .object({ strategies: strategiesAxis.optional(), hosts: hostsAxis.optional(), guests: guestsAxis.optional() })
      .strict()
      .refine((c) => c.strategies || c.hosts || c.guests, { message: 'give strategies, hosts or guests to compare with' })
      .optional(),
    maxCells: z.number().int().min(1).max(MATRIX_MAX_CELLS_CEILING).default(MATRIX_MAX_CELLS),
    /** worker threads (default: one per core) */
    workers: z.number().int().min(1).max(64).optional(),
    /** also answer with the cells as CSV, or the heatmap as an HTML page */
    format: z.enum(['json', 'csv', 'html']).default('json'),
    /** write each non-passing cell's report (cell-<index>.html, after-<index>.html) and the heatmap (index.html) into this new directory */
    reportsDir: z.string().min(1).max(1024).optional(),
    matrixId: idSchema.optional(),
  })
  .strict()
  .refine((r) => r.fleet !== (r.hosts !== undefined), { message: 'give hosts, or fleet: true for the hosts of the ledger (not both)', path: ['hosts'] });

export type MatrixRequest = z.output<typeof matrixSchema>;

const hostClass = (h: z.output<typeof hostClassSchema>): HostClass =>
  Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as unknown as HostClass;

/** invalid_request naming the field. */
const refuse = (field: string, message: string) => new HandlerError('invalid_request', `${field}: ${message}`, { field });

/** The ledger's own hosts as host classes: what their createHost asked, less what belongs to one machine (its counter, boot time, wall clock). */
export function fleetHosts(store: EventStore): HostClass[] {
  const hosts = store.streams(HOST_STREAM_PREFIX).map((sid) => {
    const created = store.read({ streamId: sid, limit: 1 })[0];
    const spec = hostSpecFromJson((created!.data as { spec: HostSpecJson }).spec);
    const parsed = hostClassSchema.safeParse(
      toJson({
        name: spec.id,
        arch: spec.arch,
        tscKhz: spec.tscKhz,
        cntfrqHz: spec.cntfrqHz,
        actualTscHz: spec.actualHz,
        vendor: spec.vendor,
        tscScaling: spec.tscScaling,
        clocksource: spec.clocksource,
        constantTsc: spec.constantTsc,
        tscUnstable: spec.tscUnstable,
        ecv: spec.ecv,
        kernel: spec.profile,
      }),
    );
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const why = `host '${spec.id}' of the ledger cannot be a host class: ${issue.path.join('.')}: ${issue.message}`;
      throw new HandlerError('invalid_state', why, { hostId: spec.id });
    }
    return hostClass(parsed.data);
  });
  if (!hosts.length) throw new HandlerError('not_found', 'fleet: the ledger has no hosts (create them, or give hosts)', { field: 'fleet' });
  if (hosts.length > MATRIX_MAX_AXIS) throw refuse('fleet', `the ledger has ${hosts.length} hosts, more than the ${MATRIX_MAX_AXIS} a matrix takes`);
  return hosts;
}

/** The default guest: the audit's guest settings as they are. */
const DEFAULT_GUESTS: GuestClass[] = [{ name: 'default', settings: {} }];

/**
 * The guests recorded with the ledger's VMs (createVm's guest, configureGuest since: the settings
 * in force now), one class per distinct setting, named by the VMs that run it; the default guest
 * when no VM has one recorded.
 */
export function fleetGuests(store: EventStore): GuestClass[] {
  const byKey = new Map<string, { settings: { [k: string]: Json }; vms: string[] }>();
  for (const sid of store.streams(GUEST_STREAM_PREFIX)) {
    const last = store.read({ streamId: sid }).at(-1);
    const recorded = (last?.data as { guest?: unknown } | undefined)?.guest;
    const parsed = guestSchema.safeParse(recorded ?? {});
    if (!parsed.success) {
      const why = `the guest of VM '${guestVmIdOf(sid)}' cannot be a guest class: ${parsed.error.issues[0]!.message}`;
      throw new HandlerError('invalid_state', why, { vmId: guestVmIdOf(sid) });
    }
    const settings = toJson(parsed.data ?? {}) as { [k: string]: Json };
    const key = JSON.stringify(settings);
    const g = byKey.get(key) ?? { settings, vms: [] };
    g.vms.push(guestVmIdOf(sid)!);
    byKey.set(key, g);
  }
  if (!byKey.size) return DEFAULT_GUESTS;
  if (byKey.size > MATRIX_MAX_AXIS)
    throw refuse('fleet', `the ledger's VMs run ${byKey.size} distinct guests, more than the ${MATRIX_MAX_AXIS} a matrix takes`);
  return [...byKey.values()].map(({ settings, vms }) => ({
    name: vms.length > 3 ? `${vms.slice(0, 3).join(',')},+${vms.length - 3}` : vms.join(','),
    settings,
  }));
}

/** The host pairs a request names, checked against its hosts (names known, one architecture). */
function resolvePairs(hosts: HostClass[], pairs: MatrixRequest['pairs']): { pairs: [number, number][]; crossArch: number } {
  if (pairs === 'all') return allPairs(hosts);
  const names = hosts.map((h) => h.name);
  const seen = new Set<string>();
  return {
    crossArch: 0,
    pairs: pairs.map(([a, b], i) => {
      const ends = [a, b].map((n, k) => {
        const j = names.indexOf(n);
        if (j < 0) throw refuse(`pairs.${i}.${k}`, `no host '${n}'${didYouMean(n, names)} (hosts: ${names.join(', ')})`);
        return j;
      }) as [number, number];
      const [x, y] = [hosts[ends[0]]!.arch, hosts[ends[1]]!.arch];
      if (x !== y) throw refuse(`pairs.${i}`, `host '${a}' is ${x} and host '${b}' is ${y}: a guest cannot move between architectures`);
      if (seen.has(`${a}\u0000${b}`)) throw refuse(`pairs.${i}`, `the pair ${a} → ${b} is given twice`);
      seen.add(`${a}\u0000${b}`);
      return ends;
    }),
  };
}

/** An "after" axis must match the one it replaces entry for entry. */
function sameLength(name: string, given: unknown[] | undefined, against: unknown[]): void {
  if (given && given.length !== against.length) {
    const why = `${given.length} entries for the ${against.length} of ${name}: the after side replaces each entry with the one at the same place`;
    throw refuse(`compareWith.${name}`, why);
  }
}

export interface ResolvedMatrix {
  before: MatrixPlan;
  after: MatrixPlan | null;
  /** host pairs left out of 'all' for joining two architectures */
  crossArchPairs: number;
  cells: number;
}

/** The plans a request asks for (the ledger read for fleet: true), refused before anything runs if larger than maxCells. */
export function resolveMatrix(req: MatrixRequest, store: () => EventStore): ResolvedMatrix {
  const hosts = req.hosts ? req.hosts.map(hostClass) : fleetHosts(store());
  const guests = req.guests ?? (req.fleet ? fleetGuests(store()) : DEFAULT_GUESTS);
  const { pairs, crossArch } = resolvePairs(hosts, req.pairs);
  if (!pairs.length) throw new HandlerError('invalid_request', 'pairs: no two hosts of one architecture: there is no migration to check', { field: 'pairs' });
  const setup = { vcpus: req.vcpus, ...req.setup };
  const before: MatrixPlan = { hosts, pairs, strategies: req.strategies, guests, blackoutsNs: req.blackoutsNs, setup };
  let after: MatrixPlan | null = null;
  const c = req.compareWith;
  if (c) {
    sameLength('strategies', c.strategies, req.strategies);
    sameLength('hosts', c.hosts, hosts);
    sameLength('guests', c.guests, guests);
    const afterHosts = c.hosts ? c.hosts.map(hostClass) : hosts;
    afterHosts.forEach((h, i) => {
      if (h.arch !== hosts[i]!.arch) throw refuse(`compareWith.hosts.${i}`, `${h.arch}, where hosts.${i} is ${hosts[i]!.arch}: a class keeps its architecture`);
    });
    after = { ...before, hosts: afterHosts, strategies: c.strategies ?? req.strategies, guests: c.guests ?? guests };
  }
  const cells = cellCount(before) * (after ? 2 : 1);
  if (cells > req.maxCells) {
    const axes = `${pairs.length} host pairs × ${req.strategies.length} strategies × ${req.blackoutsNs.length} blackouts × ${guests.length} guests`;
    const shape = `${axes}${after ? ', before and after' : ''}`;
    const bound = `more than the ${req.maxCells} allowed (maxCells; up to ${MATRIX_MAX_CELLS_CEILING})`;
    throw new HandlerError('invalid_request', `the matrix has ${cells} cells (${shape}), ${bound}`, { field: 'maxCells', cells, max: req.maxCells });
  }
  return { before, after, crossArchPairs: crossArch, cells };
}

/** Whether a strategy has an implementation for an architecture (a cell without one is n/a). */
export const strategyRunsOn = (spec: string, arch: 'x86' | 'arm64'): boolean => STRATEGIES[strategyNameOf(spec)]?.[arch] !== undefined;
