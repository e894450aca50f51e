// Opening a ledger file with SQLite, and reading one without writing anything beside it.
//
// A ledger uses write-ahead logging. SQLite's readers of a WAL database coordinate with its
// writers through an index file, <ledger>-shm, which a reader creates (with an empty <ledger>-wal)
// when it is absent: a read-only connection leaves both beside the ledger, and cannot open it at
// all where it may not create them (a read-only mount, a directory it cannot write). Where no
// writer can exist, SQLite's `immutable` open reads the file as it is, with no lock and no file
// created (https://sqlite.org/uri.html#uriimmutable, https://sqlite.org/wal.html#readonly):
// - neither -wal nor -shm beside the ledger, and a directory this process cannot write: no WAL
//   writer can open it there (it must create them), so nothing can change it while it is read;
// - or the caller asks to create nothing (openLedgerForReading): it vouches that no process
//   writes the file while it is read (an input ledger, an archived one).
// A -wal that holds frames (changes not yet copied into the file) is read only through an index:
// with its -shm beside it, the plain read-only connection reads both and creates nothing; without
// one, the ledger cannot be read where nothing may be created (an io error says so).
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { sqliteStoreError, StoreError } from './errors.js';

// better-sqlite3 reads SQLITE_USE_URI once, when its addon loads (at the first connection of the
// process): file: names are then URIs, which the immutable open needs. Paths the store opens that
// begin with "file:" are made relative ("./file:…") so they stay plain names.
process.env.SQLITE_USE_URI ??= '1';

export interface SqliteOpen {
  readonly: boolean;
  /** read-only and create no file beside the ledger (see above) */
  createNothing?: boolean;
  timeout: number;
}

/** How a read-only open reads the file: through SQLite's shared index, or as an immutable file. */
export type ReadMode = 'shared' | 'immutable';

/** A path as a plain file name, never a URI. */
export function plainName(path: string): string {
  return /^file:/i.test(path) ? `./${path}` : path;
}

function writableDir(path: string): boolean {
  try {
    accessSync(dirname(resolve(path)), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const sizeOf = (f: string): number | null => (existsSync(f) ? statSync(f).size : null);

/** How to read a ledger without creating what must not be created; io when it cannot be read so. */
export function readMode(path: string, createNothing: boolean): ReadMode {
  const wal = sizeOf(`${path}-wal`);
  const shm = existsSync(`${path}-shm`);
  if (wal !== null && shm) return 'shared'; // (both there: the plain read-only connection creates nothing)
  if (!createNothing && writableDir(path)) return 'shared';
  if (wal !== null && wal > 0) {
    throw new StoreError(
      'io',
      `cannot read ${path} without creating a file beside it: its write-ahead log (${path}-wal, ${wal} bytes) holds changes SQLite reads ` +
        `only through an index (${path}-shm) it would have to create there; copy the ledger with its -wal to a writable directory, ` +
        'or open it once where it can be written',
      { path },
    );
  }
  return 'immutable';
}

/** The immutable URI of a file (its '%', '?' and '#' escaped). */
function immutableUri(path: string): string {
  return `file:${resolve(path).replace(/[%?#]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}?immutable=1`;
}

/** Open the file; read-only, a first read proves it can be read. */
export function openDatabase(path: string, o: SqliteOpen): Database.Database {
  const mode = o.readonly && path !== ':memory:' ? readMode(path, o.createNothing ?? false) : 'shared';
  let db: Database.Database;
  try {
    db = new Database(mode === 'immutable' ? immutableUri(path) : plainName(path), { timeout: o.timeout, readonly: o.readonly });
  } catch (e) {
    if (mode === 'immutable' && String((e as { code?: unknown }).code ?? '').startsWith('SQLITE_CANTOPEN') && existsSync(path)) {
      const why = 'SQLite was loaded in this process before clockledger could enable URI file names (set SQLITE_USE_URI=1)';
      throw new StoreError('io', `cannot read ${path} without creating a file beside it: ${why}`, { path });
    }
    throw new StoreError('io', `cannot open event log ${path}: ${(e as Error).message}`);
  }
  if (!o.readonly) return db;
  try {
    db.pragma('user_version');
    return db;
  } catch (e) {
    db.close();
    const code = String((e as { code?: unknown }).code ?? '');
    // A WAL ledger whose shared-memory index (-shm) is absent and cannot be created
    if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN')) {
      const why = `SQLite needs to create ${path}-shm beside it (the ledger uses write-ahead logging) and cannot`;
      throw new StoreError('io', `cannot read ${path}: ${why}; make the directory writable or copy the ledger elsewhere`, { path });
    }
    throw sqliteStoreError(e, path);
  }
}
