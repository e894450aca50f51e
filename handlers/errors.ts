// Every failure a user can script against becomes { ok: false, error: { code, message, details? } }
// with a stable code; nothing else escapes a handler.
// (kvm usage errors, store errors, domain refusals, request bounds and handler errors all extend
// CodedError and carry their code through unchanged.)
import type { ZodError } from 'zod';
import { CodedError } from '../lib/coded-error.js';
import { sqliteStoreError } from '../store/errors.js';
import type { ErrorCode } from './error-codes.js';

export type { ErrorCode };

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class HandlerError extends CodedError<ErrorCode> {}

/** The most schema issues an error lists (details.issues); details.issueCount says how many there were. */
export const MAX_ISSUES = 10;
/** The longest issue message kept (an unrecognised-keys or enum message may list thousands of names). */
export const MAX_ISSUE_MESSAGE = 300;

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`);

/**
 * Map anything thrown to the error body users see. An answer stays small whatever the request
 * was (Lambda answers at most 6 MB): a schema error lists its first MAX_ISSUES issues, each
 * message cut at MAX_ISSUE_MESSAGE characters, with the count of them all.
 */
export function toErrorBody(e: unknown): ErrorBody {
  if (isZodError(e)) {
    const issue = e.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : '(request)';
    const issues = e.issues.slice(0, MAX_ISSUES).map((i) => ({ path: i.path.join('.'), message: clip(i.message, MAX_ISSUE_MESSAGE) }));
    const message = `${field}: ${clip(issue?.message ?? 'invalid', MAX_ISSUE_MESSAGE)}`;
    return { code: 'invalid_request', message, details: { field, issues, issueCount: e.issues.length } };
  }
  if (e instanceof CodedError) return withDetails({ code: e.code as ErrorCode, message: e.message }, e.details);
  // SQLite's own errors (a damaged page met by any read, a read-only file): coded, not internal
  if ((e as Error)?.name === 'SqliteError') {
    const s = sqliteStoreError(e, 'the ledger');
    return { code: s.code, message: s.message };
  }
  if (e instanceof SyntaxError) return { code: 'invalid_request', message: `malformed JSON: ${e.message}` };
  const err = e as Error;
  return { code: 'internal', message: err?.message ?? String(e) };
}

/** zod's error, recognised without loading zod (a handler on the cold path may never have needed it). */
function isZodError(e: unknown): e is ZodError {
  return e instanceof Error && e.name === 'ZodError' && Array.isArray((e as { issues?: unknown }).issues);
}

function withDetails(b: ErrorBody, details?: Record<string, unknown>): ErrorBody {
  return details ? { ...b, details } : b;
}
