// The baseline table: the same columns and indexes as the event log, with nothing of ours on top.
import Database from 'better-sqlite3';

export function rawEventsDb(path: string): { db: Database.Database; insert: Database.Statement } {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1, time INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, hash TEXT NOT NULL,
    UNIQUE (stream_id, version)); CREATE INDEX events_by_time ON events (time, position);
    CREATE INDEX events_by_stream_position ON events (stream_id, position);`);
  return { db, insert: db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)') };
}
