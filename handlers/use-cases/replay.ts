// Replay-debugging: re-execute the log under another kernel profile, compare two logs, and
// bisect profiles (or one profile's behaviour switches) for the first that changes a result.
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_PROFILE, PROFILES, resolveProfile, SWITCH_SOURCES, type KernelProfile } from '../../kvm/profiles.js';
import { migrationStreamId } from '../../machines/migration/state.js';
import { vmStreamId } from '../../machines/vm/events.js';
import { bisectProfiles, bisectSwitches } from '../../machines/replay/bisect.js';
import { diffLogs } from '../../machines/replay/diff.js';
import { bisectReleases as bisectReleasesOf } from '../../machines/replay/release-bisect.js';
import { resolveStrategyRelease } from '../../machines/migration/strategies/releases.js';
import { replayLog, type ReplayScope } from '../../machines/replay/replay.js';
import { migrationSpan, replayReport } from '../../machines/replay/report.js';
import { openEventStore, openLedgerForReading } from '../../store/sqlite-event-store.js';
import type { EventStore } from '../../store/types.js';
import { confinedLocation } from '../confine.js';
import { engineOf, logFor } from '../context.js';
import { defineHandler } from '../define.js';
import { MAX_LIST_ITEMS } from '../limits.js';
import { commonFields, idSchema } from '../fields.js';
import { profileSpec } from '../profile-field.js';
import { scratchLedger } from '../scratch.js';
import { HandlerError } from '../errors.js';

const scopeFields = {
  vmId: idSchema.optional(),
  migrationId: idSchema.optional(),
  from: z.number().int().min(1).optional(),
  to: z.number().int().min(1).optional(),
};

/** The VM streams and the position range a request's scope covers. */
function resolveScope(store: EventStore, r: { vmId?: string; migrationId?: string; from?: number; to?: number }): ReplayScope {
  if (r.vmId && r.migrationId) throw new HandlerError('invalid_request', 'give vmId or migrationId, not both');
  if (r.vmId) {
    if (store.streamVersion(vmStreamId(r.vmId)) === 0) throw new HandlerError('not_found', `no VM '${r.vmId}'`, { vmId: r.vmId });
    return { vmIds: [r.vmId], fromPosition: r.from, toPosition: r.to };
  }
  if (r.migrationId) {
    const span = migrationSpan(store, migrationStreamId(r.migrationId));
    if (!span) throw new HandlerError('not_found', `no migration '${r.migrationId}'`, { migrationId: r.migrationId });
    const m = span.state;
    const vmIds = [m.vmId, ...(store.streamVersion(vmStreamId(m.newVmId)) ? [m.newVmId] : [])];
    return { vmIds, fromPosition: r.from ?? span.from, toPosition: r.to ?? span.to };
  }
  return { fromPosition: r.from, toPosition: r.to };
}

export const replay = defineHandler({
  name: 'replay',
  schema: z
    .object({
      ...commonFields,
      profile: profileSpec,
      reference: profileSpec.optional(),
      ...scopeFields,
      keep: z.number().int().min(1).max(100_000).default(200),
    })
    .strict(),
  async run(req, env) {
    const store = await env.log();
    const scope = resolveScope(store, req);
    const run = replayLog(store, { ...scope, profile: req.profile, reference: req.reference, keep: req.keep, onProgress: env.onProgress });
    return replayReport(store, run, req.profile, req.reference);
  },
});

