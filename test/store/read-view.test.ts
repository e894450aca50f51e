// The read view (store/read-view.ts) answers every read as the SQLite store does over the same
// events: a PostgreSQL ledger and a SQLite one given the same commits, the view of the first
// against the second, query by query; caught up incrementally; loaded again when the ledger it
// held was replaced; forked into a SQLite copy with the same chain.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openPgEventStore, type PgEventStore } from '../../store/postgres-event-store.js';
import { ReadView } from '../../store/read-view.js';
import { byteOrder } from '../../store/sql-shared.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import type { AppendBatch, EventStore } from '../../store/types.js';
import { pgLocation } from './engines.js';
import { cleanup, tempDbPath, tempDir } from './helpers.js';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  cleanup();
});

/** Commits with streams of several categories, instants that go back once, wake instants, and a stream id past the BMP. */
const COMMITS: AppendBatch[][] = [
  [{ streamId: 'host-a', expectedVersion: 0, events: [{ type: 'HostCreated', time: 0n, data: { id: 'a' } }] }],
  [
    {
      streamId: 'vm-b',
      expectedVersion: 0,
      events: [
        { type: 'VmCreated', time: 5n, data: { n: 1 } },
        { type: 'Ran', time: 5n, data: { n: 2 } },
      ],
      wakeAt: 100n,
    },
    { streamId: 'vm-a', expectedVersion: 0, events: [{ type: 'VmCreated', time: 7n, data: { n: 3 } }], wakeAt: 50n },
  ],
  [
    {
      streamId: 'migration-m1',
      expectedVersion: 0,
      events: [
        { type: 'Started', time: 9n, data: {} },
        { type: 'Done', time: 12n, data: {} },
      ],
    },
  ],
  // an instant earlier than the one before (a fork's clock, an import): positionAtTime cannot bisect
  [{ streamId: 'vm-b', expectedVersion: 2, events: [{ type: 'Ran', time: 8n, data: { n: 4 } }], wakeAt: null }],
  [{ streamId: 'vm-\u{1F600}', expectedVersion: 0, events: [{ type: 'VmCreated', time: 20n, data: { emoji: true }, metadata: { handler: 'x' } }] }],
  [{ streamId: 'vm-\uFFFD', expectedVersion: 0, events: [{ type: 'VmCreated', time: 20n, data: {} }] }],
  [{ streamId: 'ledger', expectedVersion: 0, events: [{ type: 'TimeAdvanced', time: 30n, data: { now: '30' } }] }],
];

async function both(commits = COMMITS): Promise<{ sqlite: EventStore; pg: PgEventStore; view: ReadView }> {
  const sqlite = openEventStore(tempDbPath());
  const pg = await openPgEventStore(pgLocation());
  open.push(sqlite, pg);
  for (const c of commits) {
    sqlite.commit(c);
    await pg.commit(c);
  }
  return { sqlite, pg, view: await new ReadView(pg).catchUp() };
}

function sameAnswers(view: EventStore, sqlite: EventStore): void {
  const last = sqlite.lastPosition();
  expect(view.lastPosition()).toBe(last);
  expect(view.read()).toEqual(sqlite.read());
  const reads = [
    { streamId: 'vm-b' },
    { streamId: 'vm-b', fromPosition: 3, toPosition: 7 },
    { streamPrefix: 'vm-' },
    { streamPrefix: 'vm-', fromPosition: 3, limit: 2 },
    { toTime: 8n },
    { toTime: -5n },
    { fromPosition: 4, toPosition: 4 },
    { streamId: 'nope' },
    { limit: 0 },
  ];
  for (const o of reads) {
    expect(
      view.read(o),
      JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
    ).toEqual(sqlite.read(o));
    expect([...view.scan({ ...o, withoutMetadata: true })]).toEqual([...sqlite.scan({ ...o, withoutMetadata: true })]);
    expect([...view.scan(o)]).toEqual([...sqlite.scan(o)]);
  }
  for (const prefix of ['', 'vm-', 'migration-', 'x']) expect(view.streams(prefix), prefix).toEqual(sqlite.streams(prefix));
  expect(view.openStreams('', ['Done'])).toEqual(sqlite.openStreams('', ['Done']));
  for (const id of ['vm-b', 'vm-a', 'host-a', 'nope']) {
    expect(view.streamVersion(id)).toBe(sqlite.streamVersion(id));
    for (let p = 0; p <= last + 1; p++) expect(view.streamVersion(id, p), `${id}@${p}`).toBe(sqlite.streamVersion(id, p));
    for (let v = 0; v <= 4; v++) expect(view.positionOfVersion(id, v)).toBe(sqlite.positionOfVersion(id, v));
  }
  for (const t of [-1n, 0n, 5n, 6n, 8n, 9n, 12n, 20n, 1000n, 1n << 70n]) expect(view.positionAtTime(t), `at ${t}`).toBe(sqlite.positionAtTime(t));
  for (const t of [0n, 50n, 99n, 100n, 1n << 70n]) for (const prefix of ['', 'vm-']) expect(view.dueStreams(t, prefix)).toEqual(sqlite.dueStreams(t, prefix));
  for (const c of ['vm', 'host', 'migration', 'ledger', 'none']) expect(view.countCategory(c), c).toBe(sqlite.countCategory(c));
}

