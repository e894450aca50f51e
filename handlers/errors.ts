// Every failure a user can script against becomes { ok: false, error: { code, message, details? } }
// with a stable code; nothing else escapes a handler.
import { ZodError } from 'zod';
import { KvmUsageError } from '../kvm/errors.js';
import { DomainError } from '../machines/session.js';
import { sqliteStoreError, StoreError } from '../store/errors.js';
import { RequestBoundsError } from './limits.js';

export type ErrorCode =
  | 'invalid_request'
  | 'invalid_argument'
  | 'not_found'
  | 'invalid_state'
  | 'conflict'
  | 'schema_too_new'
  | 'corrupt'
  | 'not_a_ledger'
  | 'io'
  | 'unknown_handler'
  | 'internal';

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class HandlerError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HandlerError';
  }
}

/** Map anything thrown to the error body users see. */
export function toErrorBody(e: unknown): ErrorBody {
  if (e instanceof ZodError) {
    const issue = e.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : '(request)';
    return { code: 'invalid_request', message: `${field}: ${issue?.message ?? 'invalid'}`, details: { field, issues: e.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) } };
  }
  if (e instanceof KvmUsageError) return { code: e.code, message: e.message, details: { field: e.field } };
  if (e instanceof DomainError || e instanceof HandlerError || e instanceof StoreError || e instanceof RequestBoundsError) return withDetails({ code: e.code, message: e.message }, e.details);
  // SQLite's own errors (a damaged page met by any read, a read-only file): coded, not internal
  if ((e as Error)?.name === 'SqliteError') {
    const s = sqliteStoreError(e, 'the ledger');
    return { code: s.code, message: s.message };
  }
  if (e instanceof SyntaxError) return { code: 'invalid_request', message: `malformed JSON: ${e.message}` };
  const err = e as Error;
  return { code: 'internal', message: err?.message ?? String(e) };
}

function withDetails(b: ErrorBody, details?: Record<string, unknown>): ErrorBody {
  return details ? { ...b, details } : b;
}
