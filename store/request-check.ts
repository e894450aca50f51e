// A stored request answer is checked, not trusted: its response hash binds the response to the
// request id, the handler, the request's fingerprint, the positions it wrote and the chain hash of
// the last of them. verify() recomputes it for every request and a retry recomputes it before
// answering, so a rewritten response (or one moved to other positions) is detected.
import type Database from 'better-sqlite3';
import { hash } from 'node:crypto';
import { StoreError } from './errors.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why a request id cannot be stored (undefined: it can). One rule for both engines, checked before
 * either sees the id: PostgreSQL text holds no NUL, and both engines store text as UTF-8, where a
 * lone surrogate becomes U+FFFD (two different ids would meet in one row). Control characters are
 * refused with NUL, as in file paths (store/errors.ts checkPath).
 */
export function requestIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return 'a request id is a non-empty string';
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u001f\u007f]/.exec(id);
  if (bad) return `a request id may not contain a control character (U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()})`;
  if (LONE_SURROGATE.test(id)) return 'a request id must be well-formed Unicode (it holds a lone surrogate)';
  return undefined;
}

/** requestIdProblem() as a coded invalid_request naming the field. */
export function checkRequestId(id: string): void {
  const problem = requestIdProblem(id);
  if (problem !== undefined) throw new StoreError('invalid_request', `requestId: ${problem}`, { field: 'requestId' });
}

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

/** A row as stored, with the hash kept for it (null: none, which never matches) and its number. */
export interface StoredRequestRow extends RequestRow {
  responseHash: string | null;
  /** the request's number in the order requests were answered, 1, 2, ... (null: none, which verify reports) */
  seq: number | null;
}

/**
 * The requests' digest one request further: sha256 over the digest so far, the request's number and
 * its response hash (which binds every field of the row). A head keeps the last number and digest,
 * so a row rewritten with a recomputed response hash, or one removed, is found against an anchor.
 */
export function requestsLink(prev: string, seq: number, rowHash: string): string {
  return hash('sha256', `requests\n${prev}\n${seq}\n${rowHash}`, 'hex');
}

/** Events that carry a request id the requests table has no row for: where they are. */
export interface RequestEvents {
  first: number;
  last: number;
  count: number;
}

/**
 * A retry whose request id has no row although events carry it: refused, never run again. When
 * those events end the log (a fork cut inside the request's commit) it is a conflict; elsewhere
 * the row was deleted (corrupt).
 */
export function missingRowError(requestId: string, ev: RequestEvents, lastPosition: number): StoreError {
  const where = ev.first === ev.last ? `position ${ev.first}` : `positions ${ev.first}..${ev.last}`;
  const details = { requestId, firstPosition: ev.first, lastPosition: ev.last };
  if (ev.last === lastPosition && ev.count === ev.last - ev.first + 1) {
    const why = `request ${requestId} is only partly in this ledger (${where}, up to its end: a fork cut inside it) and its answer is not; use a new id`;
    return new StoreError('conflict', why, details);
  }
  const why = `request ${requestId} is recorded at ${where} but its stored answer is missing: the requests table was altered, so it is not run again`;
  return new StoreError('corrupt', `${why} (run verify)`, details);
}

/**
 * The answer a retry gets from a stored request: its response, once its hash matches (else
 * corrupt) and the request asked the same (a different fingerprint is a conflict; a row stored
 * without one answers any retry, as it did before fingerprints were kept).
 */
export function storedAnswer(r: StoredRequestRow, fingerprint: string | undefined): { response: unknown } {
  if (r.responseHash !== responseHash(r)) {
    throw new StoreError(
      'corrupt',
      `the stored response of request ${r.requestId} does not match its hash: it was altered, so it is not returned (run verify)`,
      { requestId: r.requestId },
    );
  }
  if (fingerprint !== undefined && r.fingerprint !== null && r.fingerprint !== fingerprint) {
    throw new StoreError('conflict', `request id ${r.requestId} was already used for a different ${r.handler} request; use a new request id`, {
      requestId: r.requestId,
      handler: r.handler,
    });
  }
  return { response: JSON.parse(r.response) };
}

/** sha256 over every field of the row, hex. */
export function responseHash(r: RequestRow): string {
  return hash(
    'sha256',
    `request\n${r.requestId}\n${r.handler}\n${r.fingerprint ?? ''}\n${r.firstPosition ?? ''}\n${r.lastPosition ?? ''}\n${r.lastHash ?? ''}\n${r.response}`,
    'hex',
  );
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
