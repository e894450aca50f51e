// The fleet safety matrix through its handlers: cells equal to the same migrations run one by one
// through the handlers (requests written out here by hand), the same with one and two worker
// threads, Firecracker 1.13 → 1.14 naming kvmclockCtrl on exactly the cells it fixes, the record
// in the ledger and a cell run again from it, coded errors naming the field, and the outputs.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventSummary } from '../../handlers/cli/format.js';
import { closeStores } from '../../handlers/context.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';

let l: Ledger;
afterEach(async () => {
  await closeStores();
  l?.cleanup();
});

const S = 1_000_000_000;
const HOSTS = [
  { name: 'a', tscKhz: 3_000_000 },
  { name: 'b', tscKhz: 2_600_000, kernel: 'linux-6.6' },
];
const GUESTS = [{}, { name: 'old', kernel: '5.10', ntp: { client: 'none' } }];
// 4 pairs × 2 strategies × 2 blackouts × 2 guests = 32 cells
const SMALL = { hosts: HOSTS, strategies: ['qemu', 'firecracker@1.13'], guests: GUESTS, blackoutsNs: [String(0.3 * S), String(30 * S)] };

/** A cell as the matrix answers it, less its index (compared across matrices of other shapes). */
const bare = ({ index: _i, ...c }: Record<string, any>) => c;

