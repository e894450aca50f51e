// The PostgreSQL engine under real concurrency: 2, 4 and 8 writer processes at once; a writer
// killed inside its transaction; connections dropped under a commit; transactions that fail.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../store/index.js';
import { openPgEventStore, type PgEventStore } from '../../store/postgres-event-store.js';
import { freshSchema, PG_URL, pgLocation } from './engines.js';
import { cleanup, ev, runFixture, tempDir } from './helpers.js';

const stores: PgEventStore[] = [];
async function open(url: string, opts?: Parameters<typeof openPgEventStore>[1]): Promise<PgEventStore> {
  const s = await openPgEventStore(url, opts);
  stores.push(s);
  return s;
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  cleanup();
});

async function sql<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<R[]> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

describe('PostgreSQL: concurrent writer processes', () => {
  it.each([2, 4, 8])(
    '%i processes × 30 commits (a shared stream and their own): nothing lost or doubled, contiguous, chain intact',
    async (children) => {
      const PER = 30;
      const url = pgLocation(); // not created yet: the children race to create and migrate it
      const goFile = join(tempDir(), 'go');
      let ready = 0;
      const results = await Promise.all(
        Array.from({ length: children }, (_, i) =>
          runFixture('pg-appender.mjs', [url, String(i), String(PER), goFile], {
            timeoutMs: 120_000,
            onLine: (line) => {
              if (line === 'ready' && ++ready === children) writeFileSync(goFile, 'go');
            },
          }),
        ),
      );
      expect(results.map((r) => ({ code: r.code, stderr: r.stderr }))).toEqual(results.map(() => ({ code: 0, stderr: '' })));
      const summaries = results.map((r) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { duplicates: number; conflicts: number });
      expect(summaries.map((x) => x.duplicates)).toEqual(results.map(() => PER / 10));

      const s = await open(url);
      const total = children * PER * 2;
      expect(await s.lastPosition()).toBe(total);
      const events = await s.read();
      expect(events.map((e) => e.position)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      const shared = events.filter((e) => e.streamId === 'shared-1');
      expect(shared.map((e) => e.version)).toEqual(Array.from({ length: children * PER }, (_, i) => i + 1));
      const seen = new Set(shared.map((e) => JSON.stringify(e.data)));
      expect(seen.size).toBe(children * PER);
      for (let c = 0; c < children; c++) {
        expect(await s.streamVersion(`own-${c}`)).toBe(PER);
        expect((await s.findRequest(`child-${c}-seq-${PER - 1}`))?.response).toMatchObject({ positions: [expect.any(Number), expect.any(Number)] });
      }
      expect(await s.countCategory('own')).toBe(children);
      expect(await s.verify()).toMatchObject({ intact: true, checked: total, head: { position: total } });
    },
    150_000,
  );

  it('a writer killed inside its transaction leaves nothing, and its lock goes with it', async () => {
    const url = pgLocation();
    const s = await open(url);
    await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('a', 1), ev('b', 2)] }]);
    const r = await runFixture('pg-txn-crash.mjs', [url, '500'], {
      timeoutMs: 30_000,
      onLine: (line, child) => {
        if (line === 'inside') child.kill('SIGKILL');
      },
    });
    expect(r.signal).toBe('SIGKILL');
    expect(r.stdout).toBe('inside\n');
    // the next writer gets the append lock (the server ends the dead session) and goes on at 3
    const next = await s.commit([{ streamId: 'vm-1', expectedVersion: 2, events: [ev('c', 3)] }]);
    expect(next.written[0]!.position).toBe(3);
    expect(await s.findRequest('killed')).toBeUndefined();
    expect(await s.streams()).toEqual(['vm-1']);
    expect(await s.verify()).toMatchObject({ intact: true, checked: 3, head: { position: 3 } });
  });
});

