// Bisect across VMM releases. A kernel profile changes what the recorded ioctls return, so a log
// can be replayed under it; a VMM release changes which ioctls are issued, so it cannot. Instead
// the migration is run again, from the log as it stood just before it began (a fork at that
// position, on a scratch ledger the caller provides), under each release, and the audits are
// compared on what the user asks about: one finding (its severity, or its absence), one field of
// the report, or by default the verdict with every finding's code and severity.
import type { EventStore } from '../../store/types.js';
import { auditMigration, type AuditReport } from '../audit/audit.js';
import type { Json } from '../codec.js';
import { toJson } from '../codec.js';
import { rebuildStream } from '../rebuild.js';
import { DomainError, withSession } from '../session/index.js';
import { migrationStreamId } from '../stream-ids.js';
import { rebuildWakeIndex } from '../wake-index.js';
import { runMigration } from '../migration/run.js';
import { releaseTable, resolveStrategyRelease, strategyNameOf, type StrategyRelease } from '../migration/strategies/releases.js';
import type { MigrationState } from '../migration/state.js';

export interface ReleaseBisectOptions {
  /** compare this finding's severity ('absent' when it is not reported) */
  finding?: string;
  /** compare this report field (a dot path: 'kvmclock.errorNs', 'verdict') */
  field?: string;
  /** also name the switch responsible: each switch the first divergent release changes, flipped alone on the one before */
  switches?: boolean;
}

export interface ReleaseProbe {
  spec: string;
  release: string;
  switches: Record<string, boolean>;
  outcome: Json;
}

export interface ReleaseBisectResult {
  migrationId: string;
  strategy: string;
  compared: string;
  probes: ReleaseProbe[];
  /** the first release whose outcome differs from the first one's (null: none does) */
  firstDivergent: { spec: string; release: string; outcome: Json; previous: string; previousOutcome: Json } | null;
  /** with switches: each switch that changed, and whether flipping it alone reproduces the divergent outcome */
  switchProbes?: { switch: string; from: boolean; to: boolean; spec: string; outcome: Json; reproduces: boolean }[];
}

/** A store opened on a fresh scratch path, and how to dispose of it. */
export type Scratch = () => { path: string; open(): EventStore; dispose(): void };