describe('the matrix', () => {
  it('each cell equals the same migration run one by one through the handlers, with its guest', async () => {
    l = newLedger();
    const m = await l.ok('matrix', { ...SMALL, workers: 1 });
    expect(m.cells).toHaveLength(32);
    expect(m.summary.pass + m.summary.warn + m.summary.fail).toBe(32);
    // Each by hand on a fresh ledger: the source host up 7 days at true time 0 (3 GHz: 3e9 × 604 800 =
    // 1 814 400 000 000 000 cycles; 2.6 GHz: 1 572 480 000 000 000), the destination up 1 day
    // (3 GHz: 259 200 000 000 000; 2.6 GHz: 224 640 000 000 000); kvmclock on both vCPUs, 10 s of uptime.
    const counter = { a: { src: '1814400000000000', dst: '259200000000000' }, b: { src: '1572480000000000', dst: '224640000000000' } } as const;
    // cells 3 (a → a, qemu, 30 s, old), 4 (a → a, firecracker 1.13, 300 ms, default),
    // 14 (a → b, firecracker, 30 s, default), 25 (b → b, qemu, 300 ms, old)
    for (const i of [3, 4, 14, 25]) {
      const c = m.cells[i];
      const one = newLedger();
      try {
        const from = HOSTS.find((h) => h.name === c.from)!;
        const to = HOSTS.find((h) => h.name === c.to)!;
        const { name: _f, ...fromClass } = from;
        const { name: _t, ...toClass } = to;
        await one.ok('createHost', { ...fromClass, hostId: `src:${c.from}`, initialTsc: counter[c.from as 'a' | 'b'].src });
        await one.ok('createHost', { ...toClass, hostId: `dst:${c.to}`, initialTsc: counter[c.to as 'a' | 'b'].dst });
        await one.ok('createVm', { vmId: 'guest', hostId: `src:${c.from}`, vcpus: 2 });
        await one.ok('runVcpu', { vmId: 'guest' });
        for (const v of [0, 1]) await one.ok('guest', { vmId: 'guest', vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 + 0x1000 * v });
        await one.ok('advanceTime', { ns: 10 * S });
        const { name: _n, ...guest } = (c.guest === 'old' ? GUESTS[1] : GUESTS[0]) as Record<string, unknown>;
        const request = { vmId: 'guest', toHost: `dst:${c.to}`, strategy: c.strategy, blackoutNs: c.blackoutNs, thresholds: { guest } };
        const a = (await one.ok('migrate', request)).audit;
        const worst = (xs: string[]) => xs.reduce((w, x) => (BigInt(x) ** 2n > BigInt(w) ** 2n ? x : w), '0');
        const cell = { verdict: c.verdict, status: c.status, findings: c.findings, tsc: c.worstTscErrorNs, kvmclock: c.worstKvmclockErrorNs, log: c.guestLog };
        expect(cell, `cell ${i}`).toEqual({
          verdict: a.verdict,
          status: a.status,
          findings: [...new Set(a.findings.map((f: { code: string }) => f.code))],
          tsc: worst(a.vcpus.map((v: { tscErrorNs: string }) => v.tscErrorNs)),
          kvmclock: a.kvmclock.errorNs,
          log: a.guest.log.map((x: { text: string }) => x.text),
        });
        if (a.guest.wallClock.curve.length) expect(c.worstRealtimeErrorNs).toBe(worst(a.guest.wallClock.curve.map((p: { errorNs: string }) => p.errorNs)));
      } finally {
        one.cleanup();
      }
    }
    // a 30 s stop: the TSC by value loses it all (firecracker), so the guest's TSC error is about −30 s
    expect(BigInt(m.cells[14].worstTscErrorNs)).toBeLessThan(-29n * BigInt(S));
  }, 120_000);

  it('gives the same cells with one and two worker threads, in the same order', async () => {
    l = newLedger();
    const one = await l.ok('matrix', { ...SMALL, workers: 1 });
    const two = await l.ok('matrix', { ...SMALL, workers: 2 });
    expect(two.workers).toBe(2);
    expect(two.cells).toEqual(one.cells);
    expect(two.summary).toEqual(one.summary);
    // a cell does not depend on the runs before it in its thread: the axes reversed give each cell the same answer
    const rev = await l.ok('matrix', { ...SMALL, strategies: [...SMALL.strategies].reverse(), blackoutsNs: [...SMALL.blackoutsNs].reverse(), workers: 1 });
    const key = (c: Record<string, any>) => `${c.from}|${c.to}|${c.strategy}|${c.blackoutNs}|${c.guest}`;
    const byKey = new Map(rev.cells.map((c: Record<string, any>) => [key(c), bare(c)]));
    for (const c of one.cells) expect(byKey.get(key(c))).toEqual(bare(c));
  }, 180_000);

  it('firecracker@1.13 → @1.14 changes exactly the 30 s cells (the soft lockup of #5322) and names kvmclockCtrl on each', async () => {
    l = newLedger();
    const r = await l.ok('matrix', {
      hosts: HOSTS,
      strategies: ['firecracker@1.13'],
      guests: GUESTS,
      blackoutsNs: [String(0.3 * S), String(30 * S)],
      compareWith: { strategies: ['firecracker@1.14'] },
      workers: 1,
    });
    // a 30 s stop is beyond 2 × watchdog_thresh (20 s): without KVM_KVMCLOCK_CTRL at restore the
    // guest's soft-lockup detector fires; with it (1.14.0) the guest finds PVCLOCK_GUEST_STOPPED
    const thirty = r.cells.filter((c: Record<string, any>) => c.blackoutNs === String(30 * S));
    expect(thirty.every((c: Record<string, any>) => c.findings.includes('soft_lockup_risk'))).toBe(true);
    expect(r.after.cells.some((c: Record<string, any>) => c.findings.includes('soft_lockup_risk'))).toBe(false);
    expect(r.changed.map((c: Record<string, any>) => c.index)).toEqual(thirty.map((c: Record<string, any>) => c.index));
    for (const c of r.changed) {
      expect(c.strategy).toEqual({ before: 'firecracker@1.13', after: 'firecracker@1.14' });
      expect(c.responsible).toEqual([{ axis: 'strategy', name: 'kvmclockCtrl', from: false, to: true }]);
      expect(c.probes).toMatchObject([{ strategy: 'firecracker@1.10.0+kvmclockCtrl=true', reproduces: true, exact: true }]);
    }
    // recorded: the after side and each changed cell's switch
    const ev = (await l.ok('events', { streamId: `matrix-${r.matrixId}` })).events;
    const recorded = r.changed.map((c: Record<string, any>) => ({ index: c.index, ...c.verdict, responsible: ['kvmclockCtrl'] }));
    expect(ev[0].data.after.changed).toEqual(recorded);
    // an after cell run again from the record
    const again = await l.ok('matrixCell', { matrixId: r.matrixId, cell: r.changed[0].index, side: 'after' });
    expect(again.same).toBe(true);
    expect(again.cell.strategy).toBe('firecracker@1.14');
  }, 120_000);

  it('linux-6.18 → linux-5.15 under the QEMU downtime-accounting series names x86.clockRealtime alone', async () => {
    l = newLedger();
    // The series restores kvmclock with KVM_CLOCK_REALTIME; a 5.15 host's KVM_SET_CLOCK takes no
    // flag (clockRealtime, c68dc1b577ea, is 5.16), so kvmclock no longer counts the stop: warn → fail.
    const r = await l.ok('matrix', {
      hosts: [{ name: 'h', tscKhz: 3_000_000 }],
      strategies: ['qemu+downtimeAccounting=true'],
      blackoutsNs: [String(0.3 * S)],
      compareWith: { hosts: [{ name: 'h', tscKhz: 3_000_000, kernel: 'linux-5.15' }] },
      workers: 1,
    });
    expect(r.changed).toHaveLength(1);
    const c = r.changed[0];
    expect(c.verdict).toEqual({ before: 'warn', after: 'fail' });
    expect(c.findings.after).toContain('kvmclock_lost_time');
    // the five x86 switches 5.15 lacks, each flipped alone on both sides (a migration within the class); only one gives the fail
    expect(c.probes.map((p: Record<string, any>) => [p.change.name, p.verdict])).toEqual([
      ['x86.vcpuTscOffsetAttr', 'warn'],
      ['x86.clockRealtime', 'fail'],
      ['x86.vmTscControl', 'warn'],
      ['x86.userSetTscGate', 'warn'],
      ['x86.masterclockRequestOnChange', 'warn'],
    ]);
    expect(c.responsible).toEqual([{ axis: 'host', name: 'x86.clockRealtime', on: 'h', from: true, to: false }]);
  }, 60_000);

  it('is recorded in the ledger, and any cell run again from the record gives the same answer', async () => {
    l = newLedger();
    await l.ok('advanceTime', { ns: 0 });
    const before = (await l.ok('events', { limit: 1 })).lastPosition;
    const r = await l.ok('matrix', { ...SMALL, matrixId: 'rollout-1', workers: 1 });
    expect(r.matrixId).toBe('rollout-1');
    const ev = (await l.ok('events', { streamId: 'matrix-rollout-1' })).events;
    expect(ev.map((e: Record<string, any>) => e.type)).toEqual(['MatrixChecked']);
    const d = ev[0].data;
    expect(d.summary).toEqual(r.summary);
    expect(d.cells).toBe(32);
    expect(d.results.verdicts).toBe(r.cells.map((c: Record<string, any>) => c.verdict[0]).join(''));
    // `log` / `events` say it in one line: the cells counted by verdict
    const count = (v: string) => r.cells.filter((c: Record<string, any>) => c.verdict === v).length;
    expect(eventSummary(ev[0])).toBe(`32 cells: ${count('pass')} pass, ${count('warn')} warn, ${count('fail')} fail`);
    // the plan as run, every default filled in
    // (a week and a day of host uptime, 10 s of guest warm-up, no LAPIC deadline armed, 20 µs per ioctl)
    const setup = { vcpus: 2, sourceUptimeNs: '604800000000000', destinationUptimeNs: '86400000000000', warmupNs: String(10 * S) };
    expect(d.plan.setup).toEqual({ ...setup, sleeperNs: '0', vmmLatencyNs: '20000' });
    expect(d.plan.hosts[1]).toEqual({ name: 'b', arch: 'x86', tscKhz: 2_600_000, kernel: 'linux-6.6' });
    expect(d.plan.guests[1]).toEqual({ name: 'old', settings: { kernel: '5.10', ntp: { client: 'none' } } });
    // only the matrix's stream was written (the cells ran on scratch ledgers)
    const written = (await l.ok('events', { from: before + 1 })).events.map((e: Record<string, any>) => e.streamId);
    expect(written.every((s: string) => s === 'matrix-rollout-1' || s === 'ledger')).toBe(true);
    const state = (await l.ok('stateAt', { streamId: 'matrix-rollout-1' })).state;
    expect(state).toMatchObject({ matrixId: 'rollout-1', cells: 32, summary: r.summary, compared: false });
    for (const i of [0, 14, 31]) {
      const c = await l.ok('matrixCell', { matrixId: 'rollout-1', cell: i });
      expect(c.same).toBe(true);
      expect(c.cell).toEqual(r.cells[i]);
      expect(c.recorded).toEqual({ verdict: r.cells[i].verdict, findings: r.cells[i].findings });
      expect(c.audit.migrationId).toBe('m1');
    }
    const html = await l.ok('matrixCell', { matrixId: 'rollout-1', cell: 14, format: 'html' });
    expect(html.html).toContain("default-src 'none'");
    expect(html.html).toContain('Migration m1');
    expect(await l.call('matrix', { ...SMALL, matrixId: 'rollout-1', workers: 1 })).toMatchObject({ ok: false, error: { code: 'conflict' } });
    const refusal = (field: string) => ({ ok: false, error: { code: 'invalid_request', details: { field } } });
    expect(await l.call('matrixCell', { matrixId: 'rollout-1', cell: 32 })).toMatchObject(refusal('cell'));
    expect(await l.call('matrixCell', { matrixId: 'rollout-1', cell: 0, side: 'after' })).toMatchObject(refusal('side'));
    expect(await l.call('matrixCell', { matrixId: 'nope', cell: 0 })).toMatchObject({ ok: false, error: { code: 'not_found' } });
  }, 120_000);

  it("takes the ledger's own hosts as the classes (fleet), and marks a strategy with no implementation for the architecture n/a", async () => {
    l = newLedger();
    await l.ok('createHost', { hostId: 'web-1', tscKhz: 2_100_000, kernel: 'linux-7.1', initialTsc: '123' });
    await l.ok('createHost', { hostId: 'arm-1', arch: 'arm64', cntfrqHz: '25000000' });
    const r = await l.ok('matrix', { fleet: true, strategies: ['offset-corrected', 'counter-offset'], blackoutsNs: [String(S)], workers: 1 });
    // 2 pairs of one architecture (web-1 → web-1, arm-1 → arm-1) and 2 across, left out
    expect(r.skipped).toEqual({ crossArchPairs: 2 });
    // (the ledger's hosts in the order of their ids)
    expect(r.cells.map((c: Record<string, any>) => [c.from, c.to, c.strategy, c.verdict === 'n/a'])).toEqual([
      ['arm-1', 'arm-1', 'offset-corrected', true],
      ['arm-1', 'arm-1', 'counter-offset', false],
      ['web-1', 'web-1', 'offset-corrected', false],
      ['web-1', 'web-1', 'counter-offset', true],
    ]);
    expect(r.summary.notApplicable).toBe(2);
    // the class is what createHost asked, less the machine's own counter
    const plan = (await l.ok('events', { streamId: `matrix-${r.matrixId}` })).events[0].data.plan;
    expect(plan.hosts[1]).toEqual({ name: 'web-1', arch: 'x86', tscKhz: 2_100_000, kernel: 'linux-7.1' });
  }, 60_000);
});