describe('PostgreSQL: dropped connections and failed transactions', () => {
  /** end this test's connections that sit inside a transaction, as a server restart or a network cut would */
  const dropper = (app: string) => async () => {
    const killed = await sql<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'",
      [app],
    );
    expect(killed.map((k) => k.ok)).toEqual([true]);
  };

  it('a connection lost inside a commit with a request id is retried: written once, chain intact', async () => {
    const app = `drop_${freshSchema()}`;
    const url = `${PG_URL}?schema=${freshSchema()}&application_name=${app}`;
    const s = await open(url);
    await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('a', 1)] }]);
    let calls = 0;
    const drop = dropper(app);
    const r = await s.commit([{ streamId: 'vm-1', expectedVersion: 1, events: [ev('b', 2), ev('c', 3)] }], {
      requestId: 'r1',
      response: (w) => w.map((x) => x.position),
      alsoWrite: async () => {
        if (calls++ === 0) await drop();
      },
    });
    expect(calls).toBe(2);
    expect(r).toEqual({
      duplicate: false,
      written: [
        { position: 2, streamId: 'vm-1', version: 2, type: 'b' },
        { position: 3, streamId: 'vm-1', version: 3, type: 'c' },
      ],
      response: [2, 3],
    });
    expect(await s.verify()).toMatchObject({ intact: true, checked: 3, head: { position: 3 } });
    expect(await s.findRequest('r1')).toEqual({ response: [2, 3] });
  });

  it('without retries, a lost connection is reported as io with connectionLost, and nothing is written', async () => {
    const app = `drop_${freshSchema()}`;
    const url = `${PG_URL}?schema=${freshSchema()}&application_name=${app}`;
    const s = await open(url, { retries: 0 });
    await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('a', 1)] }]);
    const drop = dropper(app);
    const attempt = s.commit([{ streamId: 'vm-1', expectedVersion: 1, events: [ev('b', 2)] }], {
      alsoWrite: async () => {
        await drop();
        await s.positionOfVersion('vm-1', 2); // a statement of the transaction, before COMMIT: it finds the connection gone
      },
    });
    await expect(attempt).rejects.toBeInstanceOf(StoreError);
    await expect(attempt).rejects.toMatchObject({ code: 'io', details: { connectionLost: true, outcome: 'not_committed', attempts: 1 } });
    expect(await s.lastPosition()).toBe(1);
    // the pool dropped the dead connection: the store goes on
    const next = await s.commit([{ streamId: 'vm-1', expectedVersion: 1, events: [ev('b', 2)] }]);
    expect(next.written[0]!.position).toBe(2);
  });

  it('a failing transaction writes nothing; a failing nested one rolls back alone', async () => {
    const s = await open(pgLocation());
    await expect(
      s.transaction(async () => {
        await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('a', 1)] }]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await s.lastPosition()).toBe(0);
    const n = await s.transaction(async () => {
      await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('a', 1)] }]);
      await expect(
        s.transaction(async () => {
          await s.commit([{ streamId: 'vm-2', expectedVersion: 0, events: [ev('b', 2)] }]);
          await s.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('late', 2)] }]);
        }),
      ).rejects.toMatchObject({ code: 'conflict' });
      await s.commit([{ streamId: 'vm-3', expectedVersion: 0, events: [ev('c', 3)] }]);
      return s.lastPosition();
    });
    expect(n).toBe(2);
    expect(await s.streams()).toEqual(['vm-1', 'vm-3']);
    expect(await s.countCategory('vm')).toBe(2);
    expect(await s.verify()).toMatchObject({ intact: true, checked: 2, head: { position: 2 } });
  });

  it('URLs: postgresql:// too, ?schema= checked, the password kept out of path', async () => {
    const s = await open(`${PG_URL.replace('postgres://postgres@', 'postgresql://postgres:secret@')}?schema=${freshSchema()}`);
    expect(s.path).not.toContain('secret');
    expect(s.path).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres\?schema=t\d+_\d+$/);
    await expect(openPgEventStore(`${PG_URL}?schema=Bad-Name`)).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(openPgEventStore('postgres://postgres@127.0.0.1:1/postgres')).rejects.toMatchObject({ code: 'io', details: { connectionLost: true } });
  });
});
