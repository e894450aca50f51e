// What a request may name when the Lambda adapter runs it (the context's forkDir is set): a
// database file inside the fork directory, or a schema of the ledger's own PostgreSQL database.
// A request comes from whoever can invoke the function, so nothing it names may reach a file,
// or a server, the function's role was not given: every path or URL in a request (fork's
// targetDb, diff's otherDb) goes through confinedLocation() before anything opens, creates or
// even looks for it, so a refusal says nothing about what exists outside.
// Library and CLI callers (no forkDir) name what they like, as they could open it themselves.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { isPostgresUrl, parsePgUrl } from '../store/pg-url.js';
import { HandlerError } from './errors.js';
import { preview } from './limits.js';

/** A value that names no file: SQLite's in-memory database, a SQLite URI filename, or a URL. */
export function notAFilePath(value: string): string | null {
  if (value === ':memory:') return 'the in-memory database';
  if (/^file:/i.test(value)) return 'a SQLite URI filename';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value);
  return scheme ? `a ${scheme[1]}:// URL` : null;
}

/**
 * A database file inside `dir` (a relative value is taken relative to it): the resolved path,
 * whose directory's real path (symbolic links followed), and the file's own if it exists, lie
 * inside the real `dir`. `field` names the request field in the error.
 */
export function confinedFile(dir: string, value: string, field: string): string {
  const root = realOrSelf(resolve(dir));
  const what = notAFilePath(value);
  if (what) {
    const message = `${field}: ${preview(value)} is ${what}, not a database file in the fork directory ${root} (CLOCKLEDGER_FORK_DIR)`;
    throw new HandlerError('invalid_request', message, { field, [field]: value, forkDir: root });
  }
  const path = resolve(root, value);
  const within = (p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
  // the file itself is followed only when it exists (a fork target does not yet)
  const real = existsSync(path) ? realOrSelf(path) : path;
  if (!within(path) || !within(realOrSelf(dirname(path))) || !within(real)) {
    const message = `${field}: ${preview(value)} is outside the fork directory ${root} (CLOCKLEDGER_FORK_DIR)`;
    throw new HandlerError('invalid_request', message, { field, [field]: value, forkDir: root });
  }
  return path;
}

/** A postgres:// URL without its schema: the server, user and database it connects to. */
export const databaseOf = (url: string): string => parsePgUrl(url).display.replace(/[?&]schema=[^&]*/, '');

/**
 * A postgres:// URL naming a schema of the ledger's own database (`ledgerDb`, a postgres:// URL),
 * and nothing else: no other server, user or database, so a request cannot make the function
 * connect anywhere it was not configured to.
 */
export function confinedPgUrl(ledgerDb: string | undefined, value: string, field: string): string {
  if (ledgerDb === undefined || !isPostgresUrl(ledgerDb)) {
    const message = `${field}: a postgres:// URL names a PostgreSQL ledger, and this function's ledger is a file: give a database file in the fork directory`;
    throw new HandlerError('invalid_request', message, { field });
  }
  if (databaseOf(value) !== databaseOf(ledgerDb)) {
    const message = `${field}: ${parsePgUrl(value).display} is not a schema of the ledger's database (${databaseOf(ledgerDb)})`;
    throw new HandlerError('invalid_request', message, { field });
  }
  return value;
}

/**
 * Where a request's database value may point: as given when no fork directory is set (library,
 * CLI); under the Lambda adapter, a schema of the ledger's PostgreSQL database or a file inside
 * the fork directory.
 */
export function confinedLocation(ctx: { forkDir?: string; db?: string }, value: string, field: string): string {
  if (ctx.forkDir === undefined) return value;
  return isPostgresUrl(value) ? confinedPgUrl(ctx.db, value, field) : confinedFile(ctx.forkDir, value, field);
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
