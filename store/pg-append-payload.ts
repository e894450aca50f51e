// The arguments of the PostgreSQL append functions, built from a plan (store/append-plan.ts):
// clockledger_append (migrations/pg/006) writes the plan's rows as planned, positions and hashes
// included; clockledger_append_chained (008) gives them their positions and hashes itself.
import type { AppendPlan, NewRequestRow } from './append-plan.js';
import type { ResponseTemplate } from './response-template.js';
import type { CommitSnapshot } from './types.js';

/** What clockledger_append found when the log was not as the plan read it (or `written: true`). */
export interface AppendFound {
  written: boolean;
  position: number;
  hash: string | null;
  versions: Record<string, number>;
  seq: number | null;
  answered: boolean;
}

/** What clockledger_append_chained did: written after `position`, ending at `hash`; or why not. */
export type ChainedFound =
  | { written: true; position: number; hash: string; seq: number | null }
  | { written: false; versions: Record<string, number>; answered: boolean };

/** What a commit expects of the log, checked under the lock before anything is written. */
export interface AppendExpected {
  lockClass: number;
  schema: string;
  /** the streams the commit names */
  ids: string[];
  /** each of them at its version (a stream not in the log is left out) */
  versions: Record<string, number>;
  requestId: string | null;
}

/** clockledger_append's argument: the heads the plan was made from and everything it writes. */
export function appendPayload(
  plan: AppendPlan,
  request: NewRequestRow | null,
  snapshots: CommitSnapshot[],
  expected: AppendExpected & { position: number; hash: string; seq: number | null },
): unknown {
  const written = new Map(plan.written.map((w) => [`${w.streamId}\u0000${w.version}`, w.position]));
  return {
    ...expected,
    rows: plan.rows.map((r) => ({ ...rowColumns(r), position: r.position, hash: r.hash })),
    heads: plan.streams.map((h) => ({ ...headColumns(plan, h), position: h.position })),
    ...streamUpdates(plan),
    snapshots: snapshots.map((sn) => ({ ...snapshotColumns(sn), position: written.get(`${sn.streamId}\u0000${sn.version}`) ?? null })),
    request: request && {
      request_id: request.requestId,
      handler: request.handler,
      first_position: request.firstPosition,
      last_position: request.lastPosition,
      response: request.response,
      fingerprint: request.fingerprint,
      response_hash: request.responseHash,
      seq: request.seq,
    },
  };
}

/**
 * clockledger_append_chained's argument: the plan's rows without their positions and hashes (the
 * function gives them), each stream's head as the row of its last event, and the request's row
 * as its response's template (the function numbers the row and hashes it).
 */
export function chainedPayload(plan: AppendPlan, response: ResponseTemplate | null, snapshots: CommitSnapshot[], expected: AppendExpected): unknown {
  const first = plan.written[0]?.position ?? 0;
  return {
    ...expected,
    rows: plan.rows.map(rowColumns),
    heads: plan.streams.map((h) => ({ ...headColumns(plan, h), row: h.position - first + 1 })),
    ...streamUpdates(plan),
    snapshots: snapshots.map(snapshotColumns),
    request: plan.request && {
      request_id: plan.request.requestId,
      handler: plan.request.handler ?? '',
      fingerprint: plan.request.fingerprint ?? null,
      pieces: response?.pieces ?? ['null'],
      offsets: response?.offsets ?? [],
    },
  };
}

function rowColumns(r: AppendPlan['rows'][number]) {
  return {
    stream_id: r.streamId,
    version: r.version,
    type: r.type,
    schema_version: r.schemaVersion,
    time: r.time.toString(),
    data: r.data,
    metadata: r.metadata,
  };
}

function headColumns(plan: AppendPlan, h: AppendPlan['streams'][number]) {
  return {
    stream_id: h.streamId,
    version: h.version,
    type: h.type,
    sets_wake: plan.wakes.has(h.streamId),
    wake_at: plan.wakes.get(h.streamId)?.toString() ?? null,
  };
}

/** wake instants of streams the commit writes no event to, and the category counts */
function streamUpdates(plan: AppendPlan) {
  const headed = new Set(plan.streams.map((h) => h.streamId));
  return {
    wakeOnly: [...plan.wakes].filter(([id]) => !headed.has(id)).map(([id, at]) => ({ stream_id: id, wake_at: at?.toString() ?? null })),
    categories: [...plan.categories].map(([category, streams]) => ({ category, streams })),
  };
}

function snapshotColumns(sn: CommitSnapshot) {
  return { stream_id: sn.streamId, version: sn.version, code_version: sn.codeVersion, state: sn.state.toString('base64') };
}