describe('the fleet with its recorded guests', () => {
  it("takes the guests recorded with the ledger's VMs as the guest classes, one per distinct setting, named by their VMs", async () => {
    l = newLedger();
    await l.ok('createHost', { hostId: 'h1', tscKhz: 3_000_000 });
    const quiet = { kernel: '6.6', ntp: { client: 'none' } };
    await l.ok('createVm', { vmId: 'a', hostId: 'h1', vcpus: 2, guest: quiet });
    await l.ok('createVm', { vmId: 'b', hostId: 'h1', vcpus: 2, guest: quiet });
    await l.ok('createVm', { vmId: 'c', hostId: 'h1', vcpus: 2, guest: { kernel: '5.10' } });
    await l.ok('configureGuest', { vmId: 'c', guest: { ntp: { client: 'chrony' } } });
    const r = await l.ok('matrix', { fleet: true, strategies: ['qemu'], blackoutsNs: [String(S)], workers: 1 });
    expect(r.cells.map((c: Record<string, any>) => c.guest).sort()).toEqual(['a,b', 'c']);
    const plan = (await l.ok('events', { streamId: `matrix-${r.matrixId}` })).events[0].data.plan;
    const byName = Object.fromEntries(plan.guests.map((g: { name: string; settings: Record<string, any> }) => [g.name, g.settings]));
    expect([byName['a,b'].kernel, byName['a,b'].ntp.client, byName.c.kernel, byName.c.ntp.client]).toEqual(['6.6', 'none', '5.10', 'chrony']);
    // guests given in the request still win over the recorded ones
    const given = await l.ok('matrix', { fleet: true, guests: [{ name: 'what-if' }], strategies: ['qemu'], blackoutsNs: [String(S)], workers: 1 });
    expect(given.cells.map((c: Record<string, any>) => c.guest)).toEqual(['what-if']);
  }, 120_000);
});

