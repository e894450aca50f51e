// Commits chained by the server (migrations/pg/008): two PostgreSQL writers taking turns, so each
// one's guess of where the log ends is stale at every commit, write byte for byte the rows one
// SQLite writer writes for the same commits: events and their chain hashes, request rows (the
// response finished from its template, its hash, its number), snapshots and their bindings.
import { afterEach, describe, expect, it } from 'vitest';
import type { AsyncCommitOptions, AsyncEventStore } from '../../store/async-types.js';
import type { PgEventStore } from '../../store/postgres-event-store.js';
import type { AppendBatch } from '../../store/types.js';
import { closeOpened, postgres, sqlite, type Engine } from './engines.js';
import { ev } from './helpers.js';

afterEach(closeOpened);

type Step = { by: 0 | 1; batches: AppendBatch[]; opts?: AsyncCommitOptions };

const positions = (w: { position: number }[]) => w.map((x) => x.position);
const STEPS: Step[] = [
  {
    by: 0,
    batches: [{ streamId: 'vm-a', expectedVersion: 0, events: [ev('Boot', 1, { text: 'é ☃ 😀 "quoted" \\ back' })] }],
    // integer-like keys come first in JSON.stringify's order; a position nested and one plus a constant
    opts: {
      requestId: 'q1',
      fingerprint: 'f1',
      handler: 'guest',
      response: (w) => ({ zeta: 'z', 10: 'ten', 2: w[0]!.position, nested: [{ next: w.at(-1)!.position + 1, n: w.length }] }),
    },
  },
  {
    by: 1,
    batches: [{ streamId: 'vm-b', expectedVersion: 0, events: [ev('X', 2), ev('Y', 3, { n: '18446744073709551615' }), ev('Z', 4)] }],
    opts: { requestId: 'q2', handler: 'guest', response: positions },
  },
  {
    by: 0,
    batches: [{ streamId: 'vm-a', expectedVersion: 1, events: [ev('Tick', 5), ev('Tick', 6, {}, { correlationId: 'c-1' })], wakeAt: 5000n }],
    opts: { snapshots: [{ streamId: 'vm-a', version: 2, codeVersion: 'code-1', state: Buffer.from('state of vm-a at 2') }] },
  },
  {
    by: 1,
    batches: [
      { streamId: 'vm-b', expectedVersion: 3, events: [], wakeAt: 7000n },
      { streamId: 'ümlaut-strömé', expectedVersion: 0, events: [ev('Made', 7, { ключ: 'значение' })] },
    ],
    opts: { requestId: 'q3', handler: 'createVm' },
  },
  {
    by: 0,
    batches: [
      { streamId: 'vm-a', expectedVersion: 3, events: [ev('Step', 8)] },
      { streamId: 'vm-c', expectedVersion: 0, events: [ev('Step', 9), ev('Step', 10)] },
      { streamId: 'vm-a', expectedVersion: 4, events: [ev('Step', 11)] },
    ],
    opts: {
      requestId: 'q4',
      fingerprint: 'f4',
      handler: 'migrate',
      response: (w) => ({ first: w[0]!.position, last: w.at(-1)!.position, kept: 'position 1 stays', before: 1 }),
      snapshots: [{ streamId: 'vm-b', version: 3, codeVersion: 'code-1', state: Buffer.from([0, 1, 2, 255]) }],
    },
  },
  {
    by: 1,
    batches: [{ streamId: 'vm-a', expectedVersion: 5, events: [] }],
    opts: { requestId: 'q5', handler: 'guest', response: () => ({ nothing: true }) },
  },
];

const ROWS = {
  events: 'SELECT position, stream_id, version, type, schema_version, time, data, metadata, hash FROM events ORDER BY position',
  requests: 'SELECT request_id, handler, first_position, last_position, response, fingerprint, response_hash, seq FROM requests ORDER BY seq',
  snapshots: 'SELECT stream_id, version, position, code_version, chain_hash, binding FROM snapshots ORDER BY stream_id, version',
  streams: 'SELECT stream_id, version, last_position, last_type, wake_at FROM streams ORDER BY stream_id',
};

/** Every row of the ledger at location, each value as text (the engines type integers differently). */
async function rows(engine: Engine, location: string): Promise<Record<string, string[][]>> {
  const out: Record<string, string[][]> = {};
  for (const [table, sql] of Object.entries(ROWS)) {
    out[table] = (await engine.query<Record<string, unknown>>(location, sql)).map((r) => Object.values(r).map((v) => (v === null ? 'NULL' : String(v))));
  }
  return out;
}

async function run(writers: AsyncEventStore[]): Promise<unknown[]> {
  const answers: unknown[] = [];
  for (const s of STEPS) answers.push(await writers[s.by]!.commit(s.batches, s.opts));
  return answers;
}

describe('commits chained by the PostgreSQL server', () => {
  it('two writers taking turns write what one SQLite writer writes, byte for byte', async () => {
    const lite = sqlite.fresh();
    const liteAnswers = await run([await sqlite.open(lite), await sqlite.open(lite)]);
    const pg = postgres.fresh();
    const a = await postgres.open(pg);
    const b = await postgres.open(pg);
    const trips = () => (a as PgEventStore).roundTrips + (b as PgEventStore).roundTrips;
    const before = trips();
    const pgAnswers = await run([a, b]);
    // every commit one statement: none fell back to the commit under the lock
    expect(trips() - before).toBe(STEPS.length);
    expect(pgAnswers).toEqual(liteAnswers);
    const expected = await rows(sqlite, lite);
    expect(expected.events).toHaveLength(11);
    expect(expected.requests!.map((r) => r[4])).toEqual([
      '{"2":1,"10":"ten","zeta":"z","nested":[{"next":2,"n":1}]}',
      '[2,3,4]',
      'null',
      '{"first":8,"last":11,"kept":"position 1 stays","before":1}',
      '{"nothing":true}',
    ]);
    expect(await rows(postgres, pg)).toEqual(expected);
    expect(await a.verify()).toMatchObject({ intact: true, checked: 11 });
  });

  it('a stream another writer moved writes nothing through the chained statement, and is a conflict', async () => {
    const pg = postgres.fresh();
    const a = await postgres.open(pg);
    const b = await postgres.open(pg);
    await a.commit([{ streamId: 'vm-1', expectedVersion: 0, events: [ev('x', 1)] }], { requestId: 'r1', response: positions });
    await b.commit([{ streamId: 'vm-1', expectedVersion: 1, events: [ev('y', 2)] }], { requestId: 'r2', response: positions });
    await expect(a.commit([{ streamId: 'vm-1', expectedVersion: 1, events: [ev('z', 3)] }], { requestId: 'r3', response: positions })).rejects.toMatchObject({
      code: 'conflict',
    });
    expect(await postgres.requestIds(pg)).toEqual(['r1', 'r2']);
    expect(await a.verify()).toMatchObject({ intact: true, checked: 2 });
  });
});
