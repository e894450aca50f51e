// bench/life: the timeline of a guest's 30-day life with 10 migrations (a chain of hosts, qemu),
// sampled every minute (43 201 samples), beside a baseline measured in the same run: the same
// number of reads of the guest's clocks (guestClocksAt on one VM state), the floor of what
// sampling the life costs. Target: at most 200 ms for the timeline.
//   npm run bench:life [-- --no-build]      (times the compiled package: builds dist/ first)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, table } from './lib/report.js';
import { buildDist, fromDist } from './lib/dist.js';
import { reportFigures } from './lib/summary.js';

if (!process.argv.includes('--no-build')) buildDist();
const { handlers } = await fromDist<typeof import('../handlers/index.js')>('handlers/index.js');
const { closeStores, logFor } = await fromDist<typeof import('../handlers/context.js')>('handlers/context.js');
const { logAuditSource } = await fromDist<typeof import('../machines/audit/source.js')>('machines/audit/source.js');
const { guestClocksAt } = await fromDist<typeof import('../machines/vm/view.js')>('machines/vm/view.js');

const S = 1_000_000_000n;
const DAY = 86_400n * S;
const MIGRATIONS = 10;
const RUNS = 7;
const dir = mkdtempSync(join(tmpdir(), 'clockledger-life-'));
const db = join(dir, 'life.db');
const say = (s: string) => process.stderr.write(`${s}\n`);
const ok = async (name: keyof typeof handlers, request: Record<string, unknown>) => {
  const r = (await (handlers[name] as (req: unknown, o: unknown) => Promise<Record<string, any>>)(request, { db })) as Record<string, any>;
  if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
  return r;
};

try {
  say('recording a 30-day life with 10 migrations ...');
  // two hosts, one 20 ppm slow: a guest with chrony drifts and is corrected all its life
  await ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
  await ok('createHost', { hostId: 'b', tscKhz: 3_000_000, actualTscHz: '2999940000' });
  await ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 2, guest: { ntp: { client: 'chrony' } } });
  await ok('runVcpu', { vmId: 'web' });
  for (let v = 0; v < 2; v++) await ok('guest', { vmId: 'web', vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
  const span = (30n * DAY) / BigInt(MIGRATIONS + 1);
  let vm = 'web';
  for (let i = 0; i < MIGRATIONS; i++) {
    await ok('advanceTime', { ns: span.toString() });
    const m = await ok('migrate', { vmId: vm, toHost: i % 2 === 0 ? 'b' : 'a', strategy: 'qemu', blackoutNs: '300000000' });
    vm = m.newVmId as string;
  }
  await ok('advanceTime', { ns: (30n * DAY - span * BigInt(MIGRATIONS)).toString() });

  const timelineMs: number[] = [];
  let samples = 0;
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    const t = await ok('timeline', { vmId: vm, stepNs: (60n * S).toString() });
    timelineMs.push(performance.now() - t0);
    samples = t.timeline.samples.length;
  }

  // the baseline: as many reads of the guest's clocks on one VM state, in the same run
  const store = await logFor({ db }, 'read');
  const src = logAuditSource(store);
  const rec = src.vmAtTime(vm, src.now())!;
  const host = src.host(rec.hostId)!;
  const readsMs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    let t = rec.lastTime;
    for (let i = 0; i < samples; i++, t += 60n * S) guestClocksAt(rec, host, t);
    readsMs.push(performance.now() - t0);
  }
  const tl = median(timelineMs);
  const base = median(readsMs);
  process.stdout.write(
    `${table([
      ['what', 'median ms', 'ratio'],
      [`timeline, 30 days, ${MIGRATIONS} migrations, every minute (${samples} samples)`, tl.toFixed(1), `${(tl / base).toFixed(2)}×`],
      // a CLI call is one timeline in a fresh process: the first run, its code not yet optimised
      ['  its first run in this process', timelineMs[0]!.toFixed(1), `${(timelineMs[0]! / base).toFixed(2)}×`],
      [`baseline: ${samples} guestClocksAt reads on one VM state`, base.toFixed(1), '1.00×'],
    ])}\n` + `target: timeline <= 200 ms: ${tl <= 200 ? 'met' : 'NOT met'}\n`,
  );
  reportFigures('life', [
    {
      figure: `timeline of a 30-day life, ${MIGRATIONS} migrations, sampled every minute`,
      value: `${tl.toFixed(0)} ms`,
      baseline: `${samples} guestClocksAt reads ${base.toFixed(0)} ms`,
      ratio: tl / base,
      target: '≤ 200 ms',
      met: tl <= 200,
    },
  ]);
} finally {
  closeStores();
  rmSync(dir, { recursive: true, force: true });
}