describe('bad specs', () => {
  const refused = async (request: Record<string, unknown>) => (await l.call('matrix', { ...SMALL, workers: 1, ...request })).error;

  it('get coded errors naming the field, with the nearest known name', async () => {
    l = newLedger();
    await l.ok('advanceTime', { ns: 0 });
    const before = (await l.ok('events', { limit: 1 })).lastPosition;
    expect(await refused({ strategies: ['qemu', 'firecracker@1.99'] })).toMatchObject({ code: 'invalid_request', details: { field: 'strategies.1' } });
    expect((await refused({ strategies: ['firecracker@1.99'] })).message).toContain("did you mean '1.16.1'?");
    expect((await refused({ strategies: ['firecraker@1.13'] })).message).toContain("did you mean 'firecracker'?");
    expect((await refused({ strategies: ['firecracker@1.2'] })).message).toContain("did you mean 'firecracker@1.7.0'?");
    expect((await refused({ strategies: ['firecracker@1.13+kvmclockCtl=true'] })).message).toContain("did you mean 'kvmclockCtrl'?");
    expect(await refused({ hosts: [{ name: 'a', tscKhz: 3_000_000, kernel: 'linux-6.81' }] })).toMatchObject({ details: { field: 'hosts.0.kernel' } });
    expect((await refused({ hosts: [{ name: 'a', tscKhz: 3_000_000, kernel: 'linux-6.81' }] })).message).toContain('did you mean');
    expect(await refused({ hosts: [{ name: 'a' }] })).toMatchObject({ details: { field: 'hosts.0.tscKhz' } });
    expect(await refused({ hosts: [HOSTS[0], HOSTS[0]] })).toMatchObject({ details: { field: 'hosts.1' } });
    expect(await refused({ guests: [{ kernel: '5.10', ntp: { clinet: 'none' } }] })).toMatchObject({ details: { field: 'guests.0.ntp' } });
    expect(await refused({ blackoutsNs: [] })).toMatchObject({ details: { field: 'blackoutsNs' } });
    expect(await refused({ pairs: [['a', 'c']] })).toMatchObject({ code: 'invalid_request', details: { field: 'pairs.0.1' } });
    const arm = { name: 'arm', arch: 'arm64', cntfrqHz: '25000000' };
    expect(await refused({ hosts: [...HOSTS, arm], pairs: [['a', 'arm']] })).toMatchObject({ details: { field: 'pairs.0' } });
    expect(await refused({ compareWith: { strategies: ['qemu'] } })).toMatchObject({ details: { field: 'compareWith.strategies' } });
    expect(await refused({ compareWith: {} })).toMatchObject({ details: { field: 'compareWith' } });
    expect(await refused({ fleet: true })).toMatchObject({ details: { field: 'hosts' } });
    // nothing was written
    expect((await l.ok('events', { limit: 1 })).lastPosition).toBe(before);
  });

  it('a matrix larger than the bound is refused before it starts', async () => {
    l = newLedger();
    // 4 pairs × 2 × 2 × 2 = 32 cells, twice with compareWith
    expect(await refused({ maxCells: 31 })).toMatchObject({ code: 'invalid_request', details: { field: 'maxCells', cells: 32, max: 31 } });
    const e = await refused({ maxCells: 63, compareWith: { strategies: ['qemu', 'firecracker@1.14'] } });
    expect(e).toMatchObject({ details: { field: 'maxCells', cells: 64, max: 63 } });
    expect(e.message).toContain('4 host pairs × 2 strategies × 2 blackouts × 2 guests, before and after');
    // the default bound, 20 000: 3 hosts (9 pairs) × 9 strategies × 64 blackouts × 5 guests = 25 920
    const many = Array.from({ length: 64 }, (_, i) => String((i + 1) * 1_000_000));
    const big = await refused({
      hosts: [...HOSTS, { name: 'c', tscKhz: 2_000_000 }],
      strategies: [...Array.from({ length: 8 }, (_, i) => `firecracker@1.${7 + i}`), 'qemu'],
      guests: ['4.19', '5.10', '5.15', '6.1', '6.6'].map((kernel) => ({ kernel })),
      blackoutsNs: many,
    });
    expect(big).toMatchObject({ details: { field: 'maxCells', cells: 25_920, max: 20_000 } });
    expect(await refused({ maxCells: 200_001 })).toMatchObject({ details: { field: 'maxCells' } });
    // nothing ran, nothing was written: the ledger was never even created
    expect(existsSync(l.db)).toBe(false);
  });
});

