// What a handler runs against: the event log named by the context (or the embedded default).
import { openEventStore } from '../store/sqlite-event-store.js';
import type { EventStore } from '../store/types.js';
import { CODE_VERSION } from '../machines/version.js';

export const DEFAULT_DB = './clockledger.db';

export interface HandlerContext {
  /** the database file (default ./clockledger.db) */
  db?: string;
  /** an already open store (takes precedence over db) */
  store?: EventStore;
  /** long work (replay, bisect) reports the log position it has reached */
  onProgress?: (position: number) => void;
}

const open = new Map<string, EventStore>();

/** The store for a context; stores are opened once per path per process. */
export function storeFor(ctx: HandlerContext = {}): EventStore {
  if (ctx.store) return ctx.store;
  const path = ctx.db ?? DEFAULT_DB;
  let s = open.get(path);
  if (!s) {
    s = openEventStore(path, { codeVersion: CODE_VERSION });
    open.set(path, s);
  }
  return s;
}

/** Close every store this process opened (CLI exit, tests). */
export function closeStores(): void {
  for (const s of open.values()) s.close();
  open.clear();
}
