// bench/matrix: the fleet safety matrix of 10 000 cells (5 host classes: 25 pairs × 10 VMM
// releases × 4 blackouts × 10 guests) with 1 and then 2 worker threads, each in a fresh `node`
// process of its own (so its peak RSS is its own), beside the single-migration rate of the same
// cells: a sample of them run one by one in this process, each on its own scratch ledger through
// the handlers (setup, then migrate with the cell's guest), as a script would without the matrix.
// The two matrices must give the same cells (compared by hash), and the sample the same verdicts.
//   npx tsx bench/matrix.ts [cells per guest-run sample step] [--no-build]   (times the compiled package)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { OWN_PEAK_RSS_MB } from './lib/child-rss.js';
import { table } from './lib/report.js';
import { reportFigures } from './lib/summary.js';
import { buildDist, DIST, fromDist } from './lib/dist.js';

if (!process.argv.includes('--no-build')) buildDist();
const { handlers, closeStores } = await fromDist<typeof import('../index.js')>('index.js');
const { openEventStore } = await fromDist<typeof import('../store/sqlite-event-store.js')>('store/sqlite-event-store.js');
const { clearRebuildCache } = await fromDist<typeof import('../machines/rebuild.js')>('machines/rebuild.js');
const { CODE_VERSION } = await fromDist<typeof import('../machines/version.js')>('machines/version.js');
const { cellRun, cellCount } = await fromDist<typeof import('../machines/matrix/plan.js')>('machines/matrix/plan.js');
const { planFromJson, recordedMatrix } = await fromDist<typeof import('../machines/matrix/record.js')>('machines/matrix/record.js');
const { setupRequests, migrateRequest, cellOutcome } = await fromDist<typeof import('../machines/matrix/run.js')>('machines/matrix/run.js');

const say = (s: string) => process.stderr.write(`${s}\n`);
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
/** every STEP-th cell is run one by one for the baseline (default: 50 → 200 cells) */
const STEP = Number(args[0] ?? 50);
const S = 1_000_000_000;

// a fleet operator's question before a rollout: five host classes, the VMM releases in service and
// candidates, the guest kernels and time-sync setups in the fleet, four stop lengths
const REQUEST = {
  hosts: [
    { name: 'icelake', tscKhz: 2_000_000, vendor: 'vmx' },
    { name: 'sapphire', tscKhz: 2_100_000, vendor: 'vmx', kernel: 'linux-7.1' },
    { name: 'milan', tscKhz: 2_450_000, vendor: 'svm', kernel: 'linux-6.6' },
    { name: 'genoa', tscKhz: 2_400_000, vendor: 'svm', kernel: 'linux-6.1' },
    { name: 'legacy', tscKhz: 2_500_000, tscScaling: false, kernel: 'linux-5.15' },
  ],
  strategies: [
    'firecracker@1.7',
    'firecracker@1.13',
    'firecracker@1.14',
    'firecracker@1.16',
    'qemu',
    'qemu+downtimeAccounting=true',
    'cloud-hypervisor@50',
    'cloud-hypervisor@53',
    'crosvm',
    'offset-corrected',
  ],
  guests: [
    {},
    { kernel: '5.10' },
    { kernel: '4.19' },
    { kernel: '6.1', clocksource: 'tsc' },
    { kernel: '6.6', tscReliable: true },
    { ntp: { client: 'ntpd' } },
    { ntp: { client: 'none' } },
    { clocksource: 'kvm-clock' },
    { invariantTsc: true },
    { kernel: '5.15', watchdogThreshS: 5 },
  ],
  blackoutsNs: [0.1 * S, S, 5 * S, 30 * S].map(String),
};

interface MatrixRun {
  workers: number;
  cells: number;
  ms: number;
  rssMb: number;
  /** CPU time of the whole process, every thread (user + system) */
  cpuMs: number;
  hash: string;
  summary: Record<string, number>;
  db: string;
}

/** The matrix in a fresh node process on the compiled package: its time, its peak RSS, the hash of its cells. */
function matrixInChild(workers: number, db: string): MatrixRun {
  const code = `
    import { performance } from 'node:perf_hooks';
    import { createHash } from 'node:crypto';
    const { handlers, closeStores } = await import(${JSON.stringify(pathToFileURL(join(DIST, 'index.js')).href)});
    const t0 = performance.now();
    const r = await handlers.matrix({ ...${JSON.stringify(REQUEST)}, workers: ${workers}, matrixId: 'w${workers}' }, { db: ${JSON.stringify(db)} });
    const ms = performance.now() - t0;
    if (!r.ok) { console.error(JSON.stringify(r.error)); process.exit(1); }
    const hash = createHash('sha256').update(JSON.stringify(r.cells)).digest('hex');
    await closeStores();
    const cpu = process.cpuUsage();
    const rssMb = ${OWN_PEAK_RSS_MB};
    const cpuMs = (cpu.user + cpu.system) / 1000;
    console.log(JSON.stringify({ workers: ${workers}, cells: r.cells.length, ms, rssMb, cpuMs, hash, summary: r.summary, db: ${JSON.stringify(db)} }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`the matrix with ${workers} workers failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as MatrixRun;
}