describe('outputs', () => {
  it('CSV, and the heatmap with a report for each cell that does not pass', async () => {
    l = newLedger();
    const csv = (await l.ok('matrix', { ...SMALL, format: 'csv', workers: 1 })).csv as string;
    const lines = csv.trimEnd().split('\r\n');
    expect(lines).toHaveLength(33);
    expect(lines[0]!.split(',').slice(0, 7)).toEqual(['index', 'from', 'to', 'strategy', 'guest', 'blackout_ns', 'verdict']);
    expect(lines[15]!.startsWith('14,a,b,firecracker@1.13,default,30000000000,')).toBe(true);

    const dir = join(l.dir, 'reports');
    const r = await l.ok('matrix', { ...SMALL, format: 'html', reportsDir: dir, workers: 1 });
    const files = readdirSync(dir).sort();
    const failing = r.cells.filter((c: Record<string, any>) => c.verdict !== 'pass').map((c: Record<string, any>) => `cell-${c.index}.html`);
    expect(files).toEqual(['index.html', ...failing].sort());
    const index = readFileSync(join(dir, 'index.html'), 'utf8');
    expect(index).toContain(`content="default-src 'none'`);
    expect(index).not.toMatch(/<script/i);
    const links = [...index.matchAll(/href="([^"]+)"/g)].map((m) => m[1]);
    expect(links.sort()).toEqual(failing.sort());
    for (const f of failing) expect(existsSync(join(dir, f))).toBe(true);
    // the response's page is the one written
    expect(r.html).toBe(index);
    // a directory with files in it is not written into
    const again = await l.call('matrix', { ...SMALL, reportsDir: dir, workers: 1 });
    expect(again.error).toMatchObject({ code: 'invalid_request', details: { field: 'reportsDir' } });
  }, 120_000);
});