export const diff = defineHandler({
  name: 'diff',
  schema: z
    .object({ ...commonFields, otherDb: z.string().min(1), vmId: idSchema.optional(), keep: z.number().int().min(1).max(100_000).default(200) })
    .strict(),
  async run(req, env) {
    const keep = { streamPrefix: req.vmId ? vmStreamId(req.vmId) : '', keep: req.keep };
    // under the Lambda adapter, a file in the fork directory or a schema of the ledger's own
    // database, refused before anything looks at it (so a refusal tells nothing of what exists)
    const otherDb = confinedLocation({ forkDir: env.forkDir, db: env.db }, req.otherDb, 'otherDb');
    if (engineOf({ db: otherDb }) === 'postgres') {
      return diffLogs(await env.log(), await logFor({ db: otherDb }, 'read'), keep);
    }
    if (!existsSync(otherDb)) throw new HandlerError('not_found', `no database at ${otherDb}`, { otherDb });
    // A read creates nothing beside the ledger it reads: with no -wal/-shm there, no writer has the
    // file open, so it is read as it stands (openLedgerForReading); with them, a writer may be at
    // work and SQLite's shared-memory protocol (through the files already there) keeps the read safe.
    const quiet = !existsSync(`${otherDb}-wal`) && !existsSync(`${otherDb}-shm`);
    const other = quiet ? openLedgerForReading(otherDb) : openEventStore(otherDb, { readonly: true });
    try {
      return diffLogs(await env.log(), other, keep);
    } finally {
      other.close();
    }
  },
});

export const bisect = defineHandler({
  name: 'bisect',
  schema: z
    .object({
      ...commonFields,
      // (bounded before any element is checked: each spec is resolved, a wrong one with suggestions)
      profiles: z.array(profileSpec).min(1).max(MAX_LIST_ITEMS).optional(),
      profile: profileSpec.optional(),
      switches: z.boolean().default(false),
      base: profileSpec.optional(),
      reference: profileSpec.optional(),
      exhaustive: z.boolean().default(false),
      ...scopeFields,
    })
    .strict()
    .refine((r) => (r.switches ? r.profile !== undefined : true), { message: 'switches: true needs the target profile' }),
  async run(req, env) {
    const store = await env.log();
    const scope = resolveScope(store, req);
    if (req.switches) {
      // Flip each switch where the target differs from the base (default: the reference, else the default profile).
      const base: KernelProfile = req.base ?? req.reference ?? resolveProfile('linux-6.18');
      return bisectSwitches(store, base, req.profile!, req.reference, scope);
    }
    const profiles = req.profiles ?? [...PROFILES];
    const r = bisectProfiles(store, profiles, req.reference, scope, req.exhaustive);
    return { order: profiles.map((p) => p.name), reference: req.reference?.name ?? 'recorded', ...r };
  },
});

/** Bisect across VMM releases: run a recorded migration again under each release (on scratch copies of the log before it). */
export const bisectReleases = defineHandler({
  name: 'bisectReleases',
  schema: z
    .object({
      ...commonFields,
      migrationId: idSchema,
      /** release specs of the migration's strategy, in order (default: every modelled release, oldest first) */
      releases: z.array(z.string().min(1).max(200)).max(MAX_LIST_ITEMS).optional(),
      /** compare this finding's severity (or its absence) */
      finding: z.string().min(1).max(64).optional(),
      /** compare this report field, a dot path such as kvmclock.errorNs */
      field: z.string().min(1).max(200).optional(),
      /** name the switch responsible (each one the first divergent release changes, flipped alone) */
      switches: z.boolean().default(false),
    })
    .strict()
    .refine((r) => r.finding === undefined || r.field === undefined, { message: 'compare a finding or a field, not both', path: ['field'] }),
  async run(req, env) {
    // every spec resolves before any work: a bad one is invalid_request naming the field
    for (const spec of req.releases ?? []) resolveStrategyRelease(spec, { field: 'releases' });
    // each run works on a scratch copy of the log in a directory of its own, removed after
    const scratch = () => scratchLedger('clockledger-release-', env.forkDir);
    return {
      ...(await bisectReleasesOf(await env.log(), req.migrationId, req.releases, scratch, { finding: req.finding, field: req.field, switches: req.switches })),
    };
  },
});

/** The kernel behaviour profiles, oldest first: each one's switches and where its behaviour comes from. */
export const profiles = defineHandler({
  name: 'profiles',
  schema: z.object({ ...commonFields }).strict(),
  run() {
    return {
      default: DEFAULT_PROFILE,
      profiles: PROFILES.map((p) => ({ name: p.name, summary: p.summary, source: p.source, x86: p.x86, arm64: p.arm64 })),
      // each behaviour switch's source: the commit that brought it (and its release), or the posted series
      switchSources: SWITCH_SOURCES,
    };
  },
});
