// A reader's view loads a PostgreSQL ledger page by page through one prepared statement. Its plan
// must stay an index range scan once PostgreSQL switches to the statement's generic plan, or every
// page scans and sorts the whole table (a cold load quadratic in the log).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ident } from '../../store/pg-migrate.js';
import { openPgEventStore, rowsAfterSql } from '../../store/postgres-event-store.js';
import { freshSchema, pgLocation, PG_URL } from './engines.js';

const schema = freshSchema();
const c = new pg.Client({ connectionString: PG_URL });

beforeAll(async () => {
  await (await openPgEventStore(pgLocation(schema))).close();
  await c.connect();
  // a fleet-sized table (only its statistics matter here)
  await c.query(`INSERT INTO ${ident(schema)}.events (position, stream_id, version, type, schema_version, time, data, metadata, hash)
    SELECT g, 'vm-' || (g % 500), g / 500 + 1, 'E', 1, g, '{}', '{}', 'h' FROM generate_series(1, 200000) g`);
  await c.query(`ANALYZE ${ident(schema)}.events`);
});
afterAll(async () => {
  await c.query(`DROP SCHEMA ${ident(schema)} CASCADE`);
  await c.end();
});

describe('the page query of a reader (rowsAfter)', () => {
  it('scans a range of the primary key under its generic plan, with no sort and no sequential scan', async () => {
    await c.query('SET plan_cache_mode = force_generic_plan');
    await c.query(`PREPARE rows_after(bigint, bigint) AS ${rowsAfterSql(ident(schema))}`);
    const plan = (await c.query<{ 'QUERY PLAN': string }>('EXPLAIN EXECUTE rows_after(150000, 5000)')).rows.map((r) => r['QUERY PLAN']).join('\n');
    await c.query('DEALLOCATE rows_after');
    expect(plan).toMatch(/Index Scan using events_pkey/);
    expect(plan).not.toMatch(/Seq Scan|Sort/);
  });

  it('returns exactly the page after the position', async () => {
    const r = await c.query<{ position: number }>(rowsAfterSql(ident(schema)), [199_998, 5000]);
    expect(r.rows.map((x) => x.position)).toEqual([199_999, 200_000]);
    const page = await c.query<{ position: number }>(rowsAfterSql(ident(schema)), [10, 3]);
    expect(page.rows.map((x) => x.position)).toEqual([11, 12, 13]);
  });
});