describe('the command line', () => {
  const root = join(import.meta.dirname, '..', '..');
  const main = join(root, 'dist/handlers/cli/main.js');
  const cli = (db: string, ...args: string[]) => spawnSync(process.execPath, [main, '--db', db, ...args], { encoding: 'utf8' });

  it('takes a spec file with options over it, draws the verdict grid, writes CSV, and runs a cell again', () => {
    l = newLedger();
    const spec = join(l.dir, 'rollout.json');
    writeFileSync(spec, JSON.stringify({ hosts: HOSTS, strategies: ['qemu'], guests: GUESTS, blackoutsNs: ['1000000000'] }));
    const options = ['--strategies', 'firecracker@1.13', '--compare-strategies', 'firecracker@1.14', '--blackouts', '300ms,30s', '--workers', '1'];
    const r = cli(l.db, 'matrix', '--spec', spec, ...options);
    expect(r.status, r.stderr).toBe(0);
    // 4 pairs × 2 guests rows, 1 strategy × 2 blackouts columns; the after side's changed cells with kvmclockCtrl
    expect(r.stdout).toMatch(/^matrix: +x1$/m);
    expect(r.stdout).toMatch(/^a → b +old +F F$/m);
    expect(r.stdout).toContain('1: firecracker@1.13 300 ms');
    expect(r.stdout).toContain('kvmclockCtrl false → true');
    const csv = join(l.dir, 'x2.csv');
    const w = cli(l.db, 'matrix', '--spec', spec, '--format', 'csv', '--out', csv, '--workers', '1');
    expect(w.status, w.stderr).toBe(0);
    expect(w.stdout).toMatch(/^wrote \d+ bytes to /);
    expect(readFileSync(csv, 'utf8').split('\r\n')).toHaveLength(8 + 2);
    const c = cli(l.db, 'matrix', 'cell', 'x1', '3', '--after');
    expect(c.status, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^same as recorded: +yes$/m);
    // a duration without a unit is a usage error (exit 2), a missing spec file a refusal (exit 1)
    expect(cli(l.db, 'matrix', '--spec', spec, '--blackouts', '300').status).toBe(2);
    expect(cli(l.db, 'matrix', '--spec', join(l.dir, 'none.json')).status).toBe(1);
  }, 120_000);
});