const dir = mkdtempSync(join(tmpdir(), 'clockledger-bench-matrix-'));
// the machine is shared: its load says how much of its cores the figures had
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
const loadBefore = load();
try {
  say('the matrix, 1 worker thread ...');
  const one = matrixInChild(1, join(dir, 'one.db'));
  say(`  ${one.cells} cells in ${(one.ms / 1000).toFixed(1)} s`);
  say('the matrix, 2 worker threads ...');
  const two = matrixInChild(2, join(dir, 'two.db'));
  say(`  ${two.cells} cells in ${(two.ms / 1000).toFixed(1)} s`);

  // the baseline: a sample of the same cells, each alone through the handlers, as the record plans them
  const ledger = openEventStore(one.db, { readonly: true });
  const rec = recordedMatrix(ledger, 'w1')!;
  ledger.close();
  const plan = planFromJson(rec.plan);
  const sample = Array.from({ length: Math.ceil(cellCount(plan) / STEP) }, (_, k) => k * STEP);
  say(`the same cells one by one (every ${STEP}th: ${sample.length} cells) ...`);
  let agree = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (const i of sample) {
    const run = cellRun(plan, i);
    clearRebuildCache();
    const store = openEventStore(':memory:', { codeVersion: CODE_VERSION });
    const byName = handlers as Record<string, (q: unknown, c: unknown) => Promise<Record<string, any>>>;
    const call = async (name: string, request: Record<string, unknown>) => {
      const r = await byName[name]!(request, { store });
      if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
      return r;
    };
    for (const [name, request] of setupRequests(run)) await call(name, request);
    const o = cellOutcome((await call('migrate', migrateRequest(run))).audit);
    store.close();
    if (o.verdict === ['pass', 'warn', 'fail'].find((v) => v[0] === rec.results.verdicts[i])) agree++;
  }
  const baseMs = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  const baseCpuMs = (c1.user + c1.system) / 1000;
  const baseRate = (sample.length / baseMs) * 1000;
  const rate = (r: MatrixRun) => (r.cells / r.ms) * 1000;
  const same = one.hash === two.hash;

  const { hosts, strategies, blackoutsNs, guests } = REQUEST;
  const shape = `${hosts.length ** 2} host pairs × ${strategies.length} releases × ${blackoutsNs.length} blackouts × ${guests.length} guests`;
  console.log(`\nbench:matrix: ${one.cells} cells (${shape}), node ${process.version}, ${availableParallelism()} cores`);
  console.log(`load average ${loadBefore} before, ${load()} after (the cores are shared: cells per CPU-second is the figure contention leaves alone)\n`);
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const perCpu = (cells: number, cpuMs: number) => ((cells / cpuMs) * 1000).toFixed(1);
  const row = (name: string, r: MatrixRun) => [name, r.cells, s(r.ms), rate(r).toFixed(1), s(r.cpuMs), perCpu(r.cells, r.cpuMs), `${r.rssMb.toFixed(0)} MB`];
  console.log(
    table([
      ['run', 'cells', 'time', 'cells/s', 'CPU time', 'cells per CPU-second', 'peak RSS'],
      ['one by one through migrate (sample)', sample.length, s(baseMs), baseRate.toFixed(1), s(baseCpuMs), perCpu(sample.length, baseCpuMs), '-'],
      row('matrix, 1 worker', one),
      row('matrix, 2 workers', two),
    ]),
  );
  const agreement = `the sample agrees with the matrix on ${agree} of ${sample.length} verdicts`;
  console.log(`\nsummary: ${JSON.stringify(one.summary)}; 1 and 2 workers give ${same ? 'the same' : 'DIFFERENT'} cells; ${agreement}`);
  if (!same || agree !== sample.length) process.exitCode = 1;
  const seconds = two.ms / 1000;
  reportFigures('matrix', [
    {
      figure: `matrix: ${two.cells} cells, 2 workers`,
      value: `${rate(two).toFixed(0)} cells/s`,
      baseline: `one by one through migrate ${baseRate.toFixed(1)} cells/s`,
      ratio: rate(two) / baseRate,
      target: '≥ 200 cells/s',
      met: rate(two) >= 200 && same,
    },
    {
      figure: `matrix: ${two.cells} cells wall time, 2 workers`,
      value: s(two.ms),
      baseline: `1 worker ${s(one.ms)}`,
      ratio: one.ms / two.ms,
      target: '≤ 50 s',
      met: seconds <= 50,
    },
    {
      figure: 'matrix: peak RSS, 2 workers',
      value: `${two.rssMb.toFixed(0)} MB`,
      baseline: `1 worker ${one.rssMb.toFixed(0)} MB`,
      ratio: null,
      target: '≤ 300 MB',
      met: two.rssMb <= 300,
    },
  ]);
} finally {
  await closeStores();
  rmSync(dir, { recursive: true, force: true });
}
