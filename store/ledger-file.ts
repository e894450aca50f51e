// What a file must be before the store touches it: a clockledger ledger (or, for a writer, nothing
// yet), checked with reads only, so a foreign or damaged file is refused and left byte-identical.
import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { latestSchemaVersion } from './migrate.js';

/** The tables each schema version has (the migration that creates a table, and every later one). */
const TABLES_SINCE: [table: string, version: number][] = [
  ['events', 1],
  ['requests', 2],
  ['snapshots', 3],
  ['streams', 4],
  ['stream_categories', 6],
];

type LedgerKind = { kind: 'blank' } | { kind: 'ledger'; version: number };

/**
 * Classify an open database with reads only: 'blank' (no schema at all: a new or 0-byte file),
 * or a ledger at some schema version. Anything else is refused: another application's database
 * (not_a_ledger), a newer clockledger's (schema_too_new), a damaged one (corrupt).
 */
export function inspectLedger(db: Database.Database, path: string): LedgerKind {
  // one read transaction: both reads from one snapshot, so a writer creating and migrating the
  // file between them (several processes opening a new ledger at once) cannot make it look foreign
  const { version, tables } = db.transaction(() => ({
    version: db.pragma('user_version', { simple: true }) as number,
    tables: new Set(db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").pluck().all() as string[]),
  }))();
  const latest = latestSchemaVersion();
  if (version === 0) {
    if (tables.size === 0) return { kind: 'blank' };
    throw new StoreError(
      'not_a_ledger',
      `${path} is an SQLite database of another application (tables ${[...tables].sort().slice(0, 5).join(', ')}), not a clockledger ledger`,
      {
        tables: [...tables].sort(),
      },
    );
  }
  if (version > latest) {
    // (whatever else it holds: a newer clockledger may have reshaped everything)
    throw new StoreError('schema_too_new', `database schema version ${version} is newer than this clockledger understands (${latest}); upgrade clockledger`, {
      databaseVersion: version,
      supportedVersion: latest,
    });
  }
  const missing = TABLES_SINCE.filter(([t, v]) => v <= version && !tables.has(t)).map(([t]) => t);
  if (missing.length) {
    throw new StoreError('not_a_ledger', `${path} is not a clockledger ledger: user_version ${version} but no ${missing.join(', ')} table`, { missing });
  }
  return { kind: 'ledger', version };
}

/** The category of a stream id as SQL over a column (bytes up to the first '-'; see 006). */
export const CATEGORY_SQL = (col: string) =>
  `CASE WHEN instr(CAST(${col} AS BLOB), X'2D') > 0 THEN CAST(substr(CAST(${col} AS BLOB), 1, instr(CAST(${col} AS BLOB), X'2D') - 1) AS TEXT) ELSE ${col} END`;

/**
 * Each stream's head (stream_id, version, last_position, last_type, wake_at) from an events table:
 * the wake instant is the one the head event records (metadata.wakeAt), else none.
 */
export const STREAM_HEADS_SQL = (events: string) =>
  `SELECT e.stream_id, e.version, e.position AS last_position, e.type AS last_type,
     CASE WHEN json_valid(e.metadata) AND json_type(e.metadata, '$.wakeAt') = 'text' THEN CAST(json_extract(e.metadata, '$.wakeAt') AS INTEGER) END AS wake_at
   FROM ${events} e JOIN (SELECT stream_id, MAX(version) AS v FROM ${events} GROUP BY stream_id) m ON m.stream_id = e.stream_id AND m.v = e.version`;

/**
 * A read-only connection to a ledger with an older schema: temporary views (in the connection's
 * temp schema, never in the file) present the tables as the migrations would have converted them,
 * so reads and verify work without writing. The request check columns are computed the way
 * migration 007 computes them for existing rows, their numbers as 009 gives them (by rowid); the
 * snapshots, unbound before 010 (which drops them), are not read.
 */
export function viewOlderSchema(db: Database.Database, version: number): void {
  if (version < 2) {
    db.exec(`CREATE TEMP TABLE requests (request_id TEXT PRIMARY KEY, handler TEXT NOT NULL, first_position INTEGER, last_position INTEGER,
      response TEXT NOT NULL, fingerprint TEXT, response_hash TEXT, seq INTEGER)`);
  } else if (version < 7) {
    db.exec(`CREATE TEMP VIEW requests AS SELECT request_id, handler, first_position, last_position, response, NULL AS fingerprint,
      clockledger_response_hash(request_id, handler, NULL, first_position, last_position,
        (SELECT hash FROM main.events WHERE position = r.last_position), response) AS response_hash,
      ROW_NUMBER() OVER (ORDER BY r.rowid) AS seq
      FROM main.requests r`);
  } else if (version < 9) {
    db.exec(`CREATE TEMP VIEW requests AS SELECT request_id, handler, first_position, last_position, response, fingerprint, response_hash,
      ROW_NUMBER() OVER (ORDER BY r.rowid) AS seq FROM main.requests r`);
  }
  if (version < 10) {
    db.exec(`CREATE TEMP TABLE snapshots (stream_id TEXT NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL, code_version TEXT NOT NULL,
      state BLOB NOT NULL, chain_hash TEXT, binding TEXT, PRIMARY KEY (stream_id, version, code_version))`);
  }
  if (version < 4) db.exec(`CREATE TEMP VIEW streams AS ${STREAM_HEADS_SQL('main.events')}`);
  else if (version < 5) db.exec('CREATE TEMP VIEW streams AS SELECT stream_id, version, last_position, last_type, NULL AS wake_at FROM main.streams');
  if (version < 6)
    db.exec(`CREATE TEMP VIEW stream_categories AS SELECT ${CATEGORY_SQL('stream_id')} AS category, COUNT(*) AS streams FROM streams GROUP BY 1`);
}
