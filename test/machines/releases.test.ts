// VMM releases as data: resolving `name@X.Y[.Z][+switch=bool]`, listing them, and recording the
// release a migration ran (absent for the baseline, so logs and reports of bare names are unchanged).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { renderAuditReport, renderStrategies } from '../../handlers/cli/render.js';
import { baselineRelease, isBaseline, RELEASES, releaseTable, resolveStrategyRelease } from '../../machines/migration/strategies/releases.js';
import { STRATEGY_NAMES } from '../../machines/migration/strategies/index.js';
import { expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';

describe('resolveStrategyRelease', () => {
  it('holds every release with its full switch map, each switch off until the release that turns it on', () => {
    const table = (name: string) => RELEASES[name]!.releases.map((r) => [r.version, r.switches]);
    const fc = (z: boolean, k: boolean, c: boolean) => ({ zeroDeadlineFilled: z, deadlineAfterTsc: z, kvmclockCtrl: k, clockRealtimeOptIn: c });
    expect(table('firecracker')).toEqual([
      ['1.7.0', fc(false, false, false)],
      ['1.8.0', fc(true, false, false)],
      ['1.14.0', fc(true, true, false)],
      ['1.16.0', fc(true, true, true)],
    ]);
    expect(table('cloud-hypervisor')).toEqual([
      ['50.0', { clockBeforeResume: false, realtimeFilled: false, syncTscOffsets: false, arm64Downtime: false }],
      ['52.0', { clockBeforeResume: true, realtimeFilled: false, syncTscOffsets: false, arm64Downtime: false }],
      ['53.0', { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: false, arm64Downtime: false }],
      ['54.0', { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true }],
    ]);
    expect(table('qemu')).toEqual([['10.1.0', { downtimeAccounting: false }]]);
    // each release's own copy: changing one does not change the next
    expect(RELEASES.firecracker!.releases[1]!.switches).not.toBe(RELEASES.firecracker!.releases[2]!.switches);
  });

  it('picks the newest modelled release at or below the version; the bare name is the newest', () => {
    expect(resolveStrategyRelease('firecracker@1.12').release).toBe('1.8.0');
    expect(resolveStrategyRelease('firecracker@1.12.1').release).toBe('1.8.0');
    expect(resolveStrategyRelease('firecracker@1.7').release).toBe('1.7.0');
    expect(resolveStrategyRelease('firecracker@1.13.9').release).toBe('1.8.0');
    expect(resolveStrategyRelease('firecracker@1.14').release).toBe('1.14.0');
    expect(resolveStrategyRelease('firecracker@2').release).toBe('1.16.0');
    expect(resolveStrategyRelease('firecracker').release).toBe('1.16.0');
    expect(resolveStrategyRelease('cloud-hypervisor@51.1').release).toBe('50.0');
    // versions compare numerically, not as text
    expect(resolveStrategyRelease('firecracker@1.9').release).toBe('1.8.0');
  });

  it('flips switches, and refuses an older version, a malformed one, or an unknown switch', () => {
    expect(resolveStrategyRelease('firecracker@1.12+kvmclockCtrl=true,clockRealtimeOptIn=true').switches).toEqual({ zeroDeadlineFilled: true, deadlineAfterTsc: true, kvmclockCtrl: true, clockRealtimeOptIn: true });
    expect(() => resolveStrategyRelease('firecracker@1.6')).toThrow(/older than every modelled release \(modelled: 1\.7\.0, 1\.8\.0, 1\.14\.0, 1\.16\.0\)/);
    expect(() => resolveStrategyRelease('firecracker@one')).toThrow(/malformed version/);
    expect(() => resolveStrategyRelease('firecracker@1.2.3.4')).toThrow(/malformed version/);
    expect(() => resolveStrategyRelease('firecracker+kvmclockCtrl=yes')).toThrow(/bad switch override/);
    expect(() => resolveStrategyRelease('firecracker+nope=true')).toThrow(/unknown switch 'nope' for firecracker \(switches: zeroDeadlineFilled/);
    expect(() => resolveStrategyRelease('crosvm+x=true')).toThrow(/it has none/);
  });

  it('gives the bare name exactly the newest release: cloud-hypervisor is cloud-hypervisor@54 (syncTscOffsets on)', () => {
    expect(resolveStrategyRelease('cloud-hypervisor')).toEqual({ strategy: 'cloud-hypervisor', release: '54.0', switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true } });
    expect(resolveStrategyRelease('cloud-hypervisor')).toEqual(resolveStrategyRelease('cloud-hypervisor@54'));
    for (const name of STRATEGY_NAMES) {
      const newest = releaseTable(name).releases.at(-1)!;
      expect(resolveStrategyRelease(name)).toEqual({ strategy: name, release: newest.version, switches: newest.switches });
    }
  });

  it('has tables in ascending order, and a frozen baseline for logs without a release (cloud-hypervisor: 54.0 without the offset sync)', () => {
    for (const t of Object.values(RELEASES)) {
      // X.Y.Z as one number (each part below 1000 here): strictly ascending
      const key = (v: string) => v.split('.').map(Number).reduce((n, x, i) => n + x * 1000 ** (2 - i), 0);
      const keys = t.releases.map((r) => key(r.version));
      expect(keys).toEqual([...keys].sort((x, y) => x - y));
      expect(new Set(keys).size).toBe(keys.length);
      for (const r of t.releases) expect(Object.keys(r.switches).sort()).toEqual(Object.keys(t.switches).sort());
    }
    // what the strategy did before releases were recorded: the bare name then did not synchronize offsets
    expect(baselineRelease('cloud-hypervisor')).toEqual({ strategy: 'cloud-hypervisor', release: '54.0', switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: false, arm64Downtime: true } });
    expect(isBaseline(resolveStrategyRelease('cloud-hypervisor'))).toBe(false);
    expect(isBaseline(resolveStrategyRelease('cloud-hypervisor@54+syncTscOffsets=false'))).toBe(true);
    // every other strategy's baseline is its newest release, so its bare name records no release
    for (const name of STRATEGY_NAMES.filter((n) => n !== 'cloud-hypervisor')) expect(resolveStrategyRelease(name)).toEqual(baselineRelease(name));
  });
});

