// PostgreSQL schema migrations: pg/002 adds the request checks and computes the response hash of
// every request already stored with the same function the store uses (store/request-check.ts), as
// SQLite's 007 does; a read-only open of a schema at version 1 reads it unconverted.
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { latestPgSchemaVersion } from '../../store/pg-migrate.js';
import { responseHash } from '../../store/request-check.js';
import { closeOpened, pgLocation, postgres, freshSchema, PG_URL } from './engines.js';
import { ev } from './helpers.js';

afterEach(closeOpened);

async function query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

describe('PostgreSQL migration pg/002 (request checks)', () => {
  it("computes the stored requests' response hashes as the store does; version 1 is read as it is when read-only", async () => {
    const schema = freshSchema();
    const loc = pgLocation(schema);
    const s = await postgres.open(loc);
    await s.commit([{ streamId: 'vm-a', expectedVersion: 0, events: [ev('a1', 10), ev('a2', 20)] }], {
      requestId: 'req-é',
      handler: 'h',
      response: (w) => ({ ok: w.length, text: 'zwölf\n€' }),
    });
    await s.commit([], { requestId: 'req-none', handler: 'h2', response: () => null });
    await s.close();
    const h2 = (await query<{ hash: string }>(`SELECT hash FROM "${schema}".events WHERE position = 2`))[0]!.hash;
    const want = {
      'req-none': responseHash({
        requestId: 'req-none',
        handler: 'h2',
        fingerprint: null,
        firstPosition: null,
        lastPosition: null,
        lastHash: null,
        response: 'null',
      }),
      'req-é': responseHash({
        requestId: 'req-é',
        handler: 'h',
        fingerprint: null,
        firstPosition: 1,
        lastPosition: 2,
        lastHash: h2,
        response: '{"ok":2,"text":"zwölf\\n€"}',
      }),
    };
    const stored = async () =>
      Object.fromEntries(
        (await query<{ id: string; h: string }>(`SELECT request_id AS id, response_hash AS h FROM "${schema}".requests ORDER BY 1`)).map((r) => [r.id, r.h]),
      );
    expect(await stored()).toEqual(want);
    // back to version 1: the columns 002 and 004 added, the indexes 003 and 004 added and the columns 005 added are gone
    await query(`ALTER TABLE "${schema}".requests DROP COLUMN fingerprint, DROP COLUMN response_hash, DROP COLUMN seq`);
    await query(`DROP INDEX "${schema}".events_by_stream_position, "${schema}".events_by_request`);
    await query(`ALTER TABLE "${schema}".snapshots DROP COLUMN chain_hash, DROP COLUMN binding`);
    await query(`UPDATE "${schema}".schema_version SET version = 1`);

    const r = await postgres.open(loc, { readonly: true });
    expect(await r.findRequest('req-é', 'fp')).toEqual({ response: { ok: 2, text: 'zwölf\n€' } });
    expect(await r.verify()).toMatchObject({ intact: true, checked: 2 });
    expect((await query<{ version: number }>(`SELECT version FROM "${schema}".schema_version`))[0]!.version).toBe(1);
    await r.close();

    const w = await postgres.open(loc);
    expect((await query<{ version: number }>(`SELECT version FROM "${schema}".schema_version`))[0]!.version).toBe(latestPgSchemaVersion());
    expect(await stored()).toEqual(want);
    expect(await w.verify()).toMatchObject({ intact: true, checked: 2 });
    expect(await w.commit([], { requestId: 'req-é', fingerprint: 'any' })).toMatchObject({ duplicate: true, response: { ok: 2, text: 'zwölf\n€' } });
  });

  it('a read-only open of a schema that is no ledger is not_a_ledger, and leaves it as it was', async () => {
    const schema = freshSchema();
    await query(`CREATE SCHEMA "${schema}"`);
    await query(`CREATE TABLE "${schema}".other (x int)`);
    await expect(postgres.open(pgLocation(schema), { readonly: true })).rejects.toMatchObject({ code: 'not_a_ledger' });
    expect(await query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, [schema])).toEqual([{ table_name: 'other' }]);
  });
});
