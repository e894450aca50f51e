// bench/cli: the cold start of the compiled CLI against a bare `node -e ''`, measured in the
// same run (alternating, after warm-ups), and what the CLI's startup path spends its time on.
//
//   npx tsx bench/cli.ts [--runs 20] [--no-build]
//
// Target: `clockledger invoke events --data '{"limit":10}'` on a small log costs at most 2× a bare
// node start. The breakdown times each import on the startup path in a fresh process, then what
// the invoke path avoids loading (the full registry, commander, the command tree).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { closeStores, handlers } from '../handlers/index.js';
import { median, percentile, table } from './lib/report.js';
import { reportFigures } from './lib/summary.js';
import { buildDist, DIST, ROOT } from './lib/dist.js';

const CLI = join(DIST, 'handlers/cli/main.js');
const TARGET_RATIO = 2;
const WARMUPS = 3;
const argv = process.argv.slice(2);
const RUNS = Number(argv[argv.indexOf('--runs') + 1] ?? 20) || 20;

function hrMs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env): { ms: number; status: number | null; stdout: string; stderr: string } {
  let r!: ReturnType<typeof spawnSync>;
  const ms = hrMs(() => {
    r = spawnSync(process.execPath, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  });
  return { ms, status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function buildSmallDb(db: string): Promise<void> {
  const call = async (name: keyof typeof handlers, req: Record<string, unknown>) => {
    const r = await (handlers[name] as (q: unknown, c: unknown) => Promise<{ ok: boolean; error?: unknown }>)(req, { db });
    if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
  };
  await call('createHost', { hostId: 'h1', tscKhz: 2_500_000 });
  await call('createVm', { vmId: 'vm1', hostId: 'h1', vcpus: 2 });
  await call('runVcpu', { vmId: 'vm1' });
  await call('guest', { vmId: 'vm1', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 4097 });
  for (let i = 0; i < 5; i++) {
    await call('advanceTime', { ns: '1000000' });
    await call('ioctl', { vmId: 'vm1', ioctl: 'KVM_GET_CLOCK' });
    await call('ioctl', { vmId: 'vm1', vcpu: 0, ioctl: 'KVM_GET_TSC_KHZ' });
  }
  closeStores();
}

/** Time each import of the startup path, cumulatively, in a fresh process (median of n). */
function startupBreakdown(n: number): [string, number][] {
  const dist = (p: string) => pathToFileURL(join(DIST, p)).href;
  const steps: [string, string][] = [
    ['cli/invoke.js (+ io, run, registry)', dist('handlers/cli/invoke.js')],
    ['better-sqlite3', 'better-sqlite3'],
    ['use-cases/events.js (the events handler)', dist('handlers/use-cases/events.js')],
    ['-- not on the invoke path: handlers/index.js (the rest of the registry)', dist('handlers/index.js')],
    ['-- not on the invoke path: zod (loaded only for a request the quick check declines)', 'zod'],
    ['-- not on the invoke path: commander', 'commander'],
    ['-- not on the invoke path: cli/program.js (the command tree)', dist('handlers/cli/program.js')],
  ];
  const script = `const steps = ${JSON.stringify(steps)}; const out = [];
for (const [name, spec] of steps) { const t0 = performance.now(); await import(spec); out.push([name, performance.now() - t0]); }
console.log(JSON.stringify(out));`;
  const samples: number[][] = steps.map(() => []);
  for (let i = 0; i < n; i++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`breakdown failed: ${r.stderr}`);
    for (const [j, [, ms]] of (JSON.parse(r.stdout) as [string, number][]).entries()) samples[j]!.push(ms);
  }
  return steps.map(([name], j) => [name, median(samples[j]!)]);
}

const dir = mkdtempSync(join(tmpdir(), 'clockledger-bench-cli-'));
try {
  if (!argv.includes('--no-build') || !existsSync(CLI)) buildDist();
  const db = join(dir, 'small.db');
  await buildSmallDb(db);

  const cliArgs = [CLI, 'invoke', 'events', '--db', db, '--data', '{"limit":10}'];
  const bareArgs = ['-e', ''];
  // correctness first: the CLI answers with the 10 events
  const check = run(cliArgs);
  const parsed = JSON.parse(check.stdout) as { ok: boolean; events: unknown[] };
  if (check.status !== 0 || !parsed.ok || parsed.events.length !== 10) throw new Error(`CLI check failed (${check.status}): ${check.stdout} ${check.stderr}`);

  for (let i = 0; i < WARMUPS; i++) {
    run(bareArgs);
    run(cliArgs);
  }
  const bare: number[] = [];
  const cli: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // alternate, so drift in machine load hits both alike
    if (i % 2 === 0) {
      bare.push(run(bareArgs).ms);
      cli.push(run(cliArgs).ms);
    } else {
      cli.push(run(cliArgs).ms);
      bare.push(run(bareArgs).ms);
    }
  }
  const mBare = median(bare);
  const mCli = median(cli);
  const ratio = mCli / mBare;
  console.log(`cold start, ${RUNS} alternating runs each after ${WARMUPS} warm-ups (node ${process.version})`);
  console.log(
    table([
      ['command', 'median ms', 'p90 ms', 'min ms'],
      ["node -e ''", mBare.toFixed(1), percentile(bare, 90).toFixed(1), Math.min(...bare).toFixed(1)],
      [`clockledger invoke events --data '{"limit":10}'`, mCli.toFixed(1), percentile(cli, 90).toFixed(1), Math.min(...cli).toFixed(1)],
    ]),
  );
  console.log(`ratio (medians): ${ratio.toFixed(2)}× — ${ratio <= TARGET_RATIO ? 'meets' : 'does NOT meet'} the ≤ ${TARGET_RATIO}× target`);
  reportFigures('cli', [
    {
      figure: "cold `clockledger invoke events` vs `node -e ''`",
      value: `${mCli.toFixed(1)} ms`,
      baseline: `${mBare.toFixed(1)} ms`,
      ratio,
      target: `≤ ${TARGET_RATIO}×`,
      met: ratio <= TARGET_RATIO,
    },
  ]);

  console.log('\nstartup path, each import timed in a fresh process (median of 7; each step excludes what earlier steps loaded):');
  const steps = startupBreakdown(7);
  console.log(table([['import', 'ms'], ...steps.map(([name, ms]) => [name, ms.toFixed(1)])]));
  process.exitCode = ratio <= TARGET_RATIO ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
