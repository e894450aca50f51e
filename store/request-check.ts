// A stored request answer is checked, not trusted: its response hash binds the response to the
// request id, the handler, the request's fingerprint, the positions it wrote and the chain hash of
// the last of them. verify() recomputes it for every request and a retry recomputes it before
// answering, so a rewritten response (or one moved to other positions) is detected.
import type Database from 'better-sqlite3';
import { hash } from 'node:crypto';
import { StoreError } from './errors.js';

export interface RequestRow {
  requestId: string;
  handler: string;
  fingerprint: string | null;
  firstPosition: number | null;
  lastPosition: number | null;
  /** the chain hash of the event at lastPosition (null when the request wrote no event) */
  lastHash: string | null;
  /** the stored response text */
  response: string;
}

/** The row a commit stores for its request id: what it wrote, the chain hash it ended at, and the response. */
export function requestRowOf(
  opts: { requestId: string; handler?: string; fingerprint?: string },
  written: readonly { position: number }[],
  lastHash: string,
  response: unknown,
): RequestRow {
  return {
    requestId: opts.requestId,
    handler: opts.handler ?? '',
    fingerprint: opts.fingerprint ?? null,
    firstPosition: written[0]?.position ?? null,
    lastPosition: written.at(-1)?.position ?? null,
    lastHash: written.length ? lastHash : null,
    response: JSON.stringify(response ?? null),
  };
}

/** A row as stored, with the hash kept for it (null: none, which never matches). */
export interface StoredRequestRow extends RequestRow {
  responseHash: string | null;
}

/**
 * The answer a retry gets from a stored request: its response, once its hash matches (else
 * corrupt) and the request asked the same (a different fingerprint is a conflict; a row stored
 * without one answers any retry, as it did before fingerprints were kept).
 */
export function storedAnswer(r: StoredRequestRow, fingerprint: string | undefined): { response: unknown } {
  if (r.responseHash !== responseHash(r)) {
    throw new StoreError('corrupt', `the stored response of request ${r.requestId} does not match its hash: it was altered, so it is not returned (run verify)`, { requestId: r.requestId });
  }
  if (fingerprint !== undefined && r.fingerprint !== null && r.fingerprint !== fingerprint) {
    throw new StoreError('conflict', `request id ${r.requestId} was already used for a different ${r.handler} request; use a new request id`, { requestId: r.requestId, handler: r.handler });
  }
  return { response: JSON.parse(r.response) };
}

/** sha256 over every field of the row, hex. */
export function responseHash(r: RequestRow): string {
  return hash('sha256', `request\n${r.requestId}\n${r.handler}\n${r.fingerprint ?? ''}\n${r.firstPosition ?? ''}\n${r.lastPosition ?? ''}\n${r.lastHash ?? ''}\n${r.response}`, 'hex');
}

/** The same as an SQL function, for migration 007 (which converts the rows already stored). */
export function registerResponseHash(db: Database.Database): void {
  db.function('clockledger_response_hash', { deterministic: true }, (requestId, handler, fingerprint, first, last, lastHash, response) =>
    responseHash({
      requestId: String(requestId),
      handler: String(handler),
      fingerprint: fingerprint === null ? null : String(fingerprint),
      firstPosition: first === null ? null : Number(first),
      lastPosition: last === null ? null : Number(last),
      lastHash: lastHash === null ? null : String(lastHash),
      response: String(response),
    }),
  );
}
