// Schema migrations: migrations/NNN_name.sql applied in order under PRAGMA user_version,
// each in its own transaction. A database written by a newer schema is refused, never downgraded.
import type Database from 'better-sqlite3';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError } from './errors.js';
import { registerResponseHash } from './request-check.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations directory, from the sources (store/) or the build (dist/store/). */
function migrationsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const d of [join(here, '../migrations'), join(here, '../../migrations')]) if (existsSync(d)) return d;
  throw new StoreError('io', `migrations directory not found near ${here}`);
}

let cached: Migration[] | undefined;
/** All migrations, numbered 1..N without gaps. */
export function loadMigrations(): Migration[] {
  if (cached) return cached;
  const dir = migrationsDir();
  const list = readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .map((f) => ({ version: Number(f.split('_')[0]), name: f, sql: readFileSync(join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new StoreError('io', `migration ${m.name} is out of sequence (expected ${i + 1})`);
  });
  cached = list;
  return list;
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
