// Schema migrations: migrations/NNN_name.sql applied in order under PRAGMA user_version,
// each in its own transaction. A database written by a newer schema is refused, never downgraded.
import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { registerResponseHash } from './request-check.js';
import { loadMigrationFiles, type Migration } from './sql-shared.js';

/** All migrations, numbered 1..N without gaps. */
export function loadMigrations(): Migration[] {
  return loadMigrationFiles('');
}

export function latestSchemaVersion(): number {
  return loadMigrations().length;
}

/** Bring the database to `target` (default: latest). Returns the versions applied. */
export function migrate(db: Database.Database, target = latestSchemaVersion()): number[] {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = latestSchemaVersion();
  if (current > latest) {
    throw new StoreError('schema_too_new', `database schema version ${current} is newer than this clockledger understands (${latest}); upgrade clockledger`, {
      databaseVersion: current,
      supportedVersion: latest,
    });
  }
  const applied: number[] = [];
  // (migration 007 computes the response hashes of the requests already stored)
  registerResponseHash(db);
  for (const m of loadMigrations()) {
    if (m.version <= current || m.version > target) continue;
    db.transaction(() => {
      // Re-check under the write lock: another process may have migrated meanwhile.
      if ((db.pragma('user_version', { simple: true }) as number) >= m.version) return;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
      applied.push(m.version);
    }).immediate();
  }
  return applied;
}
