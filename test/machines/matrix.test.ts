// The matrix's pure parts: cell indices over the axes, host pairs of one architecture, the
// counters hosts start from, guest labels, the compact record, the changes of a before/after
// (VMM switches, kernel switches, host fields, guest settings) and the CSV. Numbers by hand.
import { describe, expect, it } from 'vitest';
import { resolveStrategyRelease } from '../../machines/migration/strategies/releases.js';
import { probesOf, profileWith } from '../../machines/matrix/changes.js';
import { matrixCsv } from '../../machines/matrix/csv.js';
import { allPairs, cellAt, cellCount, cellRun, guestLabel, indexOf, initialCounter, runAt } from '../../machines/matrix/plan.js';
import type { HostClass, MatrixPlan } from '../../machines/matrix/plan.js';
import { compactCells, planFromJson, planToJson, recordedCell, summaryOf } from '../../machines/matrix/record.js';
import { switchFlips } from '../../machines/replay/release-bisect.js';
import { resolveProfile } from '../../kvm/profiles.js';
import type { MatrixCell } from '../../machines/matrix/cells.js';
import { span } from '../../machines/export/html/matrix.js';

const host = (name: string, more: Partial<HostClass> = {}): HostClass => ({ name, arch: 'x86', kernel: 'linux-6.18', tscKhz: 3_000_000, ...more });
const setup = { vcpus: 2, sourceUptimeNs: 1n, destinationUptimeNs: 1n, warmupNs: 1n, sleeperNs: 0n, vmmLatencyNs: 0n };

// 3 pairs × 2 strategies × 2 blackouts × 3 guests = 36 cells, 12 runs
const plan: MatrixPlan = {
  hosts: [host('a'), host('b', { cntfrqHz: 25_000_000n, realtimeOffsetNs: -5n })],
  pairs: [
    [0, 0],
    [0, 1],
    [1, 0],
  ],
  strategies: ['qemu', 'firecracker@1.13'],
  guests: [
    { name: 'g0', settings: {} },
    { name: 'g1', settings: { kernel: '5.10' } },
    { name: 'g2', settings: { ntp: { client: 'none' } } },
  ],
  blackoutsNs: [300_000_000n, 30_000_000_000n],
  setup,
};

describe('cells and runs', () => {
  it('index = ((pair × S + strategy) × B + blackout) × G + guest, both ways', () => {
    expect(cellCount(plan)).toBe(36);
    // 17 = ((1×2 + 0)×2 + 1)×3 + 2: pair 1 (a → b), qemu, 30 s, guest g2
    expect(cellAt(plan, 17)).toEqual({ index: 17, pair: 1, strategy: 0, blackout: 1, guest: 2 });
    for (let i = 0; i < 36; i++) expect(indexOf(plan, cellAt(plan, i))).toBe(i);
    expect(() => cellAt(plan, 36)).toThrow(/outside the matrix \(0\.\.35\)/);
  });

  it("a run holds a migration's guests; a cell's run only its own guest", () => {
    // run 5 = cells 15, 16, 17
    const r = runAt(plan, 5);
    const shown = [r.firstCell, r.from.name, r.to.name, r.strategy, r.blackoutNs, r.guests.map((g) => g.name)];
    expect(shown).toEqual([15, 'a', 'b', 'qemu', 30_000_000_000n, ['g0', 'g1', 'g2']]);
    const c = cellRun(plan, 17);
    expect([c.firstCell, c.guests.map((g) => g.name)]).toEqual([17, ['g2']]);
  });

  it('all pairs are of one architecture: a class with itself included, the others counted', () => {
    const hosts = [host('a'), host('b'), { name: 'c', arch: 'arm64', kernel: 'linux-6.18', cntfrqHz: 25_000_000n } as HostClass];
    expect(allPairs(hosts)).toEqual({
      pairs: [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1],
        [2, 2],
      ],
      crossArch: 4,
    });
  });

  it("a host starts from its rate × its role's uptime, unless its counter is given", () => {
    // 2.5 GHz × 86 400 s = 216 000 000 000 000 cycles
    expect(initialCounter(host('x', { tscKhz: 2_500_000 }), 86_400_000_000_000n)).toBe(216_000_000_000_000n);
    // 25 MHz × 2 s
    expect(initialCounter({ name: 'y', arch: 'arm64', kernel: 'linux-6.18', cntfrqHz: 25_000_000n }, 2_000_000_000n)).toBe(50_000_000n);
    expect(initialCounter(host('z', { initialTsc: 7n }), 86_400_000_000_000n)).toBe(7n);
  });

  it('a guest is named by what it sets, nested settings as dotted paths', () => {
    expect(guestLabel({ ntp: { pollNs: '16000000000', client: 'none' }, kernel: '5.10' })).toBe('kernel=5.10 ntp.client=none ntp.pollNs=16000000000');
    expect(guestLabel({})).toBe('default');
  });
});

