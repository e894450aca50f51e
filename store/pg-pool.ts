// PostgreSQL ledger URLs and their connection pools. postgres:// and postgresql:// URLs name a
// database; ?schema= names the schema the ledger's tables live in (default clockledger). Stores
// opened on one database share a pool, kept while any of them is open: a long-lived process (a
// warm Lambda container keeping its store) reuses its connections across invocations.
import pg from 'pg';
import type { PgTarget } from './pg-url.js';

const pools = new Map<string, { pool: pg.Pool; refs: number }>();

export function acquirePool(t: PgTarget): pg.Pool {
  let p = pools.get(t.connectionString);
  if (!p) {
    const pool = new pg.Pool({ connectionString: t.connectionString, max: 10, application_name: 'clockledger' });
    // an idle connection the server closed: the pool drops it; the next query reports its own error
    pool.on('error', () => undefined);
    pools.set(t.connectionString, (p = { pool, refs: 0 }));
  }
  p.refs++;
  return p.pool;
}

/** The pools open in this process, by connection URL (without its password): what a warm process holds. */
export function openPools(): { url: string; pool: pg.Pool; stores: number }[] {
  return [...pools].map(([cs, p]) => {
    const u = new URL(cs);
    if (u.password) u.password = '';
    return { url: u.toString(), pool: p.pool, stores: p.refs };
  });
}

export async function releasePool(t: PgTarget): Promise<void> {
  const p = pools.get(t.connectionString);
  if (!p) return;
  if (--p.refs > 0) return;
  pools.delete(t.connectionString);
  await p.pool.end();
}
