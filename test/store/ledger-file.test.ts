// What a file is, judged from one snapshot: a writer that creates and migrates the ledger between
// the checker's reads of user_version and of the tables must not make the file look foreign.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { inspectLedger } from '../../store/ledger-file.js';
import { latestSchemaVersion } from '../../store/migrate.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { cleanup, tempDbPath } from './helpers.js';

afterEach(cleanup);

describe('inspectLedger', () => {
  it('reads user_version and the tables in one snapshot, while another connection creates the ledger', () => {
    const path = tempDbPath();
    // a blank file in WAL mode, as a first writer leaves it before its migrations commit
    const first = new Database(path);
    first.pragma('journal_mode = WAL');
    first.close();

    const db = new Database(path);
    const pragma = db.pragma.bind(db);
    let raced = false;
    // right after this connection has read user_version, another process creates the whole ledger
    db.pragma = ((source: string, options?: Database.PragmaOptions) => {
      const result = pragma(source, options);
      if (source === 'user_version' && !raced) {
        raced = true;
        openEventStore(path, { busyTimeoutMs: 1000 }).close();
      }
      return result;
    }) as typeof db.pragma;

    const found = inspectLedger(db, path);
    expect(raced).toBe(true);
    // either view is consistent: the blank file it was, or the ledger it became; never "foreign"
    expect([{ kind: 'blank' }, { kind: 'ledger', version: latestSchemaVersion() }]).toContainEqual(found);
    db.close();
  });
});