/** What two audits are compared on: a finding's severity, a field, or by default the verdict with every finding's code and severity. */
export const auditOutcome = (a: AuditReport, opts: ReleaseBisectOptions): Json => {
  if (opts.finding !== undefined) {
    const f = a.findings.filter((x) => x.code === opts.finding).map((x) => x.severity);
    return f.length ? f.join(',') : 'absent';
  }
  if (opts.field !== undefined) {
    let v: unknown = toJson(a);
    for (const k of opts.field.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    return (v === undefined ? null : v) as Json;
  }
  return `${a.verdict}: ${
    a.findings
      .map((f) => `${f.code}(${f.severity})`)
      .sort()
      .join(' ') || '-'
  }`;
};

/** The release specs to try: the ones given, or every modelled release of the migration's strategy, oldest first. */
function releaseSpecs(strategy: string, given?: readonly string[]): string[] {
  if (given?.length) return [...given];
  return releaseTable(strategy).releases.map((r) => `${strategy}@${r.version}`);
}

/** Run migration `migrationId` again under each release spec (default: every modelled release of its strategy), from the log just before it began. */
export async function bisectReleases(
  store: EventStore,
  migrationId: string,
  given: readonly string[] | undefined,
  scratch: Scratch,
  opts: ReleaseBisectOptions = {},
): Promise<ReleaseBisectResult> {
  const sid = migrationStreamId(migrationId);
  const mig = rebuildStream(store, sid).state as MigrationState | null;
  if (!mig) throw new DomainError('not_found', `no migration '${migrationId}'`, { migrationId });
  if (mig.template) {
    // its save half was recorded once, for every clone of the template: a re-run cannot redo it alone
    throw new DomainError(
      'invalid_request',
      `migration '${migrationId}' is a clone of template '${mig.template.templateId}', whose save its other clones share: ` +
        'save a template again under each release instead',
      { migrationId, templateId: mig.template.templateId },
    );
  }
  const before = (store.positionOfVersion(sid, 1) ?? 1) - 1;
  const strategy = mig.strategy;
  const specs = releaseSpecs(strategy, given);
  for (const spec of specs) {
    if (strategyNameOf(spec) !== strategy)
      throw new DomainError('invalid_request', `release '${spec}' is not of ${strategy}, the strategy migration '${migrationId}' ran`, { spec, strategy });
  }
  const p = mig.params as Record<string, string | boolean | Record<string, Json>>;
  const rerun = async (spec: string): Promise<ReleaseProbe> => {
    const s = scratch();
    try {
      store.fork(before, s.path);
      const target = s.open();
      try {
        rebuildWakeIndex(target);
        await withSession(
          target,
          { handler: 'bisectReleases' },
          (session) =>
            runMigration(session, {
              migrationId,
              vmId: mig.vmId,
              newVmId: mig.newVmId,
              fromHost: mig.fromHost,
              toHost: mig.toHost,
              inPlace: p.inPlace === true,
              strategy: spec,
              blackoutNs: BigInt(p.blackoutNs as string),
              vmmLatencyNs: BigInt(p.vmmLatencyNs as string),
              readSpacingNs: BigInt(p.readSpacingNs as string),
              writeSpacingNs: BigInt(p.writeSpacingNs as string),
              preSaveGapNs: BigInt(p.preSaveGapNs as string),
              options: (p.options ?? {}) as Record<string, Json>,
            }),
          () => null,
        );
        const r = resolveStrategyRelease(spec);
        return { spec, release: r.release, switches: r.switches, outcome: auditOutcome(auditMigration(target, migrationId)!, opts) };
      } finally {
        target.close();
      }
    } finally {
      s.dispose();
    }
  };
  const probes: ReleaseProbe[] = [];
  for (const spec of specs) probes.push(await rerun(spec));
  const same = (a: Json, b: Json) => JSON.stringify(a) === JSON.stringify(b);
  const i = probes.findIndex((x) => !same(x.outcome, probes[0]!.outcome));
  const compared = opts.finding !== undefined ? `finding ${opts.finding}` : opts.field !== undefined ? `field ${opts.field}` : 'verdict and findings';
  const result: ReleaseBisectResult = { migrationId, strategy, compared, probes, firstDivergent: null };
  if (i < 0) return result;
  const prev = probes[i - 1]!;
  const div = probes[i]!;
  result.firstDivergent = { spec: div.spec, release: div.release, outcome: div.outcome, previous: prev.spec, previousOutcome: prev.outcome };
  if (opts.switches) {
    result.switchProbes = [];
    for (const { switch: name, from, to, spec } of switchFlips({ strategy, ...prev }, { strategy, ...div })) {
      const probe = await rerun(spec);
      result.switchProbes.push({ switch: name, from, to, spec, outcome: probe.outcome, reproduces: same(probe.outcome, div.outcome) });
    }
  }
  return result;
}

/**
 * Each switch that differs between two releases of one strategy, as a spec of the first with that
 * switch alone flipped to the second's value: the first's release and its own switch overrides
 * kept (`name@X.Y.Z+override,...,flipped`), so the spec resolves to exactly its switches but one.
 */
export function switchFlips(prev: StrategyRelease, next: StrategyRelease): { switch: string; from: boolean; to: boolean; spec: string }[] {
  const released = releaseTable(prev.strategy).releases.find((r) => r.version === prev.release)?.switches ?? {};
  const own = Object.entries(prev.switches).filter(([k, v]) => released[k] !== v);
  const flips: { switch: string; from: boolean; to: boolean; spec: string }[] = [];
  for (const [name, to] of Object.entries(next.switches)) {
    const from = prev.switches[name];
    if (from === undefined || from === to) continue;
    const overrides = [...own.filter(([k]) => k !== name), [name, to] as const].map(([k, v]) => `${k}=${v}`);
    flips.push({ switch: name, from, to, spec: `${prev.strategy}@${prev.release}+${overrides.join(',')}` });
  }
  return flips;
}
