// The demo: two hosts, a 4-vCPU guest, the same live migration done by every VMM strategy, and
// the audits side by side. It runs on whatever log the context names (./clockledger.db by default),
// and writes each migration's HTML report and the fleet's into a directory beside that file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fleetReportPage, migrationReportPage } from '../../machines/export/html/reports.js';
import { hostStreamId } from '../../machines/stream-ids.js';
import { z } from 'zod';
import { worstError, type AuditReport } from '../../machines/audit/audit.js';
import { X86_STRATEGY_NAMES } from '../../machines/migration/strategies/index.js';
import { defineHandler, type ErrorResponse, type OkResponse } from '../define.js';
import type { JsonOf } from '../../lib/json-of.js';
import { MAX_LIST_ITEMS } from '../limits.js';
import { commonFields, u64Field } from '../fields.js';
import { createHost, advanceTime } from './hosts.js';
import { createVm, guest, runVcpu } from './vms.js';
import { migrate } from './migrations.js';
import type { HandlerContext } from '../context.js';
import type { EventStore } from '../../store/types.js';
import { HandlerError } from '../errors.js';

/** ns as the ms of the table's columns, exactly: 300.160, 1.5 µs as 0.0015, −1 ns as −0.000001 (never "−0.000"). */
export function msColumn(value: bigint | string | null): string {
  if (value === null) return '—';
  // (the audits come back from the migrate handler as JSON: decimal strings)
  const ns = BigInt(value);
  const a = ns < 0n ? -ns : ns;
  const frac = (a % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '').padEnd(3, '0');
  return `${ns < 0n ? '−' : ''}${a / 1_000_000n}.${frac}`;
}
const ms = msColumn;

export const demo = defineHandler({
  name: 'demo',
  schema: z
    .object({
      ...commonFields,
      // (bounded before any element is checked: each bad one would cost an issue naming every strategy)
      strategies: z
        .array(z.enum(X86_STRATEGY_NAMES as [string, ...string[]]))
        .min(1)
        .max(MAX_LIST_ITEMS)
        .default(X86_STRATEGY_NAMES),
      blackoutNs: u64Field.default(300_000_000n),
      preSaveGapNs: u64Field.default(20_000_000n),
      /** the destination's TSC kHz (the source runs at 3 GHz): a different value shows TSC scaling at work */
      destinationTscKhz: z.number().int().min(1).default(2_600_000),
      /** write the HTML reports (each migration's and the fleet's) beside the database file */
      htmlReports: z.boolean().default(true),
    })
    .strict(),
  async run(req, env) {
    // The demo drives the handlers themselves, on the same store.
    const store = await env.log();
    const r = await runDemo(req, env.engine === 'sqlite' ? { store } : env.context, store);
    return { ...r, reports: req.htmlReports ? writeReports(store, env.engine === 'sqlite' ? env.db : undefined, r.migrations, env.forkDir) : null };
  },
});

/**
 * The HTML reports of the demo's migrations and the fleet table of the whole log, written into
 * `<database name>-reports/` beside the database file, or under the Lambda adapter inside the fork
 * directory, the only place a request may make files (none for a PostgreSQL URL or an in-memory
 * database); the paths written, the fleet's last.
 */
function writeReports(store: EventStore, db: string | undefined, migrations: string[], forkDir?: string): { dir: string; files: string[] } | null {
  if (!db || db === ':memory:') return null;
  const dir = join(forkDir ?? dirname(db), `${basename(db, extname(db))}-reports`);
  try {
    mkdirSync(dir, { recursive: true });
    const files = migrations.map((id) => {
      const file = join(dir, `${id}.html`);
      writeFileSync(file, migrationReportPage(store, id)!);
      return file;
    });
    const fleet = join(dir, 'fleet.html');
    writeFileSync(fleet, fleetReportPage(store, { links: true }));
    return { dir, files: [...files, fleet] };
  } catch (e) {
    throw new HandlerError('io', `cannot write the HTML reports in ${dir}: ${(e as Error).message}`, { dir });
  }
}

async function runDemo(
  req: { strategies: string[]; blackoutNs: bigint; preSaveGapNs: bigint; destinationTscKhz: number },
  ctx: HandlerContext,
  store: EventStore,
) {
  const must = async <O>(p: Promise<OkResponse<O> | ErrorResponse>): Promise<OkResponse<O>> => {
    const r = await p;
    if (!r.ok) throw new HandlerError('internal', `demo step failed: ${r.error.code}: ${r.error.message}`);
    return r;
  };
  // A run number keeps repeated demos on one log apart.
  const run = store.streams(hostStreamId('demo')).filter((s) => s.endsWith('-src')).length + 1;
  const src = `demo${run}-src`;
  const dst = `demo${run}-dst`;
  await must(createHost({ hostId: src, tscKhz: 3_000_000, initialTsc: '1800000000000000', realtimeOffsetNs: '1767225600000000000' }, ctx));
  await must(createHost({ hostId: dst, tscKhz: req.destinationTscKhz, initialTsc: '900000000000000', realtimeOffsetNs: '1767225600000000000' }, ctx));
  // (as the migrate handler answers them: JSON, u64s as decimal strings)
  const audits: JsonOf<AuditReport>[] = [];
  for (const strategy of req.strategies) {
    const vmId = `demo${run}-${strategy}`;
    await must(createVm({ vmId, hostId: src, vcpus: 4 }, ctx));
    await must(runVcpu({ vmId }, ctx));
    for (let v = 0; v < 4; v++) await must(guest({ vmId, vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10000 + 0x1000 * v + 1 }, ctx));
    await must(advanceTime({ ns: '10000000000' }, ctx));
    const r = await must(
      migrate({ vmId, toHost: dst, strategy, blackoutNs: req.blackoutNs.toString(), preSaveGapNs: req.preSaveGapNs.toString(), vmmLatencyNs: '20000' }, ctx),
    );
    audits.push(r.audit);
  }
  const columns = [
    'strategy',
    'status',
    'TSC error (ms)',
    'kvmclock error (ms)',
    'kvmclock−TSC (ms)',
    'skew after (cycles)',
    'master clock',
    'verdict',
    'findings',
  ];
  const rows = audits.map((a) => {
    const worst = worstError(a.vcpus.map((v) => BigInt(v.tscErrorNs)));
    return [
      a.strategy,
      a.status,
      ms(worst),
      ms(a.kvmclock.errorNs),
      ms(a.kvmclockMinusTscStepNs),
      a.skewCycles.after.toString(),
      `${a.masterClock.before ? 'on' : 'off'}→${a.masterClock.after ? 'on' : 'off'}`,
      a.verdict,
      [...new Set(a.findings.map((f) => f.code))].join(', ') || '—',
    ];
  });
  return {
    hosts: [src, dst],
    source: { hostId: src, tscKhz: 3_000_000 },
    destination: { hostId: dst, tscKhz: req.destinationTscKhz },
    migrations: audits.map((a) => a.migrationId),
    table: { columns, rows },
    audits,
  };
}
