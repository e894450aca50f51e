// bench/time-travel: `stateAt` through the handler, in fresh reader processes, on a SQLite ledger
// written the usual way: by one writer process through the handlers (no preparation pass a user
// would not run). The ledger holds a VM stream of BIG events (guest reads), one of SMALL events, and
// a fleet of migrations filling it up to N events. Each reader is a new `node` process on the
// compiled package that opens the ledger as the CLI and a Lambda do (read-only) and asks stateAt of
// one VM at random versions. The baseline, measured in the same run, is the same question on the
// SMALL-event stream: a stream's length should not show in its time travel.
//   npx tsx bench/time-travel.ts [N] [--big B] [--small S] [--ledger path] [--no-build]
//   (--ledger reuses a ledger an earlier run kept, for trying changes to the reader only)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { OWN_PEAK_RSS_MB } from './lib/child-rss.js';
import { buildDist, DIST, fromDist } from './lib/dist.js';
import { median, percentile, table } from './lib/report.js';
import { reportFigures } from './lib/summary.js';

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const positional = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
const N = Number(positional[0] ?? 1_000_000);
const BIG = Number(flag('--big') ?? 200_000);
const SMALL = Number(flag('--small') ?? 5_000);
const QUERIES = 300;
const say = (s: string) => process.stderr.write(`${s}\n`);

if (!argv.includes('--no-build')) buildDist();
const kept = flag('--ledger');
const dir = mkdtempSync(join(tmpdir(), 'clockledger-tt-'));
const db = kept ?? join(dir, 'ledger.db');

