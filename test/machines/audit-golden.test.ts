// The audit reports of a fixed set of migrations (every strategy on both architectures, across
// hosts of other rates, kernels and vendors, short and long blackouts, a refused one, and ones a
// fork cuts in flight), pinned byte for byte in test/fixtures/audit-golden.json. The report's JSON
// is what users and their scripts read: a change to the audit's code must not change it.
// CLOCKLEDGER_UPDATE_GOLDEN=1 rewrites the fixture (only for an intended change of the report).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { handlers } from '../../handlers/index.js';
import { FINDING_CODES } from '../../machines/audit/thresholds.js';
import { STRATEGIES, STRATEGY_NAMES } from '../../machines/migration/strategies/index.js';
import { updatingGolden, writeGolden } from '../helpers/golden.js';
import { ENGINE_NAMES, expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'audit-golden.json');
const S = 1_000_000_000;

const X86_HOSTS = [
  { hostId: 'i3000', tscKhz: 3_000_000 },
  { hostId: 'a2000', tscKhz: 2_000_000, vendor: 'svm' },
  { hostId: 'noscale', tscKhz: 2_100_000, tscScaling: false, kernel: 'linux-6.6' },
  { hostId: 'k515', tscKhz: 2_600_000, kernel: 'linux-5.15' },
  { hostId: 'next', tscKhz: 3_000_000, kernel: 'clock-cleanup-v6', realtimeOffsetNs: '250000000' },
  { hostId: 'drifty', tscKhz: 3_000_000, actualTscHz: '3000009000' },
  { hostId: 'late', tscKhz: 3_000_000, initialTsc: '123456789' },
  // no scaling and faster than the guest: a 3 GHz guest cannot be restored here
  { hostId: 'fast', tscKhz: 3_500_000, tscScaling: false },
];
const ARM_HOSTS = [
  { hostId: 'arm-new', arch: 'arm64', cntfrqHz: '25000000', initialTsc: '1000000000' },
  { hostId: 'arm-old', arch: 'arm64', cntfrqHz: '25000000', kernel: 'linux-6.1' },
  { hostId: 'arm-ghz', arch: 'arm64', cntfrqHz: '1000000000' },
  { hostId: 'arm-drifty', arch: 'arm64', cntfrqHz: '25000000', actualTscHz: '25000100' },
  { hostId: 'arm-noecv', arch: 'arm64', cntfrqHz: '25000000', initialTsc: '1000000000', ecv: false },
];

/**
 * Tight thresholds: every comparison the audit makes is reported. Not watchdogMarginNs: it is the
 * simulated guest's watchdog margin, and at 0 the guest would mark tsc unstable on pvclock's 1 ns
 * truncation; the guest keeps its kernel's margin here.
 */
const TIGHT = { clockErrorNs: '0', clockStepNs: '0', skewCycles: '0', driftPpb: '0', driftWarnPpb: '10' };

type Res = Record<string, any>;
type Step = { strategy?: string; to?: string; inPlace?: boolean; blackoutNs: number; before?: number; extra?: Record<string, unknown> };

