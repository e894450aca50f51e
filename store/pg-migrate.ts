// Schema migrations for the PostgreSQL engine: migrations/pg/NNN_name.sql applied in order in the
// ledger's schema, its version kept in that schema's schema_version table (what PRAGMA
// user_version is on SQLite). Creating and migrating run in one transaction under an advisory lock
// on the schema's name, so processes opening one new log at once create it once. A schema written
// by a newer clockledger is refused, never downgraded.
import type pg from 'pg';
import { StoreError } from './errors.js';
import { loadMigrationFiles, type Migration } from './sql-shared.js';

/** advisory lock class ids ('clkm', 'clka'): one lock per schema for migrating, one for appending */
const MIGRATE_LOCK = 0x636c6b6d;
export const APPEND_LOCK = 0x636c6b61;

/** The PostgreSQL migrations, numbered 1..N without gaps. */
function loadPgMigrations(): Migration[] {
  return loadMigrationFiles('pg');
}

export function latestPgSchemaVersion(): number {
  return loadPgMigrations().length;
}

/** A schema name as an SQL identifier (names are checked when the URL is parsed). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function tooNew(v: number): StoreError {
  const latest = latestPgSchemaVersion();
  return new StoreError('schema_too_new', `database schema version ${v} is newer than this clockledger understands (${latest}); upgrade clockledger`, {
    databaseVersion: v,
    supportedVersion: latest,
  });
}

/** The schema's version: 0 when the schema or its version table does not exist. */
export async function pgSchemaVersion(client: pg.ClientBase, schema: string): Promise<number> {
  const t = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${ident(schema)}.schema_version`]);
  if (!t.rows[0]?.t) return 0;
  const r = await client.query<{ version: number }>(`SELECT version FROM ${ident(schema)}.schema_version`);
  return r.rows[0]?.version ?? 0;
}

/** Bring the schema to `target` (default: latest), creating it if need be. Returns the versions applied. */
export async function migratePg(client: pg.ClientBase, schema: string, target = latestPgSchemaVersion()): Promise<number[]> {
  // the common case, an up-to-date schema, without a write transaction
  const seen = await pgSchemaVersion(client, schema);
  if (seen > latestPgSchemaVersion()) throw tooNew(seen);
  if (seen >= target) return [];
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK}, hashtext($1))`, [schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
    await client.query(`SET LOCAL search_path TO ${ident(schema)}`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    // re-read under the lock: another process may have migrated meanwhile
    const current = await pgSchemaVersion(client, schema);
    if (current > latestPgSchemaVersion()) throw tooNew(current);
    for (const m of loadPgMigrations()) {
      if (m.version <= current || m.version > target) continue;
      await client.query(m.sql);
      applied.push(m.version);
    }
    if (applied.length) {
      await client.query('DELETE FROM schema_version');
      await client.query('INSERT INTO schema_version (version) VALUES ($1)', [applied.at(-1)]);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
  return applied;
}
