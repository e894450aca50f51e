// bench/replay: record, replay and time-travel a generated log of N events (default 1,000,000),
// each figure beside the raw better-sqlite3 baseline on the same table in the same run.
//   npx tsx bench/replay.ts [N] [--no-build]      (times the compiled package: builds dist/ first)
import { rawEventsDb } from './lib/raw.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NewEvent } from '../store/types.js';
import { generateLog } from './lib/generate.js';
import { prng } from './lib/prng.js';
import { childPeakRssMb } from './lib/child-rss.js';
import { fmtRate, median, peakRssMb, percentile, table, time } from './lib/report.js';
import { reportFigures } from './lib/summary.js';
import { buildDist, fromDist } from './lib/dist.js';

// what is timed is the compiled package, as the CLI runs it (npm run build first, unless --no-build)
const argv = process.argv.slice(2);
if (!argv.includes('--no-build')) buildDist();
const { clearRebuildCache, rebuildAll, rebuildStream, SNAPSHOT_EVERY } = await fromDist<typeof import('../machines/rebuild.js')>('machines/rebuild.js');
const { openEventStore } = await fromDist<typeof import('../store/sqlite-event-store.js')>('store/sqlite-event-store.js');
const { CODE_VERSION } = await fromDist<typeof import('../machines/version.js')>('machines/version.js');
const { replayLog } = await fromDist<typeof import('../machines/replay/replay.js')>('machines/replay/replay.js');
const { getProfile } = await fromDist<typeof import('../kvm/profiles.js')>('kvm/profiles.js');

const N = Number(argv.find((a) => !a.startsWith('--')) ?? process.env.N ?? 1_000_000);
const BATCH = 1000;
const dir = mkdtempSync(join(tmpdir(), 'clockledger-bench-'));
const storePath = join(dir, 'ledger.db');
const rawPath = join(dir, 'raw.db');
const say = (s: string) => process.stderr.write(`${s}\n`);
// BENCH_MEM=1: resident and heap memory after each phase (to find what holds the peak)
const mem = (phase: string) => {
  if (!process.env.BENCH_MEM) return;
  const m = process.memoryUsage();
  say(
    `  [mem] ${phase}: rss ${(m.rss / 2 ** 20).toFixed(0)} MB, heap ${(m.heapUsed / 2 ** 20).toFixed(0)} ` +
      `MB, external ${(m.external / 2 ** 20).toFixed(0)} MB, peak ${peakRssMb().toFixed(0)} MB`,
  );
};