/** A guest on `from` (kvmclock on for x86), run through the steps with one strategy; the audits (migrate's, then the log's under tight thresholds). */
async function chain(l: Ledger, arch: 'x86' | 'arm64', strategy: string, from: string, steps: Step[], vm: Record<string, unknown> = {}): Promise<Res[]> {
  for (const h of arch === 'x86' ? X86_HOSTS : ARM_HOSTS) await l.ok('createHost', h);
  let vmId = 'g';
  await l.ok('createVm', { vmId, hostId: from, vcpus: 2, ...vm });
  await l.ok('runVcpu', { vmId });
  if (arch === 'x86') for (const v of [0, 1]) await l.ok('guest', { vmId, vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
  const out: Res[] = [];
  for (const s of steps) {
    await l.ok('advanceTime', { ns: s.before ?? 2 * S });
    const r = await l.ok('migrate', {
      vmId,
      ...(s.inPlace ? { inPlace: true } : { toHost: s.to }),
      strategy: s.strategy ?? strategy,
      blackoutNs: s.blackoutNs,
      ...s.extra,
    });
    out.push(r.audit);
    if (r.status === 'completed') vmId = r.newVmId;
    if (arch === 'arm64') await l.ok('guest', { vmId, vcpu: 0, op: 'cntpct' });
  }
  await expectMigrateAuditsFromLog(l);
  out.push(...(await l.ok('audit', { thresholds: TIGHT })).audits);
  return out;
}

const X86_STEPS: Step[] = [
  { to: 'a2000', blackoutNs: 300_000_000 },
  { to: 'k515', blackoutNs: 25 * S, extra: { vmmLatencyNs: 0, writeSpacingNs: 600_000_000 } },
  { to: 'next', blackoutNs: 1_000_000, extra: { readSpacingNs: 30_000, preSaveGapNs: 5_000_000 } },
  { to: 'noscale', blackoutNs: 300_000_000 },
  { to: 'drifty', blackoutNs: 2 * S },
  { inPlace: true, blackoutNs: 30 * S },
  { to: 'late', blackoutNs: 100_000_000, extra: { writeSpacingNs: 1_500_000_000, vmmLatencyNs: 0 } },
];
const ARM_STEPS: Step[] = [
  { to: 'arm-old', blackoutNs: 2 * S, extra: { vmmLatencyNs: 0 } },
  { to: 'arm-new', blackoutNs: 60 * S, extra: { readSpacingNs: 1_000_000 } },
  { inPlace: true, blackoutNs: 3 * S, extra: { vmmLatencyNs: 0 } },
  { to: 'arm-ghz', blackoutNs: 1 * S },
  { to: 'arm-drifty', blackoutNs: 1000 },
  { inPlace: true, blackoutNs: 30 * S, extra: { options: { kvmNoAdjvtime: true } } },
];

type Scenario = { name: string; run: (l: Ledger) => Promise<Res[]> };
const SCENARIOS: Scenario[] = [
  ...STRATEGY_NAMES.flatMap((strategy) => [
    ...(STRATEGIES[strategy]!.x86 ? [{ name: `x86 ${strategy}`, run: (l: Ledger) => chain(l, 'x86', strategy, 'i3000', X86_STEPS) }] : []),
    ...(STRATEGIES[strategy]!.arm64 ? [{ name: `arm64 ${strategy}`, run: (l: Ledger) => chain(l, 'arm64', strategy, 'arm-new', ARM_STEPS) }] : []),
  ]),
  {
    name: 'arm64 counter offset, then writes it ignores',
    run: (l) =>
      chain(l, 'arm64', 'crosvm', 'arm-new', [
        { to: 'arm-noecv', blackoutNs: 2 * S, extra: { vmmLatencyNs: 0 } },
        { strategy: 'qemu', inPlace: true, blackoutNs: 3 * S, extra: { vmmLatencyNs: 0 } },
        { strategy: 'counter-offset', to: 'arm-old', blackoutNs: 2 * S },
      ]),
  },
  {
    name: 'x86 secure TSC (TDX / SEV-SNP)',
    run: (l) => chain(l, 'x86', 'firecracker', 'i3000', [{ to: 'drifty', blackoutNs: 300_000_000 }], { secureTsc: true }),
  },
  {
    // the guest's LAPIC TSC deadline restored before IA32_TSC: its sleeper is stuck (guest_sleeper_stuck)
    name: 'x86 firecracker 1.7 deadline before the TSC',
    run: async (l) => {
      for (const h of X86_HOSTS) await l.ok('createHost', h);
      await l.ok('createVm', { vmId: 'g', hostId: 'i3000', vcpus: 1 });
      await l.ok('runVcpu', { vmId: 'g' });
      await l.ok('advanceTime', { ns: 2 * S });
      await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC_DEADLINE', value: '6300000000' });
      const r = await l.ok('migrate', { vmId: 'g', toHost: 'next', strategy: 'firecracker@1.7', blackoutNs: S, vmmLatencyNs: 0 });
      expectMigrateAuditsFromLog(l);
      return [r.audit];
    },
  },
  { name: 'x86 refused restore', run: (l) => chain(l, 'x86', 'cloud-hypervisor', 'i3000', [{ to: 'fast', blackoutNs: 300_000_000 }]) },
  {
    name: 'x86 refused in a chain',
    run: (l) =>
      chain(l, 'x86', 'qemu', 'i3000', [
        { to: 'a2000', blackoutNs: 1000 },
        { to: 'fast', blackoutNs: 1000 },
      ]),
  },
  {
    name: 'x86 in flight (fork cuts)',
    run: async (l) => {
      await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
      await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
      await l.ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 2 });
      await l.ok('runVcpu', { vmId: 'web' });
      await l.ok('advanceTime', { ns: 5 * S });
      await l.ok('migrate', { vmId: 'web', toHost: 'b', strategy: 'qemu', blackoutNs: 300_000_000 });
      return forkAudits(l, [10, 11, 20, 26, 40]);
    },
  },
  {
    name: 'arm64 in flight (fork cuts)',
    run: async (l) => {
      for (const h of ARM_HOSTS.slice(0, 2)) await l.ok('createHost', h);
      await l.ok('createVm', { vmId: 'g', hostId: 'arm-new', vcpus: 2 });
      await l.ok('runVcpu', { vmId: 'g' });
      await l.ok('advanceTime', { ns: 5 * S });
      await l.ok('migrate', { vmId: 'g', toHost: 'arm-old', strategy: 'qemu', blackoutNs: S });
      return forkAudits(l, [8, 9, 15, 25]);
    },
  },
];