describe('migrate, strategies and the log', () => {
  let l: Ledger;
  beforeEach(() => {
    l = newLedger();
  });
  afterEach(() => l.cleanup());

  async function guest() {
    await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
    await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'g', hostId: 'a', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'g' });
  }
  const started = () =>
    storeFor({ db: l.db })
      .read({})
      .filter((e) => e.type === 'MigrationStarted')
      .map((e) => e.data as Record<string, unknown>);

  it('refuses an unresolvable strategy with invalid_request and writes nothing', async () => {
    await guest();
    const before = storeFor({ db: l.db }).read({}).length;
    for (const strategy of ['firecracker@1.6', 'firecracker+bogus=true', 'firecraker@1.8']) {
      const r = await l.call('migrate', { vmId: 'g', toHost: 'b', strategy, blackoutNs: 1000 });
      expect(r.ok).toBe(false);
      expect(r.error.code).toBe('invalid_request');
    }
    const r = await l.call('migrate', { vmId: 'g', toHost: 'b', strategy: 'firecracker@1.6', blackoutNs: 1000 });
    expect(r.error.message).toContain('firecracker 1.6 is older than every modelled release');
    expect(storeFor({ db: l.db }).read({}).length).toBe(before);
  });

  it('records the release and switches in MigrationStarted (strategy: the name) unless it is the baseline', async () => {
    await guest();
    const m1 = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'firecracker@1.12+kvmclockCtrl=true', blackoutNs: 1000 });
    await l.ok('migrate', { vmId: m1.newVmId, toHost: 'a', strategy: 'firecracker', blackoutNs: 1000 });
    const [a, b] = started();
    expect(a).toMatchObject({ strategy: 'firecracker', release: '1.8.0', switches: { zeroDeadlineFilled: true, deadlineAfterTsc: true, kvmclockCtrl: true, clockRealtimeOptIn: false } });
    expect(b!.strategy).toBe('firecracker');
    expect('release' in b! || 'switches' in b!).toBe(false);
    const audits = (await l.ok('audit', {})).audits;
    expect(audits.map((x: { vmm: { release: string } }) => x.vmm.release)).toEqual(['1.8.0', '1.16.0']);
    expect(renderAuditReport(audits[0])).toMatch(/\nrelease: +1\.8\.0 zeroDeadlineFilled=true deadlineAfterTsc=true kvmclockCtrl=true clockRealtimeOptIn=false\n/);
    expectMigrateAuditsFromLog(l);
  });

  it('records the bare cloud-hypervisor\'s release (54.0 with the offset sync: not what a log without one means); 54.0 without the sync records none', async () => {
    await guest();
    const m1 = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'cloud-hypervisor', blackoutNs: 1000 });
    await l.ok('migrate', { vmId: m1.newVmId, toHost: 'a', strategy: 'cloud-hypervisor@54+syncTscOffsets=false', blackoutNs: 1000 });
    const [a, b] = started();
    expect(a).toMatchObject({ strategy: 'cloud-hypervisor', release: '54.0', switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true } });
    expect('release' in b! || 'switches' in b!).toBe(false);
    const audits = (await l.ok('audit', {})).audits;
    expect(audits.map((x: { vmm: { switches: { syncTscOffsets: boolean } } }) => x.vmm.switches.syncTscOffsets)).toEqual([true, false]);
    expectMigrateAuditsFromLog(l);
  });

  it('audits a bare cloud-hypervisor migration recorded before the bare name synchronized offsets as it did then, byte for byte', async () => {
    // test/fixtures/ch-bare-pre-sync.*: 2 vCPUs at 3 GHz, 2 s of uptime, `--strategy cloud-hypervisor`
    // to an equal host, 1 s blackout, writes 1.5 s apart, recorded (no release in MigrationStarted)
    // with the audit it had then. vCPU 1's write starts a new offset: TSCs 10 500 000 000 and
    // 6 000 000 000 at resume, skew 4 500 000 000, master clock lost.
    const fixture = (name: string) => join(import.meta.dirname, '..', 'fixtures', name);
    const { events } = JSON.parse(readFileSync(fixture('ch-bare-pre-sync.events.json'), 'utf8')) as { events: { streamId: string; version: number; type: string; schemaVersion: number; time: string; data: unknown }[] };
    const mig = events.find((e) => e.type === 'MigrationStarted')!.data as Record<string, unknown>;
    expect(mig.strategy).toBe('cloud-hypervisor');
    expect('release' in mig || 'switches' in mig).toBe(false);
    const store = storeFor({ db: l.db });
    for (const e of events) store.commit([{ streamId: e.streamId, expectedVersion: e.version - 1, events: [{ type: e.type, schemaVersion: e.schemaVersion, time: BigInt(e.time), data: e.data }] }]);
    const a = (await l.ok('audit', { migrationId: 'm1' })).audit;
    expect(a.vmm).toEqual({ strategy: 'cloud-hypervisor', release: '54.0', switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: false, arm64Downtime: true } });
    expect(a.vcpus.map((v: { tscAfter: string }) => v.tscAfter)).toEqual(['10500000000', '6000000000']);
    expect(a.skewCycles).toEqual({ before: '0', after: '4500000000' });
    expect(a.masterClock).toEqual({ before: true, after: false });
    // UPDATE_GOLDEN=1 rewrites the stored audit (only for an intended change of the report; never the events)
    const text = `${JSON.stringify(a, null, 1)}\n`;
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(fixture('ch-bare-pre-sync.audit.json'), text);
    expect(text).toBe(readFileSync(fixture('ch-bare-pre-sync.audit.json'), 'utf8'));
  });

  it('the demo\'s cloud-hypervisor migration runs 54.0: vCPU 0\'s offset written to all four, master clock on → on', async () => {
    const r = await l.ok('demo', { strategies: ['cloud-hypervisor'], htmlReports: false });
    const a = r.audits[0];
    expect(a.vmm).toEqual({ strategy: 'cloud-hypervisor', release: '54.0', switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true } });
    const sync = storeFor({ db: l.db })
      .read({ streamId: `vm-${a.newVmId}` })
      .filter((e) => e.type === 'IoctlIssued' && /DEVICE_ATTR/.test((e.data as { ioctl: string }).ioctl))
      .map((e) => e.data as { ioctl: string; vcpu: number; arg: { value?: string }; out?: { value: string } });
    // KVM_GET_DEVICE_ATTR(KVM_VCPU_TSC_OFFSET) on vCPU 0, then that value set on vCPUs 0-3
    const offset0 = sync[0]!.out!.value;
    expect(sync.map((d) => [d.ioctl, d.vcpu, d.arg.value ?? null])).toEqual([['KVM_GET_DEVICE_ATTR', 0, null], ...[0, 1, 2, 3].map((v) => ['KVM_SET_DEVICE_ATTR', v, offset0])]);
    const st = (await l.ok('stateAt', { streamId: `vm-${a.newVmId}` })).state;
    expect(st.kvm.vcpus.map((v: { l1TscOffset: string }) => v.l1TscOffset)).toEqual([offset0, offset0, offset0, offset0]);
    expect(a.masterClock).toEqual({ before: true, after: true });
    expect(a.skewCycles).toEqual({ before: '0', after: '0' });
    // the demo's restore writes already matched (within KVM's 1 s): the sync changes no offset, it
    // only costs its 5 ioctls × 20 µs of VMM latency before the resume: every TSC reads
    // 30 000 840 000 + 5 × 20 µs × 3 GHz = 30 001 140 000 then, the error (−300.280 ms) as before
    expect(a.vcpus.map((v: { tscAfter: string; tscErrorNs: string }) => [v.tscAfter, v.tscErrorNs])).toEqual(Array(4).fill(['30001140000', '-300280000']));
  });

  it('lists every strategy\'s releases ascending with their switches, and renders them', async () => {
    const r = await l.ok('strategies', {});
    const fc = r.strategies.find((s: { name: string }) => s.name === 'firecracker');
    expect(fc.releases).toEqual(['1.7.0', '1.8.0', '1.14.0', '1.16.0']);
    expect(fc.releaseDetails[2]).toMatchObject({ release: '1.14.0', switches: { kvmclockCtrl: true, clockRealtimeOptIn: false } });
    expect(Object.keys(fc.switches)).toEqual(['zeroDeadlineFilled', 'deadlineAfterTsc', 'kvmclockCtrl', 'clockRealtimeOptIn']);
    const ch = r.strategies.find((s: { name: string; arch: string }) => s.name === 'cloud-hypervisor' && s.arch === 'x86');
    expect(ch.releases).toEqual(['50.0', '52.0', '53.0', '54.0']);
    expect(ch.bare).toEqual({ release: '54.0', switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true } });
    for (const s of r.strategies) expect(s.releases.length).toBeGreaterThan(0);
    const text = renderStrategies(r);
    expect(text).toContain('releases (--strategy firecracker@X.Y[+switch=true|false]; the bare name runs 1.16.0):');
    expect(text).toMatch(/\n {4}1\.14\.0 {2}zeroDeadlineFilled=true deadlineAfterTsc=true kvmclockCtrl=true clockRealtimeOptIn=false\n/);
    expect(text).toContain('releases (--strategy cloud-hypervisor@X.Y[+switch=true|false]; the bare name runs 54.0):');
    expect(text).not.toContain('the bare name keeps');
  });
});