describe('ReadView', () => {
  it('answers every read as the SQLite store does over the same events (instants going back once)', async () => {
    const { sqlite, view } = await both();
    sameAnswers(view, sqlite);
    // stream ids in UTF-8 byte order, as SQLite orders TEXT: U+FFFD before U+1F600 (UTF-16 order would differ)
    expect(view.streams('vm-')).toEqual(['vm-a', 'vm-b', 'vm-\uFFFD', 'vm-\u{1F600}']);
    expect(['vm-\u{1F600}', 'vm-\uFFFD'].sort(byteOrder)).toEqual(['vm-\uFFFD', 'vm-\u{1F600}']);
  });

  it('with instants in order, the same answers (positionAtTime bisects)', async () => {
    const { sqlite, view } = await both(COMMITS.filter((_, i) => i !== 3));
    sameAnswers(view, sqlite);
    expect(view.positionAtTime(5n)).toBe(3);
  });

  it('catches up with what was appended since, and reloads a ledger replaced under the same name', async () => {
    const { sqlite, pg, view } = await both(COMMITS.slice(0, 3));
    const next: AppendBatch[] = [{ streamId: 'vm-a', expectedVersion: 1, events: [{ type: 'Ran', time: 40n, data: {} }] }];
    sqlite.commit(next);
    await pg.commit(next);
    expect(view.lastPosition()).toBe(6);
    await view.catchUp();
    sameAnswers(view, sqlite);
    expect(view.lastPosition()).toBe(7);
    // the schema dropped and made again with other events: the held rows no longer match
    const c = await openPgEventStore(pg.path);
    open.push(c);
    const { default: pgDriver } = await import('pg');
    const admin = new pgDriver.Client({ connectionString: process.env.CLOCKLEDGER_TEST_PG_URL });
    await admin.connect();
    const schema = new URL(pg.path).searchParams.get('schema')!;
    await admin.query(`TRUNCATE ${schema}.events, ${schema}.streams, ${schema}.stream_categories, ${schema}.requests`);
    await admin.end();
    const other = openEventStore(tempDbPath());
    open.push(other);
    const replaced: AppendBatch[] = [{ streamId: 'vm-z', expectedVersion: 0, events: [{ type: 'VmCreated', time: 1n, data: { z: 1 } }] }];
    other.commit(replaced);
    await c.commit(replaced);
    await view.catchUp();
    sameAnswers(view, other);
  });

  it('forks into a SQLite ledger with the same chain, and is read-only otherwise', async () => {
    const { sqlite, view } = await both();
    const target = join(tempDir(), 'copy.db');
    expect(view.fork(5, target)).toEqual({ events: 5 });
    const copy = openEventStore(target);
    open.push(copy);
    expect(copy.read()).toEqual(sqlite.read({ toPosition: 5 }));
    expect(copy.verify()).toMatchObject({ intact: true, head: { position: 5, hash: sqlite.read({ fromPosition: 5, toPosition: 5 })[0]!.hash } });
    expect(() => view.fork(3, target)).toThrow(/already exists/);
    // the same target checks as a SQLite ledger's fork: no in-memory database, no missing directory
    expect(() => view.fork(3, ':memory:')).toThrow(/is not a file path/);
    expect(() => view.fork(3, join(tempDir(), 'no-such-dir', 'copy.db'))).toThrow(/does not exist/);
    expect(() => view.commit([])).toThrow(/read-only view/);
    expect(() => view.verify()).toThrow(/read-only view/);
  });
});
