// The two engines behind one AsyncEventStore contract, for tests written once: SQLite (a temp
// file, seen through asyncView) and PostgreSQL (a fresh schema of the suite's throwaway server).
// Each engine also knows how to reach behind the store's back (edit a row, set the schema version).
import Database from 'better-sqlite3';
import { join } from 'node:path';
import pg from 'pg';
import { asyncView } from '../../store/async-view.js';
import type { AsyncEventStore } from '../../store/async-types.js';
import { openEventStore } from '../../store/index.js';
import { openPgEventStore } from '../../store/postgres-event-store.js';
import { tempDbPath } from './helpers.js';

export interface Engine {
  name: 'sqlite' | 'postgres';
  /** a location where no ledger exists yet */
  fresh(): string;
  /** a location whose container does not exist (a missing directory, a missing database) */
  unreachable(): string;
  open(location: string, opts?: { codeVersion?: string; readonly?: boolean }): Promise<AsyncEventStore>;
  /** raw SQL on the ledger at location, outside the store (no result rows) */
  exec(location: string, sql: string, params?: unknown[]): Promise<number>;
  /** raw SQL on the ledger at location, outside the store: its rows ($1, $2, ... placeholders on both engines) */
  query<R = Record<string, unknown>>(location: string, sql: string, params?: unknown[]): Promise<R[]>;
  /** set the ledger's schema version behind the store's back */
  setSchemaVersion(location: string, v: number): Promise<void>;
  /** the request ids recorded, sorted */
  requestIds(location: string): Promise<string[]>;
}

export const PG_URL = process.env.CLOCKLEDGER_TEST_PG_URL!;
let schemas = 0;

/** A schema name no other test (nor test process) uses. */
export function freshSchema(): string {
  return `t${process.pid}_${++schemas}`;
}

export function pgLocation(schema = freshSchema()): string {
  return `${PG_URL}?schema=${schema}`;
}

async function pgExec<R extends pg.QueryResultRow>(location: string, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
  const u = new URL(location);
  const schema = u.searchParams.get('schema')!;
  u.searchParams.delete('schema');
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    await c.query(`SET search_path TO "${schema}"`);
    return await c.query<R>(sql, params);
  } finally {
    await c.end();
  }
}

const opened: AsyncEventStore[] = [];
/** Close what the engines opened (afterEach). */
export async function closeOpened(): Promise<void> {
  for (const s of opened.splice(0)) await s.close().catch(() => undefined);
}

export const sqlite: Engine = {
  name: 'sqlite',
  fresh: () => tempDbPath(),
  unreachable: () => join(tempDbPath(), 'no-such-dir', 'events.db'),
  async open(location, opts) {
    const s = asyncView(openEventStore(location, opts));
    opened.push(s);
    return s;
  },
  async exec(location, sql, params = []) {
    const db = new Database(location);
    try {
      return db.prepare(sql.replace(/\$\d+/g, '?')).run(...params).changes;
    } finally {
      db.close();
    }
  },
  async query<R>(location: string, sql: string, params: unknown[] = []) {
    const db = new Database(location, { readonly: true });
    try {
      return db.prepare(sql.replace(/\$\d+/g, '?')).all(...params) as R[];
    } finally {
      db.close();
    }
  },
  async setSchemaVersion(location, v) {
    const db = new Database(location);
    db.pragma(`user_version = ${v}`);
    db.close();
  },
  async requestIds(location) {
    const db = new Database(location, { readonly: true });
    try {
      return db.prepare('SELECT request_id FROM requests ORDER BY request_id').pluck().all() as string[];
    } finally {
      db.close();
    }
  },
};

export const postgres: Engine = {
  name: 'postgres',
  fresh: () => pgLocation(),
  unreachable: () => {
    const u = new URL(PG_URL);
    u.pathname = '/clockledger_no_such_db';
    return `${u.toString()}?schema=${freshSchema()}`;
  },
  async open(location, opts) {
    const s = await openPgEventStore(location, opts);
    opened.push(s);
    return s;
  },
  async exec(location, sql, params) {
    return (await pgExec(location, sql, params)).rowCount ?? 0;
  },
  async query<R>(location: string, sql: string, params?: unknown[]) {
    return (await pgExec(location, sql, params)).rows as R[];
  },
  async setSchemaVersion(location, v) {
    await pgExec(location, 'UPDATE schema_version SET version = $1', [v]);
  },
  async requestIds(location) {
    return (await pgExec<{ id: string }>(location, 'SELECT request_id AS id FROM requests ORDER BY request_id')).rows.map((r) => r.id);
  },
};

export const ENGINES: Engine[] = [sqlite, postgres];
