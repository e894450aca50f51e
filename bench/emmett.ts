// bench/emmett: clockledger's SQLite event store beside Emmett's (@event-driven-io/emmett-sqlite,
// a research peer), on the same workload in the same run: N generated events (bench/lib/generate)
// appended to their streams 10 per call under the expected stream version, then every stream
// read whole and the whole log scanned in order, pages of 1000. Four sides: clockledger; Emmett on
// one connection with clockledger's durability (WAL, synchronous NORMAL); Emmett as shipped (its
// pool's connection per call, synchronous FULL); raw better-sqlite3 on the same rows, columns and
// indexes (the floor any store on better-sqlite3 stands on). Each round starts with another side,
// on fresh files; the figures are the medians of the rounds.
//   npm run bench:emmett [-- N [rounds]]        (default 100,000 events, 3 rounds)
// The peer is installed on first use into bench/.peer/ (see bench/lib/peer.ts), not by npm ci.
import type Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { openEventStore } from '../store/sqlite-event-store.js';
import type { AppendBatch, EventStore, NewEvent } from '../store/types.js';
import { generateLog } from './lib/generate.js';
import { rawEventsDb } from './lib/raw.js';
import { ensurePeer, importPeer, peerVersion } from './lib/peer.js';
import { fmtRate, median, table } from './lib/report.js';
import { reportFigures } from './lib/summary.js';

