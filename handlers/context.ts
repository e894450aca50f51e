// What a handler runs against: the event log named by the context (or the embedded default; the
// command line and the Lambda adapter name CLOCKLEDGER_DB's, dbFromEnv()).
// Handlers that only read open an existing ledger read-only (never creating, converting or
// writing it); handlers that record events create and migrate it.
//
// ctx.db is a SQLite file path, or a postgres:// (postgresql://) URL whose ?schema= names the
// schema the ledger lives in (default clockledger). On either engine a handler writes through the
// session's log port and reads through a synchronous EventStore: the SQLite file itself, or on
// PostgreSQL a ReadView of the log caught up to its head (store/read-view.ts).
import { openEventStore } from '../store/sqlite-event-store.js';
import { asyncView } from '../store/async-view.js';
import type { AsyncEventStore } from '../store/async-types.js';
import { StoreError } from '../store/errors.js';
import { isPostgresUrl, parsePgUrl } from '../store/pg-url.js';
import type { PgEventStore } from '../store/postgres-event-store.js';
import { ReadView } from '../store/read-view.js';
import type { EventStore } from '../store/types.js';
import { CODE_VERSION } from '../machines/version.js';

/** The event log used when none is named (CLOCKLEDGER_DB overrides it for the CLI and Lambda). */
export const DEFAULT_DB = './clockledger.db';

/** The database of a CLI or Lambda invocation: CLOCKLEDGER_DB, else DEFAULT_DB (read at call time). */
export function dbFromEnv(): string {
  return process.env.CLOCKLEDGER_DB || DEFAULT_DB;
}

export interface HandlerContext {
  /** the database: a file (default ./clockledger.db) or a postgres:// URL (?schema=, default clockledger) */
  db?: string;
  /** an already open store (takes precedence over db) */
  store?: EventStore;
  /** long work (replay, bisect) reports the log position it has reached */
  onProgress?: (position: number) => void;
  /** every path a request names, and every file a handler makes, must lie in this directory (the Lambda adapter sets it) */
  forkDir?: string;
}

/** 'read': an existing ledger, opened read-only; 'write': created or migrated as needed. */
export type StoreAccess = 'read' | 'write';

/** The engine a context names: an open store or a file is SQLite, a postgres:// URL PostgreSQL. */
export function engineOf(ctx: HandlerContext = {}): 'sqlite' | 'postgres' {
  if (ctx.store) return 'sqlite';
  const db = ctx.db ?? DEFAULT_DB;
  if (isPostgresUrl(db)) return 'postgres';
  // a URL of any other kind is refused rather than taken for a file name
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(db);
  if (scheme)
    throw new StoreError('invalid_request', `db: ${scheme[1]}:// ledgers are not supported: give a file path, or a postgres:// or postgresql:// URL`, {
      field: 'db',
      scheme: scheme[1],
    });
  return 'sqlite';
}

const open = new Map<string, { store: EventStore; access: StoreAccess }>();

/**
 * The SQLite store for a context; stores are opened once per path per process. A read-only store
 * is replaced by a writable one the first time a writer needs the same path.
 */
export function storeFor(ctx: HandlerContext = {}, access: StoreAccess = 'write'): EventStore {
  if (ctx.store) return ctx.store;
  if (engineOf(ctx) === 'postgres') throw new StoreError('invalid_request', `${parsePgUrl(ctx.db!).display} is a PostgreSQL ledger: read it through logFor()`);
  const path = ctx.db ?? DEFAULT_DB;
  const cached = open.get(path);
  if (cached && (cached.access === 'write' || access === 'read')) return cached.store;
  const store = openEventStore(path, { codeVersion: CODE_VERSION, readonly: access === 'read' });
  cached?.store.close();
  open.set(path, { store, access });
  return store;
}

// ---- PostgreSQL ----------------------------------------------------------------------------

interface PgLedger {
  access: StoreAccess;
  store: Promise<PgEventStore>;
  /** the log as read by this process, caught up at each read (one per URL) */
  view?: ReadView;
  /** catch-ups of the view, one at a time */
  catching?: Promise<unknown>;
}

const pgOpen = new Map<string, PgLedger>();
/** every PostgreSQL store this process opened (a read-only one replaced by a writable one included) */
const pgAll = new Set<Promise<PgEventStore>>();

/** The PostgreSQL store of a URL, opened (and, for a writer, created or migrated) once per process. */
export async function pgStoreFor(url: string, access: StoreAccess = 'write'): Promise<PgEventStore> {
  const key = parsePgUrl(url).display;
  const cached = pgOpen.get(key);
  if (cached && (cached.access === 'write' || access === 'read')) return cached.store;
  const opening = openPg(url, access);
  pgAll.add(opening);
  const entry: PgLedger = { access, store: opening, view: cached?.view, catching: cached?.catching };
  pgOpen.set(key, entry);
  try {
    return await opening;
  } catch (e) {
    // nothing kept: the next call tries again (the server may be back)
    pgAll.delete(opening);
    if (pgOpen.get(key) === entry) {
      if (cached) pgOpen.set(key, cached);
      else pgOpen.delete(key);
    }
    throw e;
  }
}

async function openPg(url: string, access: StoreAccess): Promise<PgEventStore> {
  const { openPgEventStore } = await import('../store/postgres-event-store.js');
  try {
    return await openPgEventStore(url, { codeVersion: CODE_VERSION, readonly: access === 'read' });
  } catch (e) {
    if (e instanceof StoreError && e.details?.connectionLost === true) {
      throw new StoreError(
        'io',
        `cannot reach the PostgreSQL server of ${parsePgUrl(url).display}: ${e.message.replace(/^PostgreSQL connection lost: /, '')}`,
        { ...e.details, unavailable: true },
      );
    }
    throw e;
  }
}

/** The log to read synchronously: the SQLite store, or the PostgreSQL ledger's view caught up to its head. */
export async function logFor(ctx: HandlerContext = {}, access: StoreAccess = 'write'): Promise<EventStore> {
  if (engineOf(ctx) === 'sqlite') return storeFor(ctx, access);
  const store = await pgStoreFor(ctx.db!, access);
  const entry = pgOpen.get(store.path)!;
  const view = (entry.view ??= new ReadView(store));
  const caught = (entry.catching ?? Promise.resolve()).catch(() => undefined).then(() => view.catchUp());
  entry.catching = caught;
  return caught;
}

/** The log as an asynchronous store (verify and fork run on the engine's own rows). */
export async function asyncLogFor(ctx: HandlerContext = {}, access: StoreAccess = 'write'): Promise<AsyncEventStore> {
  return engineOf(ctx) === 'sqlite' ? asyncView(storeFor(ctx, access)) : pgStoreFor(ctx.db!, access);
}

/** Close every store this process opened (CLI exit, tests); PostgreSQL pools end with their last store. */
export async function closeStores(): Promise<void> {
  for (const s of open.values()) s.store.close();
  open.clear();
  const pg = [...pgAll];
  pgAll.clear();
  pgOpen.clear();
  for (const p of pg) await (await p.catch(() => undefined))?.close();
}
