// Typed store errors with stable codes (the handlers pass the code through to users).

import { CodedError } from '../lib/coded-error.js';

export type StoreErrorCode = 'conflict' | 'schema_too_new' | 'corrupt' | 'not_a_ledger' | 'not_found' | 'invalid_request' | 'io';

export class StoreError extends CodedError<StoreErrorCode> {}

/** The stream was not at the version the writer expected: someone else appended first. */
export class ConflictError extends StoreError {
  constructor(
    readonly streamId: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super('conflict', `stream ${streamId} is at version ${actual}, expected ${expected}`, { streamId, expected, actual });
  }
}

/** A path we are given to open or create: text without NUL or other control characters. */
export function checkPath(path: string, what: string): void {
  if (typeof path !== 'string' || path === '') throw new StoreError('invalid_request', `${what}: a file path is required`);
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u001f\u007f]/.exec(path);
  if (bad) {
    throw new StoreError(
      'invalid_request',
      `${what} ${JSON.stringify(path)} contains a control character ` +
        `(U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}); give a plain file path`,
      { path },
    );
  }
}

/** An error SQLite raised about a file, as a coded store error. */
export function sqliteStoreError(e: unknown, path: string): StoreError {
  if (e instanceof StoreError) return e;
  const code = String((e as { code?: unknown })?.code ?? '');
  const msg = (e as Error)?.message ?? String(e);
  if (code === 'SQLITE_NOTADB')
    return new StoreError('not_a_ledger', `${path} is not an SQLite database (or its header is damaged), so not a clockledger ledger: ${msg}`);
  if (code.startsWith('SQLITE_CORRUPT')) return new StoreError('corrupt', `${path} is damaged: ${msg}`);
  if (code.startsWith('SQLITE_READONLY')) return new StoreError('io', `${path} cannot be written (read-only file or directory): ${msg}`);
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_PERM' || code === 'SQLITE_FULL')
    return new StoreError('io', `${path}: ${msg}`);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new StoreError('io', `${path} stayed locked: ${msg}`);
  return new StoreError('corrupt', `${path} is not a usable clockledger ledger: ${msg}`);
}