const N = Number(process.argv[2] ?? process.env.N ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const PER_CALL = 10;
const PAGE = 1000;
const say = (s: string) => process.stderr.write(`${s}\n`);
const gc = () => (globalThis as { gc?: () => void }).gc?.();

// ---- the part of Emmett's API this bench uses, as its typings (dist/index.d.ts) declare it
interface EmmettConnection {
  close(): void;
  command(sql: string, values?: unknown[]): Promise<unknown>;
  querySingle<T>(sql: string, values?: unknown[]): Promise<T | null>;
}
interface EmmettEvent {
  type: string;
  data: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}
interface EmmettReadEvent extends EmmettEvent {
  metadata: Record<string, unknown> & { streamPosition: bigint; globalPosition: bigint };
}
interface EmmettStore {
  appendToStream(
    streamName: string,
    events: EmmettEvent[],
    options?: { expectedStreamVersion?: bigint },
  ): Promise<{ nextExpectedStreamVersion: bigint; lastEventGlobalPosition: bigint }>;
  readStream(streamName: string): Promise<{ currentStreamVersion: bigint; events: EmmettReadEvent[]; streamExists: boolean }>;
  schema: { migrate(): Promise<void> };
}
interface EmmettSqlite {
  sqliteConnection(options: { fileName: string }): EmmettConnection;
  getSQLiteEventStore(options: { fileName: string; connectionOptions?: { singleton: true; connection: EmmettConnection } }): EmmettStore;
  readMessagesBatch(
    db: EmmettConnection,
    options: { after: bigint; batchSize: number },
  ): Promise<{ currentGlobalPosition: bigint; messages: EmmettReadEvent[]; areEventsLeft: boolean }>;
}

/** Emmett's append calls retried after its SQLITE_BUSY (see emmettSide) */
const retried = { Emmett: 0, 'Emmett as shipped': 0 };

const installMs = ensurePeer(say);
const emmett = await importPeer<EmmettSqlite>('@event-driven-io/emmett-sqlite', 'dist/index.js');

// ---- the workload: each stream's events cut into calls of 10, in the order the 10th arrives
say(`generating ${N.toLocaleString()} events ...`);
interface Call {
  streamId: string;
  /** the stream's version before the call (0: new stream) */
  expected: number;
  events: NewEvent[];
}
const calls: Call[] = [];
{
  const pending = new Map<string, NewEvent[]>();
  const versions = new Map<string, number>();
  const cut = (streamId: string, events: NewEvent[]) => {
    const expected = versions.get(streamId) ?? 0;
    versions.set(streamId, expected + events.length);
    calls.push({ streamId, expected, events });
  };
  for (const { streamId, event } of generateLog(N)) {
    const p = pending.get(streamId) ?? [];
    p.push(event);
    pending.set(streamId, p);
    if (p.length === PER_CALL) cut(streamId, p), pending.delete(streamId);
  }
  for (const [streamId, p] of pending) cut(streamId, p);
}
const streamIds = [...new Set(calls.map((c) => c.streamId))];
// Emmett's events: the same type and data; our metadata and the event's instant (a column of
// ours, which Emmett has no place for) in its metadata
const emmettCalls = calls.map((c) => ({
  streamId: c.streamId,
  expected: BigInt(c.expected),
  events: c.events.map((e): EmmettEvent => ({ type: e.type, data: e.data as Record<string, unknown>, metadata: { ...e.metadata, time: e.time.toString() } })),
}));
const ourCalls = calls.map((c): AppendBatch => ({ streamId: c.streamId, expectedVersion: c.expected, events: c.events }));

interface Side {
  append(): Promise<number>;
  readStreams(): Promise<number>;
  scan(): Promise<number>;
  settings(): Promise<string>;
  close(): Promise<void>;
  /** the data of a stream's events, in order (to check the stores hold the same) */
  dataOf(streamId: string): Promise<unknown[]>;
}

const sqliteSettings = (db: Database.Database) =>
  `journal_mode ${db.pragma('journal_mode', { simple: true })}, synchronous ${db.pragma('synchronous', { simple: true })}, ` +
  `wal_autocheckpoint ${db.pragma('wal_autocheckpoint', { simple: true })}, SQLite ${db.prepare('SELECT sqlite_version()').pluck().get()}`;

function clockledger(path: string): Side {
  const store: EventStore = openEventStore(path);
  return {
    async append() {
      const t0 = performance.now();
      for (const b of ourCalls) store.commit([b]);
      return performance.now() - t0;
    },
    async readStreams() {
      const t0 = performance.now();
      let n = 0;
      for (const sid of streamIds) n += store.read({ streamId: sid }).length;
      if (n !== N) throw new Error(`clockledger: read ${n} events of ${N}`);
      return performance.now() - t0;
    },
    async scan() {
      const t0 = performance.now();
      let n = 0;
      for (let from = 1; ; from += PAGE) {
        const page = store.read({ fromPosition: from, limit: PAGE });
        n += page.length;
        if (page.length < PAGE) break;
      }
      if (n !== N) throw new Error(`clockledger: scanned ${n} events of ${N}`);
      return performance.now() - t0;
    },
    // (the store's connection is private; the bench reads what it set)
    settings: async () => sqliteSettings((store as unknown as { db: Database.Database }).db),
    close: async () => store.close(),
    dataOf: async (sid) => store.read({ streamId: sid }).map((e) => e.data),
  };
}

/**
 * Emmett's store. `shared`: one connection for the whole run (its pool's "singleton" option) with
 * the durability clockledger runs with; else as shipped: its pool opens and closes a connection
 * per call on a file (WAL, SQLite's default synchronous FULL: the WAL is synced at every commit).
 */
async function emmettSide(path: string, shared: boolean): Promise<Side> {
  let es: EmmettStore;
  let connection: EmmettConnection | null = null;
  if (shared) {
    connection = emmett.sqliteConnection({ fileName: path });
    await connection.command('PRAGMA synchronous = NORMAL');
    await connection.command('PRAGMA wal_autocheckpoint = 10000');
    es = emmett.getSQLiteEventStore({ fileName: path, connectionOptions: { singleton: true, connection } });
  } else {
    es = emmett.getSQLiteEventStore({ fileName: path });
  }
  await es.schema.migrate();
  // the batch read and the settings take a connection: the shared one, or one of their own
  const withConnection = async <T>(fn: (c: EmmettConnection) => Promise<T>): Promise<T> => {
    if (connection) return fn(connection);
    const c = emmett.sqliteConnection({ fileName: path });
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  };
  const name = shared ? 'Emmett' : 'Emmett as shipped';
  return {
    async append() {
      // Under load its COMMIT can run before the sqlite3 driver has finalized the statement of
      // the UPDATE … RETURNING before it (SQLITE_BUSY "SQL statements in progress"; the
      // transaction is rolled back and the error logged and thrown): the call is retried, as a
      // caller would, and counted.
      const log = console.log;
      console.log = () => {};
      try {
        const t0 = performance.now();
        for (const c of emmettCalls) {
          for (let attempt = 1; ; attempt++) {
            try {
              await es.appendToStream(c.streamId, c.events, { expectedStreamVersion: c.expected });
              break;
            } catch (e) {
              if ((e as { code?: string }).code !== 'SQLITE_BUSY' || attempt === 10) throw e;
              retried[name]++;
            }
          }
        }
        return performance.now() - t0;
      } finally {
        console.log = log;
      }
    },
    async readStreams() {
      const t0 = performance.now();
      let n = 0;
      for (const sid of streamIds) n += (await es.readStream(sid)).events.length;
      if (n !== N) throw new Error(`${name}: read ${n} events of ${N}`);
      return performance.now() - t0;
    },
    scan: () =>
      // its consumers' batch read, on one connection
      withConnection(async (c) => {
        const t0 = performance.now();
        let n = 0;
        let after = 0n;
        for (;;) {
          const page = await emmett.readMessagesBatch(c, { after, batchSize: PAGE });
          n += page.messages.length;
          after = page.currentGlobalPosition;
          if (!page.areEventsLeft) break;
        }
        if (n !== N) throw new Error(`${name}: scanned ${n} events of ${N}`);
        return performance.now() - t0;
      }),
    settings: () =>
      withConnection(async (c) => {
        const one = async (sql: string) => Object.values((await c.querySingle<Record<string, unknown>>(sql)) ?? {})[0];
        const sync = `${await one('PRAGMA synchronous')}${shared ? '' : " (a fresh connection's)"}`;
        return (
          `journal_mode ${await one('PRAGMA journal_mode')}, synchronous ${sync}, ` +
          `wal_autocheckpoint ${await one('PRAGMA wal_autocheckpoint')}, SQLite ${await one('SELECT sqlite_version()')}`
        );
      }),
    close: async () => connection?.close(),
    dataOf: async (sid) => (await es.readStream(sid)).events.map((e) => e.data),
  };
}

/**
 * The floor: raw better-sqlite3 on the event log's columns and indexes, the same rows and calls
 * (a transaction of 10 inserts with JSON.stringify; no version check, canonical JSON or hash
 * chain), and reads with JSON.parse of data and metadata.
 */
function rawSide(path: string): Side {
  const { db, insert } = rawEventsDb(path);
  db.pragma('wal_autocheckpoint = 10000');
  const byStream = db.prepare(
    'SELECT position, stream_id, version, type, schema_version, CAST(time AS TEXT) ' +
      'AS time, data, metadata, hash FROM events WHERE stream_id = ? ORDER BY position',
  );
  const page = db.prepare(
    'SELECT position, stream_id, version, type, schema_version, CAST(time AS TEXT) AS ' +
      'time, data, metadata, hash FROM events WHERE position >= ? ORDER BY position LIMIT ?',
  );
  type Row = {
    position: number;
    stream_id: string;
    version: number;
    type: string;
    schema_version: number;
    time: string;
    data: string;
    metadata: string;
    hash: string;
  };
  const decode = (r: Row) => ({
    position: r.position,
    streamId: r.stream_id,
    version: r.version,
    type: r.type,
    schemaVersion: r.schema_version,
    time: BigInt(r.time),
    data: JSON.parse(r.data) as unknown,
    metadata: JSON.parse(r.metadata) as unknown,
    hash: r.hash,
  });
  const hash = '0'.repeat(64);
  return {
    async append() {
      const t0 = performance.now();
      let position = 0;
      const write = db.transaction((c: Call) => {
        let v = c.expected;
        for (const e of c.events) insert.run(++position, c.streamId, ++v, e.type, e.time, JSON.stringify(e.data), JSON.stringify(e.metadata ?? {}), hash);
      });
      for (const c of calls) write.immediate(c);
      return performance.now() - t0;
    },
    async readStreams() {
      const t0 = performance.now();
      let n = 0;
      for (const sid of streamIds) n += (byStream.all(sid) as Row[]).map(decode).length;
      if (n !== N) throw new Error(`raw: read ${n} events of ${N}`);
      return performance.now() - t0;
    },
    async scan() {
      const t0 = performance.now();
      let n = 0;
      for (let from = 1; ; from += PAGE) {
        const rows = (page.all(from, PAGE) as Row[]).map(decode);
        n += rows.length;
        if (rows.length < PAGE) break;
      }
      if (n !== N) throw new Error(`raw: scanned ${n} events of ${N}`);
      return performance.now() - t0;
    },
    settings: async () => sqliteSettings(db),
    close: async () => void db.close(),
    dataOf: async (sid) => (byStream.all(sid) as Row[]).map((r) => decode(r).data),
  };
}

const SIDES = ['clockledger', 'Emmett', 'Emmett as shipped', 'raw'] as const;
type SideName = (typeof SIDES)[number];
const open = (name: SideName, path: string): Promise<Side> | Side =>
  name === 'clockledger'
    ? clockledger(path)
    : name === 'Emmett'
      ? emmettSide(path, true)
      : name === 'Emmett as shipped'
        ? emmettSide(path, false)
        : rawSide(path);
const PHASES = ['append', 'read', 'scan'] as const;
type Phase = (typeof PHASES)[number];
const figures = Object.fromEntries(SIDES.map((s) => [s, { append: [] as number[], read: [] as number[], scan: [] as number[] }])) as Record<
  SideName,
  Record<Phase, number[]>
>;
const settings = {} as Record<SideName, string>;

const dir = mkdtempSync(join(tmpdir(), 'clockledger-emmett-'));
try {
  say(`${calls.length.toLocaleString()} calls over ${streamIds.length} streams, ${ROUNDS} rounds ...`);
  for (let round = 0; round < ROUNDS; round++) {
    // each round starts with another side (rotating), on fresh files
    const order = SIDES.map((_, i) => SIDES[(i + round) % SIDES.length]!);
    const sides = new Map<SideName, Side>();
    for (const name of order) sides.set(name, await open(name, join(dir, `${name.replaceAll(' ', '-')}-${round}.db`)));
    for (const phase of PHASES) {
      for (const [name, side] of sides) {
        gc();
        const ms = await (phase === 'append' ? side.append() : phase === 'read' ? side.readStreams() : side.scan());
        figures[name][phase].push(ms);
      }
    }
    say(
      `  round ${round + 1} ` +
        `(ms, ${SIDES.join(' / ')}): ${PHASES.map((p) => `${p} ${SIDES.map((s) => figures[s][p].at(-1)!.toFixed(0)).join(' / ')}`).join(', ')}`,
    );
    if (round === 0) {
      // the stores hold the same data, stream by stream
      const ours = sides.get('clockledger')!;
      for (const sid of streamIds) {
        const want = await ours.dataOf(sid);
        for (const [name, side] of sides)
          if (!isDeepStrictEqual(await side.dataOf(sid), want)) throw new Error(`stream ${sid} differs between clockledger and ${name}`);
      }
      for (const [name, side] of sides) settings[name] = await side.settings();
    }
    for (const side of sides.values()) await side.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const rate = (name: SideName, phase: Phase) => (N / median(figures[name][phase])) * 1000;
const ratio = (a: SideName, b: SideName, phase: Phase) => rate(a, phase) / rate(b, phase);
const x = (r: number) => `${r.toFixed(1)}×`;
const row = (label: string, phase: Phase, target: number | null) => {
  const vsEmmett = ratio('clockledger', 'Emmett', phase);
  const vsShipped = ratio('clockledger', 'Emmett as shipped', phase);
  const met = (r: number) => (target === null ? '' : r >= target ? 'yes' : 'NO');
  return [
    label,
    fmtRate(rate('clockledger', phase)),
    fmtRate(rate('Emmett', phase)),
    x(vsEmmett),
    fmtRate(rate('Emmett as shipped', phase)),
    x(vsShipped),
    target === null ? '' : `≥ ${target}×`,
    target === null ? '' : `${met(vsEmmett)} / ${met(vsShipped)}`,
    fmtRate(rate('raw', phase)),
    x(ratio('raw', 'Emmett', phase)),
  ];
};
console.log(
  `bench/emmett: ${N.toLocaleString()} events, ${streamIds.length} streams, ${calls.length.toLocaleString()} appends of ≤ ${PER_CALL} ` +
    `events under the expected stream version; events/s, median of ${ROUNDS} rounds (sides alternated, fresh files each round)`,
);
console.log(
  `Emmett: @event-driven-io/emmett-sqlite ${peerVersion('@event-driven-io/emmett-sqlite')} on sqlite3 ${peerVersion('sqlite3')} ` +
    `from bench/.peer/${installMs === null ? '' : ` (installed by this run in ${(installMs / 1000).toFixed(0)} s)`}`,
);
console.log(
  `Emmett's append calls retried after its SQLITE_BUSY (COMMIT before its driver finalized the UPDATE … RETURNING): ${retried.Emmett} ` +
    `/ ${retried['Emmett as shipped']} as shipped, over ${ROUNDS} × ${calls.length.toLocaleString()} calls each`,
);
console.log(`  clockledger:                              ${settings.clockledger}`);
console.log(`  Emmett (one connection, same durability): ${settings.Emmett}`);
console.log(`  Emmett as shipped (a connection per call): ${settings['Emmett as shipped']}`);
console.log(`  raw better-sqlite3 (the floor: same rows, columns and indexes, no version check, canonical JSON or hash chain): ${settings.raw}\n`);
console.log(
  table([
    ['figure', 'clockledger', 'Emmett', 'ratio', 'Emmett as shipped', 'ratio', 'target', 'met', 'raw better-sqlite3', 'raw ÷ Emmett'],
    row(`append, ${PER_CALL} events per call`, 'append', 20),
    row('read each stream whole', 'read', 4),
    row(`ordered scan, pages of ${PAGE}`, 'scan', null),
  ]),
);
const us = (name: SideName, phase: Phase) => `${((median(figures[name][phase]) / N) * 1000).toFixed(1)} µs`;
console.log(`\nper event appended (10 per call, one transaction each): ${SIDES.map((s) => `${s} ${us(s, 'append')}`).join(', ')}`);
console.log(`per event read (stream by stream): ${SIDES.map((s) => `${s} ${us(s, 'read')}`).join(', ')}`);
console.log('raw ÷ Emmett: what the same rows cost through better-sqlite3 alone (no version check, canonical JSON or hash chain), against Emmett.');
const vs = (phase: Phase, peer: 'Emmett' | 'Emmett as shipped', target: number, label: string) => {
  const r = ratio('clockledger', peer, phase);
  return {
    figure: `${label} vs ${peer === 'Emmett' ? 'Emmett, same durability' : 'Emmett as shipped'}`,
    value: fmtRate(rate('clockledger', phase)),
    baseline: fmtRate(rate(peer, phase)),
    ratio: r,
    target: `≥ ${target}×`,
    met: r >= target,
  };
};
reportFigures('emmett', [
  vs('read', 'Emmett as shipped', 4, 'store read'),
  vs('read', 'Emmett', 4, 'store read'),
  vs('append', 'Emmett as shipped', 20, `store append, ${PER_CALL} per call`),
  vs('append', 'Emmett', 20, `store append, ${PER_CALL} per call`),
]);
