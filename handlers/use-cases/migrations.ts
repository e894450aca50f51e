// Live migrations and their audit.
import { z } from 'zod';
import { auditFrom, type AuditOverrides, type AuditReport } from '../../machines/audit/audit.js';
import { guestSchema } from '../guest-field.js';
import { logAuditSource, sessionAuditSource, type AuditSource } from '../../machines/audit/source.js';
import type { Session } from '../../machines/session.js';
import { DEFAULT_THRESHOLDS, type AuditThresholds } from '../../machines/audit/thresholds.js';
import type { Json } from '../../machines/codec.js';
import { nextMigrationId, runMigration } from '../../machines/migration/run.js';
import { STRATEGIES, STRATEGY_NAMES } from '../../machines/migration/strategies/index.js';
import { bareRelease, ReleaseSpecError, releaseTable, resolveStrategyRelease, strategyNameOf } from '../../machines/migration/strategies/releases.js';
import { MIGRATION_STREAM_PREFIX, migrationIdOf, migrationStreamId, traceStreamId } from '../../machines/stream-ids.js';
import { auditTrace } from '../../machines/trace/audit.js';
import type { WrittenEvent } from '../../store/types.js';
import { defineHandler, type HandlerEnv } from '../define.js';
import type { JsonOf } from '../../lib/json-of.js';
import { commonFields, idSchema, u64Field } from '../fields.js';
import { HandlerError } from '../errors.js';
import { MAX_OPTION_LENGTH, MAX_OPTIONS } from '../limits.js';
import { didYouMean } from '../suggest.js';

export { guestSchema } from '../guest-field.js';

export const thresholdsSchema = z
  .object({
    ...(Object.fromEntries(Object.keys(DEFAULT_THRESHOLDS).map((k) => [k, u64Field.optional()])) as Record<
      keyof AuditThresholds,
      z.ZodOptional<typeof u64Field>
    >),
    // the guest's watchdog interval, which this old name now sets (machines/audit/audit.ts): a period, so above 0
    watchdogIntervalNs: u64Field.refine((v) => v >= 1_000_000n, 'at least 1 ms').optional(),
    guest: guestSchema,
  })
  .strict()
  .optional();

/** a strategy name, optionally a modelled release and switch overrides: `firecracker@1.12+kvmclockCtrl=true` */
export const strategyField = z.string().superRefine((v, ctx) => {
  const name = strategyNameOf(v);
  if (!STRATEGY_NAMES.includes(name)) {
    ctx.addIssue({ code: 'custom', message: `unknown strategy '${name}'${didYouMean(name, STRATEGY_NAMES)} (known: ${STRATEGY_NAMES.join(', ')})` });
    return;
  }
  try {
    resolveStrategyRelease(v);
  } catch (e) {
    if (!(e instanceof ReleaseSpecError)) throw e;
    ctx.addIssue({ code: 'custom', message: e.message });
  }
});

/** a strategy's options (strategies lists each strategy's) */
export const optionsField = z
  .record(z.string(), z.union([z.boolean(), z.number(), z.string().max(MAX_OPTION_LENGTH)]))
  .refine((o) => Object.keys(o).length <= MAX_OPTIONS, { message: `at most ${MAX_OPTIONS} options` })
  .default({});

export const migrate = defineHandler({
  name: 'migrate',
  schema: z
    .object({
      ...commonFields,
      vmId: idSchema,
      /** the destination host; with inPlace, the VM's own host (may be omitted) */
      toHost: idSchema.optional(),
      /** pause the VM for the blackout and resume it where it is (a VMM stop/cont) instead of moving it */
      inPlace: z.boolean().default(false),
      /** a strategy name, optionally a modelled release and switch overrides: `firecracker@1.12+kvmclockCtrl=true` */
      strategy: strategyField,
      blackoutNs: u64Field,
      vmmLatencyNs: u64Field.default(20_000n),
      readSpacingNs: u64Field.default(0n),
      writeSpacingNs: u64Field.default(0n),
      preSaveGapNs: u64Field.default(0n),
      options: optionsField,
      newVmId: idSchema.optional(),
      migrationId: idSchema.optional(),
      thresholds: thresholdsSchema,
    })
    .strict()
    .refine((r) => r.inPlace || r.toHost !== undefined, { message: 'toHost is required (unless inPlace)', path: ['toHost'] })
    .refine((r) => !r.inPlace || r.newVmId === undefined || r.newVmId === r.vmId, { message: 'an in-place pause keeps the VM id', path: ['newVmId'] }),
  async run(req, env) {
    const { answer: r, source } = await writeThenAudit(env, (s) => {
      const migrationId = req.migrationId ?? nextMigrationId(s);
      const fromHost = s.requireVm(req.vmId).hostId;
      return runMigration(s, {
        migrationId,
        vmId: req.vmId,
        // default: the guest's name and this migration's id (web → web.m1 → web.m2, not web.m1.m2)
        newVmId: req.inPlace ? req.vmId : (req.newVmId ?? `${req.vmId.replace(/\.m\d+$/, '')}.${migrationId}`),
        fromHost,
        toHost: req.inPlace ? (req.toHost ?? fromHost) : req.toHost!,
        inPlace: req.inPlace,
        strategy: req.strategy,
        blackoutNs: req.blackoutNs,
        vmmLatencyNs: req.vmmLatencyNs,
        readSpacingNs: req.readSpacingNs,
        writeSpacingNs: req.writeSpacingNs,
        preSaveGapNs: req.preSaveGapNs,
        options: req.options as Record<string, Json>,
      });
    });
    return { ...r, audit: auditOrThrow(source, r.migrationId, req.thresholds) };
  },
});

