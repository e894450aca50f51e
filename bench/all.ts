// bench/all: every performance figure the project tracks, each beside its baseline from the same
// run, in one table at the end: runs each bench at its default size in a process of its own (their
// own output shows as they go), then collects what they reported (bench/lib/summary.ts).
// time-travel and pg-cold share one ledger written through the handlers: by default 300,000 events
// with a 60,000-event VM stream (about 4 minutes for the two on 2 CPUs); --full writes the 1M-event
// ledger with the 200,000-event stream their targets are stated for (about 10 minutes).
//   npm run bench [-- [--only cli,replay] [--full]]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Figure } from './lib/summary.js';
import { table } from './lib/report.js';
import { buildDist, ROOT as root } from './lib/dist.js';

const argv = process.argv.slice(2);
const only = argv.includes('--only') ? new Set(argv[argv.indexOf('--only') + 1]!.split(',')) : null;
const dir = mkdtempSync(join(tmpdir(), 'clockledger-bench-all-'));
const summary = join(dir, 'figures.jsonl');
const ledger = join(dir, 'time-travel.db');
const [events, big] = argv.includes('--full') ? ['1000000', '200000'] : ['300000', '60000'];
// (dist/ is built once, here: cli and replay time the compiled package)
const BENCHES: [name: string, args: string[]][] = [
  ['cli', ['bench/cli.ts', '--no-build']],
  ['replay', ['bench/replay.ts', '--no-build']],
  ['fleet', ['bench/fleet.ts', '--no-build']],
  ['matrix', ['bench/matrix.ts', '--no-build']],
  ['emmett', ['bench/emmett.ts']],
  ['life', ['bench/life.ts', '--no-build']],
  // (PostgreSQL: 1, 4 and 8 writer processes on one ledger, and cells)
  ['writers', ['bench/writers.ts', '--no-build']],
  // (writes the ledger pg-cold reads: run them together)
  ['time-travel', ['bench/time-travel.ts', events, '--big', big, '--ledger', ledger, '--no-build']],
  ['pg-cold', ['bench/pg-cold.ts', ledger, '--no-build']],
];
if (only?.has('pg-cold')) only.add('time-travel');
const failed: string[] = [];
const exits = new Map<string, number | string>();
try {
  buildDist();
  for (const [name, args] of BENCHES) {
    if (only && !only.has(name)) continue;
    process.stderr.write(`\n=== bench:${name} ===\n`);
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', ...args], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, BENCH_SUMMARY: summary },
    });
    exits.set(name, r.status ?? r.signal ?? '?');
  }
  let text = '';
  try {
    text = readFileSync(summary, 'utf8');
  } catch {
    // no bench reported anything
  }
  const figures = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Figure & { bench: string });
  // a bench reports its figures last: one that reported none failed, whatever its exit status (a
  // missed target and an uncaught error both exit 1)
  for (const [name, exit] of exits) if (!figures.some((f) => f.bench === name)) failed.push(`${name} (exit ${exit}, no figures)`);
  console.log(`\nall figures, each against its baseline in the same run (node ${process.version})\n`);
  console.log(
    table([
      ['figure', 'clockledger', 'baseline (same run)', 'ratio', 'target', 'met', 'bench'],
      ...figures.map((f) => [f.figure, f.value, f.baseline, f.ratio === null ? '' : f.ratio.toFixed(2), f.target, f.met ? 'yes' : 'NO', f.bench]),
    ]),
  );
  if (failed.length) console.log(`\nfailed to run: ${failed.join(', ')}`);
  process.exitCode = failed.length ? 2 : figures.every((f) => f.met) ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