describe('the record', () => {
  const cells = [
    { verdict: 'pass' as const, findings: [] },
    { verdict: 'fail' as const, findings: ['tsc_lost_time', 'soft_lockup_risk'] },
    { verdict: 'n/a' as const, findings: [] },
    { verdict: 'fail' as const, findings: ['tsc_lost_time', 'soft_lockup_risk'] },
    { verdict: 'warn' as const, findings: ['tsc_lost_time'] },
  ];

  it('keeps one letter per verdict and each distinct list of finding codes once', () => {
    const c = compactCells(cells);
    expect(c).toEqual({ verdicts: 'pfnfw', findingSets: ['', 'tsc_lost_time,soft_lockup_risk', 'tsc_lost_time'], findings: [0, 1, 0, 1, 2] });
    expect(cells.map((_, i) => recordedCell(c, i))).toEqual(cells);
    expect(summaryOf(cells.map((x) => x.verdict))).toEqual({ pass: 1, warn: 1, fail: 2, notApplicable: 1 });
  });

  it('the plan reads back as it was run, u64s as bigint again', () => {
    const back = planFromJson(JSON.parse(JSON.stringify(planToJson(plan))));
    expect(back).toEqual(plan);
  });
});

describe('before and after: the changes, each alone', () => {
  it("a release's switch flips keep the before release and its own overrides", () => {
    expect(switchFlips(resolveStrategyRelease('firecracker@1.13'), resolveStrategyRelease('firecracker@1.14'))).toEqual([
      { switch: 'kvmclockCtrl', from: false, to: true, spec: 'firecracker@1.10.0+kvmclockCtrl=true' },
    ]);
    // 1.13 with #5809 forced on, against 1.14.0 (which has it off): two flips, each spec exactly one switch away from the before
    const before = resolveStrategyRelease('firecracker@1.13+clockRealtimeOptIn=true');
    const flips = switchFlips(before, resolveStrategyRelease('firecracker@1.14'));
    expect(flips.map((f) => f.spec)).toEqual(['firecracker@1.10.0+clockRealtimeOptIn=true,kvmclockCtrl=true', 'firecracker@1.10.0+clockRealtimeOptIn=false']);
    for (const f of flips) expect(resolveStrategyRelease(f.spec).switches).toEqual({ ...before.switches, [f.switch]: f.to });
  });

  it('a kernel switch is set on the profile spec, keeping its overrides', () => {
    expect(profileWith('linux-6.18', 'x86.periodicClockSync', false)).toBe('linux-6.18+x86.periodicClockSync=false');
    const both = 'linux-6.18+x86.clockRealtime=false,x86.periodicClockSync=false';
    expect(profileWith('linux-6.18+x86.clockRealtime=false', 'x86.periodicClockSync', false)).toBe(both);
    expect(resolveProfile(profileWith('linux-6.18+x86.clockRealtime=false', 'x86.clockRealtime', true)).x86.clockRealtime).toBe(true);
  });

  it('linux-6.18 → linux-7.1 on a class is its three switches, each on both sides of a migration within the class', () => {
    const after: MatrixPlan = { ...plan, hosts: [host('a', { kernel: 'linux-7.1' }), plan.hosts[1]!] };
    // cell 0: a → a
    const probes = probesOf(cellRun(plan, 0), cellRun(after, 0));
    expect(probes.map((p) => [p.change.name, p.change.from, p.change.to, p.run.from.kernel, p.run.to.kernel])).toEqual([
      ['x86.periodicClockSync', true, false, 'linux-6.18+x86.periodicClockSync=false', 'linux-6.18+x86.periodicClockSync=false'],
      ['x86.globalClockUpdateDelay', true, false, 'linux-6.18+x86.globalClockUpdateDelay=false', 'linux-6.18+x86.globalClockUpdateDelay=false'],
      ['x86.globalClockUpdateRateLimit', false, true, 'linux-6.18+x86.globalClockUpdateRateLimit=true', 'linux-6.18+x86.globalClockUpdateRateLimit=true'],
    ]);
    // cell 15: a → b, only the source changes
    const ab = probesOf(cellRun(plan, 15), cellRun(after, 15));
    expect(ab.every((p) => p.run.to.kernel === 'linux-6.18' && p.run.from.kernel !== 'linux-6.18')).toBe(true);
  });

  it('host fields and guest settings change one at a time; another VMM is one change', () => {
    const after: MatrixPlan = {
      ...plan,
      strategies: ['crosvm', 'firecracker@1.13'],
      hosts: [host('a', { tscScaling: false, tscKhz: 2_000_000 }), plan.hosts[1]!],
      guests: [{ name: 'g0', settings: { kernel: '6.1', ntp: { client: 'none' } } }, ...plan.guests.slice(1)],
    };
    const probes = probesOf(cellRun(plan, 0), cellRun(after, 0));
    expect(probes.map((p) => [p.change.axis, p.change.name, p.change.from, p.change.to])).toEqual([
      ['strategy', 'strategy', 'qemu', 'crosvm'],
      ['host', 'tscKhz', 3_000_000, 2_000_000],
      ['host', 'tscScaling', null, false],
      ['guest', 'kernel', null, '6.1'],
      ['guest', 'ntp.client', null, 'none'],
    ]);
    expect(probes[3]!.run.guests).toEqual([{ name: 'g0', settings: { kernel: '6.1' } }]);
    expect(probes[1]!.run.from).toEqual({ ...plan.hosts[0], tscKhz: 2_000_000 });
  });
});