/**
 * A write whose answer names migrations, and the source to audit them from as a later `audit`
 * would read the log: this session's own events and kept states are that log, so nothing is read
 * back (a retried request already recorded has no session here: it is audited from the log).
 */
export async function writeThenAudit<R extends object>(env: HandlerEnv, work: (s: Session) => R): Promise<{ answer: JsonOf<R>; source: AuditSource }> {
  let committed: { session: Session; written: WrittenEvent[] } | null = null;
  const answer = await env.write(
    (s) => ({ result: work(s), session: s }),
    (outcome, written) => {
      committed = { session: outcome.session, written };
      return { ...outcome.result };
    },
  );
  const c = committed as { session: Session; written: WrittenEvent[] } | null;
  const store = await env.log();
  return { answer, source: c ? sessionAuditSource(c.session, c.written, store) : logAuditSource(store) };
}

export function auditOrThrow(source: AuditSource, migrationId: string, thresholds?: AuditOverrides): AuditReport {
  const a = auditFrom(source, migrationId, thresholds);
  if (!a) throw new HandlerError('not_found', `no migration '${migrationId}'`, { migrationId });
  return a;
}

export const audit = defineHandler({
  name: 'audit',
  schema: z.object({ ...commonFields, migrationId: idSchema.optional(), thresholds: thresholdsSchema }).strict(),
  async run(req, env) {
    const store = await env.log();
    const source = logAuditSource(store);
    if (req.migrationId) {
      // `audit <id>` also names an imported host trace (its own report, under `trace`)
      if (!store.streamVersion(migrationStreamId(req.migrationId)) && store.streamVersion(traceStreamId(req.migrationId))) {
        return { trace: auditTrace(store, req.migrationId)! };
      }
      return { audit: auditOrThrow(source, req.migrationId, req.thresholds) };
    }
    const ids = store.streams(MIGRATION_STREAM_PREFIX).map((s) => migrationIdOf(s)!);
    const audits = ids.map((id) => auditOrThrow(source, id, req.thresholds));
    const count = (v: AuditReport['verdict']) => audits.filter((a) => a.verdict === v).length;
    // a migration the log ends inside (a fork cut it) is counted apart: it has no outcome to judge
    return { audits, summary: { pass: count('pass'), warn: count('warn'), fail: count('fail'), inFlight: count('in_flight') } };
  },
});

export const strategies = defineHandler({
  name: 'strategies',
  schema: z.object({ ...commonFields }).strict(),
  run() {
    return {
      strategies: Object.entries(STRATEGIES).flatMap(([name, per]) =>
        Object.values(per).map((s) => {
          const t = releaseTable(name);
          const bare = bareRelease(name);
          return {
            name,
            arch: s!.arch,
            summary: s!.summary,
            options: s!.options ?? {},
            // ascending; `name@X.Y[.Z]` selects the newest at or below X.Y.Z
            releases: t.releases.map((r) => r.version),
            // what each switch does when on, and the architecture it applies to
            switches: t.switches,
            switchArch: t.switchArch,
            // each release's switches, what changed and the source of its version fact (tag, commit, changelog line)
            releaseDetails: t.releases.map((r) => ({ release: r.version, switches: r.switches, note: r.note, source: r.source })),
            // the project's newest published release: a version above it names no release (absent where none is established)
            ...(t.newest ? { newest: t.newest } : {}),
            // what the bare name runs: the newest release, its switches as they are
            bare: { release: bare.release, switches: bare.switches },
          };
        }),
      ),
    };
  },
});
