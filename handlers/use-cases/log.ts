// The log itself (reading it is events.ts): rebuilding any stream at any point, verifying the hash chain,
// forking a prefix into a new database.
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { HostState } from '../../kvm/host.js';
import { toJson } from '../../machines/codec.js';
import { hostStreamId } from '../../machines/host/host.js';
import { migrationStreamId } from '../../machines/migration/state.js';
import { rebuildStream, type RebuildTarget } from '../../machines/rebuild.js';
import { vmIdOf, vmStreamId } from '../../machines/vm/events.js';
import type { VmRecord } from '../../machines/vm/evolve.js';
import { vmView } from '../../machines/vm/view.js';
import { LEDGER_STREAM, type LedgerState } from '../../machines/ledger/ledger.js';
import { logTime } from '../../machines/session.js';
import type { EventStore } from '../../store/types.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { CODE_VERSION } from '../../machines/version.js';
import { rebuildWakeIndex, wakeIndexBatches } from '../../machines/wake-index.js';
import { StoreError } from '../../store/errors.js';
import { isPostgresUrl, parsePgUrl } from '../../store/pg-url.js';
import { ReadView } from '../../store/read-view.js';
import { confinedFile, confinedPgUrl } from '../confine.js';
import { defineHandler, type HandlerEnv } from '../define.js';
import { commonFields, idSchema, u64Field } from '../fields.js';
import { HandlerError } from '../errors.js';

const targetFields = {
  position: z.number().int().min(0).optional(),
  version: z.number().int().min(0).optional(),
  // the log keeps signed 64-bit instants
  time: u64Field.refine((t) => t < 1n << 63n, { message: 'an instant is below 2^63 ns' }).optional(),
};

export const stateAt = defineHandler({
  name: 'stateAt',
  schema: z
    .object({
      ...commonFields,
      vmId: idSchema.optional(),
      hostId: idSchema.optional(),
      migrationId: idSchema.optional(),
      streamId: z.string().optional(),
      ...targetFields,
    })
    .strict()
    .refine((r) => [r.vmId, r.hostId, r.migrationId, r.streamId].filter((x) => x !== undefined).length === 1, {
      message: 'name exactly one of vmId, hostId, migrationId, streamId',
    })
    .refine((r) => [r.position, r.version, r.time].filter((x) => x !== undefined).length <= 1, { message: 'give at most one of position, version, time' }),
  async run(req, env) {
    const streamId = req.vmId
      ? vmStreamId(req.vmId)
      : req.hostId
        ? hostStreamId(req.hostId)
        : req.migrationId
          ? migrationStreamId(req.migrationId)
          : req.streamId!;
    const target: RebuildTarget = { position: req.position, version: req.version, time: req.time };
    const store = await env.log();
    const versions = store.streamVersion(streamId);
    if (versions === 0) throw new HandlerError('not_found', `no stream '${streamId}'`, { streamId });
    if (req.version !== undefined && req.version > versions) {
      throw new HandlerError('not_found', `stream '${streamId}' has ${versions} versions, not ${req.version}`, { streamId, versions });
    }
    const r = rebuildStream(store, streamId, target);
    if (r.state === null) throw new HandlerError('not_found', `stream '${streamId}' did not exist yet at that point`, { streamId });
    // The instant the state is viewed at: the time asked for, or that of the last event it includes.
    const at = instantOf(store, target, r.position);
    if (vmIdOf(streamId) !== null) {
      const rec = r.state as VmRecord;
      const host = rebuildStream<HostState>(store, hostStreamId(rec.hostId), { time: at, position: req.position }).state;
      return { streamId, version: r.version, position: r.position, at, state: vmView(rec, host, at) };
    }
    return { streamId, version: r.version, position: r.position, at, state: toJson(r.state) };
  },
});

function instantOf(store: EventStore, t: RebuildTarget, statePosition: number): bigint {
  if (t.time !== undefined) return t.time;
  if (t.position === undefined && t.version === undefined) {
    return logTime(store, rebuildStream<LedgerState>(store, LEDGER_STREAM).state?.now ?? 0n);
  }
  const p = t.position !== undefined ? Math.min(t.position, store.lastPosition()) : statePosition;
  return store.read({ fromPosition: p, toPosition: p })[0]?.time ?? 0n;
}

const hashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a chain hash: 64 lowercase hex digits');

export const verify = defineHandler({
  name: 'verify',
  schema: z
    .object({
      ...commonFields,
      /**
       * a head reported by an earlier verify: the log must still hold that position with that hash,
       * and (with `requests`) the requests up to that number must still digest to that hash
       */
      anchor: z
        .object({
          position: z.number().int().min(0),
          hash: hashSchema,
          requests: z
            .object({ seq: z.number().int().min(0), hash: hashSchema })
            .strict()
            .optional(),
        })
        .strict()
        .optional(),
      /**
       * re-derive by replay what no hash can vouch for (default true): every snapshot's state, and
       * the wake instant of a stream whose last event records none. false checks bindings only.
       */
      replay: z.boolean().default(true),
    })
    .strict(),
  async run(req, env) {
    // (on PostgreSQL, the server's own rows are checked)
    const log = await env.asyncLog();
    const replayer = req.replay ? (await import('../../machines/replay-check.js')).streamReplayer() : undefined;
    const v = await log.verify(req.anchor, replayer);
    const { intact, checked, head, coverage } = v;
    if (!intact) {
      return { intact, checked, head, firstBrokenPosition: v.firstBrokenPosition, reason: v.reason, table: v.table, ...(coverage ? { coverage } : {}) };
    }
    return { intact, checked, head, coverage };
  },
});

export const fork = defineHandler({
  name: 'fork',
  schema: z.object({ ...commonFields, position: z.number().int().min(0), targetDb: z.string().min(1) }).strict(),
  async run(req, env) {
    if (env.engine === 'postgres') return forkPg(req, env);
    // (under the Lambda adapter: a file inside the fork directory, never ':memory:', a file: URI or a URL)
    const targetDb = env.forkDir === undefined ? req.targetDb : confinedFile(env.forkDir, req.targetDb, 'targetDb');
    if (existsSync(targetDb)) throw new HandlerError('conflict', `target database ${targetDb} already exists`, { targetDb });
    const last = env.store.lastPosition();
    if (req.position > last) throw new HandlerError('invalid_request', `position ${req.position} is past the end of the log (${last})`, { lastPosition: last });
    const r = env.store.fork(req.position, targetDb);
    // the copy's pending timers, as of its own head (the store copies events, not their meaning)
    const target = openEventStore(targetDb, { codeVersion: CODE_VERSION });
    try {
      rebuildWakeIndex(target);
    } finally {
      target.close();
    }
    return { targetDb, position: req.position, events: r.events };
  },
});

/**
 * A PostgreSQL ledger forks into another schema (of this database, or another database's): the
 * target is a postgres:// URL. From the Lambda adapter (a fork directory set) it must be a schema
 * of the ledger's own database.
 */
async function forkPg(req: { position: number; targetDb: string }, env: HandlerEnv): Promise<{ targetDb: string; position: number; events: number }> {
  if (!isPostgresUrl(req.targetDb)) {
    throw new HandlerError('invalid_request', 'targetDb: a PostgreSQL ledger forks into a postgres:// URL (another schema: ?schema=name)', {
      field: 'targetDb',
    });
  }
  const source = await env.asyncLog();
  const target = parsePgUrl(req.targetDb);
  if (env.forkDir !== undefined) confinedPgUrl(env.db, req.targetDb, 'targetDb');
  const last = await source.lastPosition();
  if (req.position > last) throw new HandlerError('invalid_request', `position ${req.position} is past the end of the log (${last})`, { lastPosition: last });
  let r: { events: number };
  try {
    r = await source.fork(req.position, req.targetDb);
  } catch (e) {
    if (e instanceof StoreError && e.code === 'invalid_request' && e.details?.targetDb !== undefined)
      throw new HandlerError('conflict', `target database ${target.display} already exists`, { targetDb: target.display });
    throw e;
  }
  // the copy's pending timers, as of its own head (the store copies events, not their meaning)
  const { openPgEventStore } = await import('../../store/postgres-event-store.js');
  const copy = await openPgEventStore(req.targetDb, { codeVersion: CODE_VERSION });
  try {
    const batches = wakeIndexBatches(await new ReadView(copy).catchUp());
    if (batches.length) await copy.commit(batches);
  } finally {
    await copy.close();
  }
  return { targetDb: target.display, position: req.position, events: r.events };
}