describe('workers, progress, engines', () => {
  it("a cell refused inside a worker thread is the request's coded error, naming the cell; progress counts cells", async () => {
    const { runJobs } = await import('../../handlers/use-cases/matrix-pool.js');
    const host = (name: string, tscKhz: number) => ({ name, arch: 'x86' as const, kernel: 'linux-6.18', tscKhz });
    const setup = { vcpus: 1, sourceUptimeNs: 0n, destinationUptimeNs: 0n, warmupNs: 1_000_000n, sleeperNs: 0n, vmmLatencyNs: 0n };
    const guests = [{ name: 'g', settings: {} }];
    const spec = { strategy: 'qemu', blackoutNs: 1_000_000n, guests, setup };
    const run = (i: number, tscKhz: number) => ({ run: { run: i, firstCell: i, from: host('a', 3_000_000), to: host('b', tscKhz), ...spec } });
    // 5 kHz is not a plausible TSC rate: createHost refuses the third run's destination
    const bad = runJobs([run(0, 3_000_000), run(1, 3_000_000), run(2, 5), run(3, 3_000_000)], { workers: 2 });
    await expect(bad).rejects.toMatchObject({ code: 'invalid_request', details: { cell: 2, step: 'createHost' } });
    const seen: number[] = [];
    const good = await runJobs([run(0, 3_000_000), run(1, 2_000_000)], { workers: 2, onCells: (n) => seen.push(n) });
    expect(good.map((cells) => cells.length)).toEqual([1, 1]);
    expect(seen.sort()).toEqual([1, 2]);
  }, 120_000);

  it("the command line's progress bar is sized in cells from the request", async () => {
    const { COMMANDS } = await import('../../handlers/cli/commands.js');
    const count = COMMANDS.matrix[0]!.progress!.count!;
    // 4 pairs × 2 strategies × 2 blackouts × 2 guests, twice with compareWith; fleet: unknown (0)
    expect(await count(SMALL)).toBe(32);
    expect(await count({ ...SMALL, compareWith: { strategies: ['qemu', 'qemu'] } })).toBe(64);
    expect(await count({ ...SMALL, hosts: undefined, fleet: true })).toBe(0);
  });

  it('records on a PostgreSQL ledger, the fleet read from it, and runs a cell again from there', async () => {
    l = newLedger('postgres');
    await l.ok('createHost', { hostId: 'pg-a', tscKhz: 2_500_000 });
    const compareWith = { strategies: ['firecracker@1.14'] };
    const request = { fleet: true, strategies: ['firecracker@1.13'], blackoutsNs: [String(30 * S)], workers: 1, compareWith };
    const r = await l.ok('matrix', request);
    expect(r.changed.map((c: Record<string, any>) => c.responsible.map((x: Record<string, any>) => x.name))).toEqual([['kvmclockCtrl']]);
    const again = await l.ok('matrixCell', { matrixId: r.matrixId, cell: 0, side: 'after' });
    expect([again.same, again.cell]).toEqual([true, r.after.cells[0]]);
  }, 120_000);
});