try {
  const store = openEventStore(storePath, { codeVersion: CODE_VERSION });
  const { db: raw, insert: rawInsert } = rawEventsDb(rawPath);

  // ---- recording: the store's append (version check, canonical JSON, hash chain) vs a raw batched insert
  say(`generating and recording ${N.toLocaleString()} events ...`);
  let storeMs = 0;
  let rawMs = 0;
  let pos = 0;
  const versions = new Map<string, number>();
  let batch: { streamId: string; event: NewEvent }[] = [];
  const flush = () => {
    // store: one commit per batch, one AppendBatch per run of a stream
    const t0 = performance.now();
    const batches: { streamId: string; expectedVersion: number | 'any'; events: NewEvent[] }[] = [];
    for (const b of batch) {
      const last = batches.at(-1);
      if (last && last.streamId === b.streamId) last.events.push(b.event);
      else batches.push({ streamId: b.streamId, expectedVersion: 'any', events: [b.event] });
    }
    store.commit(batches);
    storeMs += performance.now() - t0;
    // raw: the same rows, JSON.stringify + INSERT in one transaction
    const t1 = performance.now();
    raw.transaction(() => {
      for (const b of batch) {
        const v = (versions.get(b.streamId) ?? 0) + 1;
        versions.set(b.streamId, v);
        rawInsert.run(++pos, b.streamId, v, b.event.type, b.event.time, JSON.stringify(b.event.data), JSON.stringify(b.event.metadata ?? {}), 'x');
      }
    })();
    rawMs += performance.now() - t1;
    batch = [];
  };
  for (const g of generateLog(N)) {
    batch.push(g);
    if (batch.length === BATCH) flush();
  }
  if (batch.length) flush();
  raw.close();
  mem('recorded');

  // ---- scans: raw scan + JSON.parse of every row vs full replay through the reducers
  // the baseline: a raw scan of every row with JSON.parse of its data, as a naive reader does
  const rawScan = () =>
    time(() => {
      let n = 0;
      for (const r of store.scan() as Iterable<{ data: string }>) {
        JSON.parse(r.data);
        n++;
      }
      return n;
    });
  // The raw scan, the full rebuild, and replay-debugging (re-execute every VM event under the
  // recorded profile and compare results and tracepoints with the log: it must find nothing),
  // alternated three times each on this shared machine; the median of each.
  const scans: number[] = [];
  let scanned = 0;
  const rebuilds: number[] = [];
  const debugs: number[] = [];
  let streams = 0;
  for (let round = 0; round < 3; round++) {
    const sc = rawScan();
    scans.push(sc.ms);
    scanned = sc.value;
    mem(`raw scan ${round}`);
    clearRebuildCache();
    const r = time(() => rebuildAll(store));
    rebuilds.push(r.ms);
    mem(`rebuild all ${round}`);
    streams = r.value.size;
    const d = time(() => replayLog(store, { profile: getProfile('linux-6.18') }));
    if (d.value.divergenceCount !== 0) throw new Error(`replay under the recorded profile diverged ${d.value.divergenceCount} times`);
    debugs.push(d.ms);
    mem(`replay-debug ${round}`);
  }
  const scanRaw = { value: scanned, ms: median(scans) };
  const replay = { ms: median(rebuilds) };
  const debug = { ms: median(debugs) };
  // snapshots every SNAPSHOT_EVERY events of each stream, written by one pass as time travel would
  const snap = time(() => {
    let n = 0;
    for (const sid of store.streams('vm-')) {
      clearRebuildCache();
      rebuildStream(store, sid);
      n++;
    }
    return n;
  });

  mem('snapshot pass');

  // ---- time travel to random (stream, position) pairs
  const rnd = prng(7);
  const vmStreams = store.streams('vm-');
  const last = store.lastPosition();
  const travel: number[] = [];
  for (let i = 0; i < 300; i++) {
    const sid = vmStreams[Math.floor(rnd() * vmStreams.length)]!;
    const p = 1 + Math.floor(rnd() * last);
    clearRebuildCache();
    const t0 = performance.now();
    rebuildStream(store, sid, { position: p });
    travel.push(performance.now() - t0);
  }
  // the baseline of a time travel: a raw read of 500 consecutive rows by position, with JSON.parse
  // (a snapshot interval's worth of events), from random positions of the same log
  const RAW_ROWS = 500;
  const rawRead: number[] = [];
  const rnd2 = prng(11);
  for (let i = 0; i < 300; i++) {
    const from = 1 + Math.floor(rnd2() * Math.max(1, last - RAW_ROWS));
    const t0 = performance.now();
    for (const r of store.scan({ fromPosition: from, toPosition: from + RAW_ROWS - 1, withoutMetadata: true }) as Iterable<{ data: string }>)
      JSON.parse(r.data);
    rawRead.push(performance.now() - t0);
  }
  mem('time travel');
  const verify = time(() => store.verify());
  mem('verify');
  store.close();

  // peak RSS of a full replay alone, in a fresh node process on the compiled package, beside the same
  // log's raw scan + JSON.parse in a process of its own and an empty node process
  const storeUrl = JSON.stringify(storePath);
  const replayRss = median(
    [0, 1, 2].map(() =>
      childPeakRssMb(`const { openEventStore } = await import('{{dist}}/store/sqlite-event-store.js');
const { rebuildAll } = await import('{{dist}}/machines/rebuild.js');
const { CODE_VERSION } = await import('{{dist}}/machines/version.js');
const s = openEventStore(${storeUrl}, { codeVersion: CODE_VERSION, readonly: true });
rebuildAll(s); s.close();`),
    ),
  );
  const scanRss = median(
    [0, 1, 2].map(() =>
      childPeakRssMb(`const { default: Database } = await import('better-sqlite3');
const db = new Database(${storeUrl}, { readonly: true });
for (const r of db.prepare('SELECT data FROM events ORDER BY position').iterate()) JSON.parse(r.data);
db.close();`),
    ),
  );
  const emptyRss = childPeakRssMb('');
  mem('replay alone');

  const rate = (n: number, ms: number) => (n / ms) * 1000;
  const recRatio = rate(N, storeMs) / rate(N, rawMs);
  const replayRatio = rate(N, replay.ms) / rate(scanRaw.value, scanRaw.ms);
  const debugRatio = rate(N, debug.ms) / rate(scanRaw.value, scanRaw.ms);
  const travelRatio = median(travel) / median(rawRead);
  console.log(`bench/replay: ${N.toLocaleString()} events, ${streams} streams, snapshot every ${SNAPSHOT_EVERY} events per stream\n`);
  console.log(
    table([
      ['figure', 'clockledger', 'raw better-sqlite3', 'ratio', 'target', 'met'],
      ['recording (append)', fmtRate(rate(N, storeMs)), fmtRate(rate(N, rawMs)), recRatio.toFixed(2), '≥ 0.50', recRatio >= 0.5 ? 'yes' : 'NO'],
      [
        'full replay (rebuild all)',
        fmtRate(rate(N, replay.ms)),
        fmtRate(rate(scanRaw.value, scanRaw.ms)),
        replayRatio.toFixed(2),
        '≥ 1.00',
        replayRatio >= 1 ? 'yes' : 'NO',
      ],
      [
        'replay-debug vs raw scan',
        fmtRate(rate(N, debug.ms)),
        fmtRate(rate(scanRaw.value, scanRaw.ms)),
        debugRatio.toFixed(2),
        '≥ 1.00',
        debugRatio >= 1 ? 'yes' : 'NO',
      ],
      // (what comparing every result and tracepoint costs over a plain rebuild: shown, no target)
      ['replay-debug vs rebuild', fmtRate(rate(N, debug.ms)), `rebuild ${fmtRate(rate(N, replay.ms))}`, (replay.ms / debug.ms).toFixed(2), '', ''],
      [
        'time travel p50 (ms)',
        median(travel).toFixed(2),
        `raw 500 rows ${median(rawRead).toFixed(2)}`,
        travelRatio.toFixed(2),
        '≤ 2 ms, ≤ 1.00',
        median(travel) <= 2 && travelRatio <= 1 ? 'yes' : 'NO',
      ],
      [
        'time travel p95 (ms)',
        percentile(travel, 95).toFixed(2),
        `raw 500 rows ${percentile(rawRead, 95).toFixed(2)}`,
        '',
        '≤ 5 ms',
        percentile(travel, 95) <= 5 ? 'yes' : 'NO',
      ],
      ['snapshot pass (s)', (snap.ms / 1000).toFixed(1), '', '', '', ''],
      ['verify hash chain', fmtRate(rate(verify.value.checked, verify.ms)), '', '', '', verify.value.intact ? 'intact' : 'BROKEN'],
      [
        'peak RSS, full replay alone (MB)',
        replayRss.toFixed(0),
        `raw scan alone ${scanRss.toFixed(0)}, empty node ${emptyRss.toFixed(0)}`,
        (replayRss / scanRss).toFixed(2),
        '≤ 150',
        replayRss <= 150 ? 'yes' : 'NO',
      ],
      ['peak RSS, this bench process (MB)', peakRssMb().toFixed(0), 'recording and every phase above', '', '', ''],
    ]),
  );
  const rawRate = fmtRate(rate(scanRaw.value, scanRaw.ms));
  const p95 = percentile(travel, 95);
  reportFigures('replay', [
    {
      figure: `full replay (rebuild all), ${N.toLocaleString()} events`,
      value: fmtRate(rate(N, replay.ms)),
      baseline: `raw scan + JSON.parse ${rawRate}`,
      ratio: replayRatio,
      target: '≥ 1.0',
      met: replayRatio >= 1,
    },
    {
      figure: 'replay-debugging under the recorded profile',
      value: fmtRate(rate(N, debug.ms)),
      baseline: `raw scan + JSON.parse ${rawRate}`,
      ratio: debugRatio,
      target: '≥ 1.0',
      met: debugRatio >= 1,
    },
    {
      figure: 'time travel p50',
      value: `${median(travel).toFixed(2)} ms`,
      baseline: `raw 500-row read ${median(rawRead).toFixed(2)} ms`,
      ratio: travelRatio,
      target: '≤ 2 ms, ≤ 1×',
      met: median(travel) <= 2 && travelRatio <= 1,
    },
    {
      figure: 'time travel p95',
      value: `${p95.toFixed(2)} ms`,
      baseline: `raw 500-row read ${percentile(rawRead, 95).toFixed(2)} ms`,
      ratio: p95 / percentile(rawRead, 95),
      target: '≤ 5 ms',
      met: p95 <= 5,
    },
    {
      figure: 'peak RSS, a full replay alone',
      value: `${replayRss.toFixed(0)} MB`,
      baseline: `raw scan alone ${scanRss.toFixed(0)} MB`,
      ratio: replayRss / scanRss,
      target: '≤ 150 MB',
      met: replayRss <= 150,
    },
  ]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