async function forkAudits(l: Ledger, positions: number[]): Promise<Res[]> {
  const out: Res[] = [];
  for (const position of positions) {
    const db = l.fresh();
    await l.ok('fork', { position, targetDb: db });
    const call = async (req: Record<string, unknown>) => await (handlers.audit as (r: unknown, c: unknown) => Promise<Res>)(req, { db });
    const all = await call({});
    expect(all.ok, JSON.stringify(all.error)).toBe(true);
    out.push(...all.audits, ...(await call({ thresholds: TIGHT })).audits);
  }
  return out;
}

let l: Ledger | null = null;
afterEach(() => {
  l?.cleanup();
  l = null;
});

describe('the audit report, byte for byte', () => {
  const golden: Record<string, string[]> = existsSync(FIXTURE) ? JSON.parse(readFileSync(FIXTURE, 'utf8')) : {};
  const produced: Record<string, string[]> = {};
  const update = updatingGolden();

  // the same requests on each engine: the same reports, byte for byte
  for (const engine of ENGINE_NAMES)
    for (const s of SCENARIOS) {
      it(`${s.name} (${engine})`, async () => {
        l = newLedger(engine);
        const audits = (await s.run(l)).map((a) => JSON.stringify(a));
        if (engine === 'sqlite') produced[s.name] = audits;
        if (update && engine === 'sqlite') return;
        expect(golden[s.name], `no golden reports for ${s.name}`).toBeDefined();
        expect(audits.length).toBe(golden[s.name]!.length);
        for (const [i, a] of audits.entries()) expect(a, `${s.name}, report ${i}`).toBe(golden[s.name]![i]);
      });
    }

  it('covers every finding code, every verdict and every status', () => {
    const all = Object.values(update ? produced : golden)
      .flat()
      .map((a) => JSON.parse(a) as Res);
    const codes = new Set(all.flatMap((a) => a.findings.map((f: Res) => `${f.code}`)));
    expect([...codes].sort()).toEqual(Object.keys(FINDING_CODES).sort());
    expect(new Set(all.map((a) => a.verdict))).toEqual(new Set(['pass', 'warn', 'fail', 'in_flight']));
    expect(new Set(all.map((a) => a.status))).toEqual(new Set(['completed', 'failed', 'running']));
    if (update) writeGolden(FIXTURE, `${JSON.stringify(produced, null, 1)}\n`);
  });
});