/** Write the ledger through the handlers, in this process (the writer), and say how long it took. */
async function build(): Promise<{ ms: number; events: number; migrations: number }> {
  const { handlers } = await fromDist<typeof import('../handlers/index.js')>('handlers/index.js');
  const { closeStores } = await fromDist<typeof import('../handlers/context.js')>('handlers/context.js');
  const { X86_STRATEGY_NAMES } = await fromDist<typeof import('../machines/migration/strategies/index.js')>('machines/migration/strategies/index.js');
  const ctx = { db };
  const call = async (name: string, req: Record<string, unknown>) => {
    const r = (await (handlers as unknown as Record<string, (r: unknown, c: unknown) => Promise<Record<string, unknown>>>)[name]!(req, ctx)) as {
      ok: boolean;
      error?: unknown;
    };
    if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
    return r as Record<string, unknown>;
  };
  const lastPosition = async () => ((await call('events', { limit: 1 })) as unknown as { lastPosition: number }).lastPosition;
  const t0 = performance.now();
  const hosts = ['a', 'b', 'c', 'd'];
  for (const [i, h] of hosts.entries()) await call('createHost', { hostId: h, tscKhz: 3_000_000 + i * 100_000, vendor: i % 2 ? 'svm' : 'vmx' });
  // the two VMs asked about: one long stream, one short, of guest reads (one event per request)
  for (const [vmId, n] of [
    ['big', BIG],
    ['small', SMALL],
  ] as const) {
    await call('createVm', { vmId, hostId: 'a', vcpus: 1 });
    await call('runVcpu', { vmId });
    for (let i = 0; i < n - 2; i++) {
      await call('guest', { vmId, vcpu: 0, op: 'rdtsc' });
      if (i % 50_000 === 49_999) say(`  ${vmId}: ${i + 1} guest reads (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  // the rest: a fleet of 8-vCPU guests migrating between the hosts (about 125 events a migration)
  const guests: string[] = [];
  for (let g = 0; g < 64; g++) {
    const vmId = `g${g}`;
    await call('createVm', { vmId, hostId: hosts[g % 4], vcpus: 8 });
    await call('runVcpu', { vmId });
    guests.push(vmId);
  }
  let migrations = 0;
  let events = await lastPosition();
  for (let round = 0; events < N; round++) {
    for (let g = 0; g < guests.length && events < N; g++) {
      await call('advanceTime', { ns: 50_000_000 });
      const r = (await call('migrate', {
        vmId: guests[g],
        toHost: hosts[(g + round + 1) % 4],
        strategy: X86_STRATEGY_NAMES[(g + round) % X86_STRATEGY_NAMES.length],
        blackoutNs: 100_000_000,
      })) as { status: string; newVmId: string };
      migrations++;
      if (r.status === 'completed') guests[g] = r.newVmId;
      if (migrations % 64 === 0) events = await lastPosition();
    }
    say(`  fleet: ${migrations} migrations, ${events} events (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  events = await lastPosition();
  await closeStores();
  return { ms: performance.now() - t0, events, migrations };
}

/** One fresh reader process: stateAt of a VM at `versions` (in order), each timed; the first call apart. */
function reader(vmId: string, versions: number[]): { first: number; times: number[]; cpu: number[]; rssMb: number } {
  const code = `
    const t0 = performance.now();
    const { handlers } = await import('${pathToFileURL(join(DIST, 'handlers/index.js')).href}');
    const ctx = { db: ${JSON.stringify(db)} };
    const times = [];
    const cpu = [];
    let first = 0;
    for (const [i, version] of ${JSON.stringify(versions)}.entries()) {
      const s = performance.now();
      const c = process.cpuUsage();
      const r = await handlers.stateAt({ vmId: ${JSON.stringify(vmId)}, version }, ctx);
      const ms = performance.now() - s;
      const used = process.cpuUsage(c);
      if (!r.ok || r.version !== version) throw new Error(JSON.stringify(r).slice(0, 300));
      if (i === 0) first = performance.now() - t0; else (times.push(ms), cpu.push((used.user + used.system) / 1000));
    }
    process.stdout.write(JSON.stringify({ first, times, cpu, rssMb: ${OWN_PEAK_RSS_MB} }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { first: number; times: number[]; cpu: number[]; rssMb: number };
}

/** QUERIES versions of a stream of `n` events, spread at random (a fixed seed: every run asks the same). */
function versionsOf(n: number, seed: number): number[] {
  let a = seed;
  const next = () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0), a / 2 ** 32);
  return Array.from({ length: QUERIES + 1 }, () => 1 + Math.floor(next() * n));
}

try {
  let built: { ms: number; events: number; migrations: number } | undefined;
  if (!kept || !existsSync(kept)) {
    say(
      `writing a ledger of ${N.toLocaleString()} events through the handlers (VM streams of ${BIG.toLocaleString()} and ${SMALL.toLocaleString()} events) ...`,
    );
    built = await build();
    say(`  written in ${(built.ms / 1000).toFixed(1)} s: ${built.events.toLocaleString()} events, ${built.migrations} migrations`);
  }
  // alternate the two streams' readers, three rounds each, so both see the same machine
  const big: number[] = [];
  const small: number[] = [];
  const cpu = { big: [] as number[], small: [] as number[] };
  const firsts = { big: [] as number[], small: [] as number[] };
  let rss = 0;
  for (let round = 0; round < 3; round++) {
    const s = reader('small', versionsOf(SMALL, 7 + round));
    const b = reader('big', versionsOf(BIG, 11 + round));
    small.push(...s.times);
    big.push(...b.times);
    cpu.small.push(...s.cpu);
    cpu.big.push(...b.cpu);
    firsts.small.push(s.first);
    firsts.big.push(b.first);
    rss = Math.max(rss, b.rssMb, s.rssMb);
  }
  const p = (xs: number[], q: number) => percentile(xs, q);
  const ratio = median(big) / median(small);
  console.log(
    'bench/time-travel: stateAt through the handler, fresh reader processes ' +
      `(3 of each, ${QUERIES} random versions each), SQLite ledger written through the handlers` +
      (built ? ` in ${(built.ms / 1000).toFixed(0)} s (${built.events.toLocaleString()} events, ${built.migrations} migrations)` : ` (kept: ${db})`) +
      '\n',
  );
  console.log(
    table([
      ['stream', 'events', 'p50', 'p95', 'max', 'CPU time p50', 'CPU time p95', 'first call (process start to answer)'],
      ...(
        [
          ['vm-big', BIG, big, cpu.big, firsts.big],
          ['vm-small', SMALL, small, cpu.small, firsts.small],
        ] as const
      ).map(([name, n, t, c, f]) => [
        name,
        n,
        `${p(t, 50).toFixed(2)} ms`,
        `${p(t, 95).toFixed(2)} ms`,
        `${Math.max(...t).toFixed(2)} ms`,
        `${p(c, 50).toFixed(2)} ms`,
        `${p(c, 95).toFixed(2)} ms`,
        `${median(f).toFixed(0)} ms`,
      ]),
    ]),
  );
  const load = (await import('node:os')).loadavg()[0]!;
  console.log(
    `\nratio of the p50s (big / small): ${ratio.toFixed(2)}×; peak RSS of a reader ${rss.toFixed(0)} MB; ` +
      `load average ${load.toFixed(1)} on ${(await import('node:os')).cpus().length} CPUs`,
  );
  reportFigures('time-travel', [
    {
      figure: `stateAt p50, ${BIG.toLocaleString()}-event VM stream`,
      value: `${p(big, 50).toFixed(2)} ms`,
      baseline: `${SMALL.toLocaleString()}-event stream ${p(small, 50).toFixed(2)} ms`,
      ratio: Number(ratio.toFixed(2)),
      target: '≤ 2 ms, ≤ 1.5×',
      met: p(big, 50) <= 2 && ratio <= 1.5,
    },
    {
      figure: 'stateAt p95',
      value: `${p(big, 95).toFixed(2)} ms`,
      baseline: `${p(small, 95).toFixed(2)} ms`,
      ratio: null,
      target: '≤ 5 ms',
      met: p(big, 95) <= 5,
    },
  ]);
} finally {
  if (!kept) rmSync(dir, { recursive: true, force: true });
}
