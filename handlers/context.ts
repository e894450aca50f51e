// What a handler runs against: the event log named by the context (or the embedded default).
// Handlers that only read open an existing ledger read-only (never creating, converting or
// writing it); handlers that record events create and migrate it.
import { openEventStore } from '../store/sqlite-event-store.js';
import type { EventStore } from '../store/types.js';
import { CODE_VERSION } from '../machines/version.js';
import { DEFAULT_DB } from './registry.js';

export { DEFAULT_DB };

export interface HandlerContext {
  /** the database file (default ./clockledger.db) */
  db?: string;
  /** an already open store (takes precedence over db) */
  store?: EventStore;
  /** long work (replay, bisect) reports the log position it has reached */
  onProgress?: (position: number) => void;
  /** fork targets must lie in this directory (the Lambda adapter sets it) */
  forkDir?: string;
}

/** 'read': an existing ledger, opened read-only; 'write': created or migrated as needed. */
export type StoreAccess = 'read' | 'write';

const open = new Map<string, { store: EventStore; access: StoreAccess }>();

/**
 * The store for a context; stores are opened once per path per process. A read-only store is
 * replaced by a writable one the first time a writer needs the same path.
 */
export function storeFor(ctx: HandlerContext = {}, access: StoreAccess = 'write'): EventStore {
  if (ctx.store) return ctx.store;
  const path = ctx.db ?? DEFAULT_DB;
  const cached = open.get(path);
  if (cached && (cached.access === 'write' || access === 'read')) return cached.store;
  const store = openEventStore(path, { codeVersion: CODE_VERSION, readonly: access === 'read' });
  cached?.store.close();
  open.set(path, { store, access });
  return store;
}

/** Close every store this process opened (CLI exit, tests). */
export function closeStores(): void {
  for (const s of open.values()) s.store.close();
  open.clear();
}