describe('CSV', () => {
  const cell = (i: number, guest: string): MatrixCell => ({
    index: i,
    from: 'a',
    to: 'b',
    strategy: 'qemu',
    guest,
    blackoutNs: 300_000_000n,
    verdict: 'warn',
    status: 'completed',
    findings: ['tsc_lost_time', 'wall_clock_behind'],
    worstTscErrorNs: -300_000_000n,
    worstKvmclockErrorNs: null,
    worstRealtimeErrorNs: 5n,
    guestLog: [],
    outcome: '',
  });

  it('one row per cell, CRLF, a field with a comma or a quote quoted', () => {
    const csv = matrixCsv([cell(0, 'plain'), cell(1, 'kernel=5.10, "old"')]);
    expect(csv.split('\r\n')).toEqual([
      'index,from,to,strategy,guest,blackout_ns,verdict,status,findings,worst_tsc_error_ns,worst_kvmclock_error_ns,worst_realtime_error_ns',
      '0,a,b,qemu,plain,300000000,warn,completed,tsc_lost_time wall_clock_behind,-300000000,,5',
      '1,a,b,qemu,"kernel=5.10, ""old""",300000000,warn,completed,tsc_lost_time wall_clock_behind,-300000000,,5',
      '',
    ]);
  });
});

describe('the heatmap', () => {
  it('writes a blackout as people do, exact to the ns', () => {
    expect([300_000_000n, 1_500_000_000n, 30_000_000_000n, 20_000n, 1_000_000_001n, 999n, '2000000'].map(span)).toEqual([
      '300 ms',
      '1.5 s',
      '30 s',
      '20 µs',
      '1.000000001 s',
      '999 ns',
      '2 ms',
    ]);
  });
});
