// VMM releases as data: resolving `name@X.Y[.Z][+switch=bool]`, listing them, and recording the
// release a migration ran (absent for the baseline, so logs and reports of bare names are unchanged).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFor } from '../../handlers/context.js';
import { renderAuditReport, renderStrategies } from '../../handlers/cli/render/migrations.js';
import {
  baselineRelease,
  isBaseline,
  relabelled,
  RELEASES,
  releaseTable,
  resolveStrategyRelease,
  switchesFor,
} from '../../machines/migration/strategies/releases.js';
import { STRATEGY_NAMES } from '../../machines/migration/strategies/index.js';
import { goldenText } from '../helpers/golden.js';
import { expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';

describe('resolveStrategyRelease', () => {
  const fc = (z: boolean, p: boolean, k: boolean, c: boolean) => ({
    zeroDeadlineFilled: z,
    deadlineAfterTsc: z,
    kvmclockCtrlAtPause: p,
    kvmclockCtrl: k,
    clockRealtimeOptIn: c,
  });
  const ch = (c: boolean, rest: boolean) => ({ clockBeforeResume: c, realtimeFilled: rest, syncTscOffsets: rest, arm64Downtime: rest });

  it("holds every release with its full switch map, as the projects' tags and changelogs date each change", () => {
    const table = (name: string) => RELEASES[name]!.releases.map((r) => [r.version, r.switches]);
    expect(table('firecracker')).toEqual([
      ['1.7.0', fc(false, false, false, false)],
      ['1.8.0', fc(true, false, false, false)],
      // b098b4f7a (KVMCLOCK_CTRL at pause) is first tagged v1.10.0
      ['1.10.0', fc(true, true, false, false)],
      ['1.14.0', fc(true, true, true, false)],
      // #5809 shipped in 1.14.4 and 1.15.1 (both tagged 2026-04-07); 1.15.0 (2026-03-09) came out before it
      ['1.14.4', fc(true, true, true, true)],
      ['1.15.0', fc(true, true, true, false)],
      ['1.15.1', fc(true, true, true, true)],
      ['1.16.0', fc(true, true, true, true)],
    ]);
    // #8256, #8343 and #8437 are all in v53.0 (its release notes); no v54.0 was tagged
    expect(table('cloud-hypervisor')).toEqual([
      ['50.0', ch(false, false)],
      ['52.0', ch(true, false)],
      ['53.0', ch(true, true)],
    ]);
    // each clock.c / kvm.c change at the release its merge's VERSION names (master at X.Y.50 → X.(Y+1).0)
    const qemu = (ctrl: boolean, paused: boolean, khz: boolean, mask: boolean) => ({
      kvmclockCtrlEveryVcpu: ctrl,
      pausedNoPreSaveRead: paused,
      tscKhzWithinTolerance: khz,
      adjustClockStableMask: mask,
      downtimeAccounting: false,
    });
    expect(table('qemu')).toEqual([
      ['2.11.0', qemu(false, false, false, false)],
      ['3.1.0', qemu(true, false, false, false)],
      ['4.2.0', qemu(true, true, false, false)],
      ['5.1.0', qemu(true, true, true, false)],
      ['7.2.0', qemu(true, true, true, true)],
      ['10.1.0', qemu(true, true, true, true)],
    ]);
    // each release's own copy: changing one does not change the next
    expect(RELEASES.firecracker!.releases[1]!.switches).not.toBe(RELEASES.firecracker!.releases[2]!.switches);
  });

  it('picks the newest modelled release at or below the version; the bare name is the newest', () => {
    expect(resolveStrategyRelease('firecracker@1.12').release).toBe('1.10.0');
    expect(resolveStrategyRelease('firecracker@1.12.1').release).toBe('1.10.0');
    expect(resolveStrategyRelease('firecracker@1.7').release).toBe('1.7.0');
    expect(resolveStrategyRelease('firecracker@1.9.1').release).toBe('1.8.0');
    expect(resolveStrategyRelease('firecracker@1.13.9').release).toBe('1.10.0');
    expect(resolveStrategyRelease('firecracker@1.14').release).toBe('1.14.0');
    expect(resolveStrategyRelease('firecracker@1.14.9').release).toBe('1.14.4');
    expect(resolveStrategyRelease('firecracker@1.15').switches.clockRealtimeOptIn).toBe(false);
    expect(resolveStrategyRelease('firecracker@1.16.1').release).toBe('1.16.0');
    expect(resolveStrategyRelease('firecracker').release).toBe('1.16.0');
    expect(resolveStrategyRelease('cloud-hypervisor@51.1').release).toBe('50.0');
    // versions compare numerically, not as text
    expect(resolveStrategyRelease('firecracker@1.9').release).toBe('1.8.0');
  });

  it('cloud-hypervisor@53 runs the TSC-offset sync and the arm64 downtime fix; @54 is an unknown release; the bare name is 53.0', () => {
    expect(resolveStrategyRelease('cloud-hypervisor@53')).toEqual({ strategy: 'cloud-hypervisor', release: '53.0', switches: ch(true, true) });
    expect(resolveStrategyRelease('cloud-hypervisor')).toEqual(resolveStrategyRelease('cloud-hypervisor@53'));
    expect(() => resolveStrategyRelease('cloud-hypervisor@54')).toThrow(
      new RegExp(
        '^unknown release cloud-hypervisor 54: the newest cloud-hypervisor release is 53\\.0 ' +
          "\\(tag v53\\.0 \\(2026-07-12\\), the newest: no v54\\.0 was tagged\\): did you mean '53\\.0'\\?$",
      ),
    );
    expect(() => resolveStrategyRelease('cloud-hypervisor@54+syncTscOffsets=false')).toThrow(/unknown release cloud-hypervisor 54/);
    // like any version above the newest tag
    expect(() => resolveStrategyRelease('firecracker@1.17')).toThrow(
      /^unknown release firecracker 1\.17: the newest firecracker release is 1\.16\.1 .*'1\.16\.1'/,
    );
    expect(() => resolveStrategyRelease('firecracker@2')).toThrow(/unknown release firecracker 2/);
    for (const name of STRATEGY_NAMES) {
      const newest = releaseTable(name).releases.at(-1)!;
      expect(resolveStrategyRelease(name)).toEqual({ strategy: name, release: newest.version, switches: newest.switches });
    }
  });

  it('flips switches, and refuses an older version, a malformed one, or an unknown switch', () => {
    expect(resolveStrategyRelease('firecracker@1.12+kvmclockCtrl=true,clockRealtimeOptIn=true').switches).toEqual(fc(true, true, true, true));
    const modelled = /older than every modelled release \(modelled: 1\.7\.0, 1\.8\.0, 1\.10\.0, 1\.14\.0, 1\.14\.4, 1\.15\.0, 1\.15\.1, 1\.16\.0\)/;
    expect(() => resolveStrategyRelease('firecracker@1.6')).toThrow(modelled);
    expect(() => resolveStrategyRelease('firecracker@one')).toThrow(/malformed version/);
    expect(() => resolveStrategyRelease('firecracker@1.2.3.4')).toThrow(/malformed version/);
    expect(() => resolveStrategyRelease('firecracker+kvmclockCtrl=yes')).toThrow(/bad switch override/);
    expect(() => resolveStrategyRelease('firecracker+nope=true')).toThrow(/unknown switch 'nope' for firecracker \(switches: zeroDeadlineFilled/);
    expect(() => resolveStrategyRelease('crosvm+x=true')).toThrow(/it has none/);
  });

  it('has tables in ascending order, every switch with an architecture, and a frozen baseline for logs without a release', () => {
    for (const t of Object.values(RELEASES)) {
      // X.Y.Z as one number (each part below 1000 here): strictly ascending
      const key = (v: string) =>
        v
          .split('.')
          .map(Number)
          .reduce((n, x, i) => n + x * 1000 ** (2 - i), 0);
      const keys = t.releases.map((r) => key(r.version));
      expect(keys).toEqual([...keys].sort((x, y) => x - y));
      expect(new Set(keys).size).toBe(keys.length);
      for (const r of t.releases) expect(Object.keys(r.switches).sort()).toEqual(Object.keys(t.switches).sort());
      expect(Object.keys(t.switchArch).sort()).toEqual(Object.keys(t.switches).sort());
      if (t.newest) expect(key(t.newest.version)).toBeGreaterThanOrEqual(keys.at(-1)!);
    }
    // every switch of a baseline is one of its table's, and every table switch is in the baseline
    for (const name of Object.keys(RELEASES)) expect(Object.keys(baselineRelease(name).switches).sort()).toEqual(Object.keys(RELEASES[name]!.switches).sort());
    // what the strategy did before releases were recorded, under the label it carried: 54.0 without the offset sync
    expect(baselineRelease('cloud-hypervisor')).toEqual({
      strategy: 'cloud-hypervisor',
      release: '54.0',
      switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: false, arm64Downtime: true },
    });
    expect(relabelled('cloud-hypervisor', '54.0')).toMatchObject({ release: '53.0' });
    expect(relabelled('cloud-hypervisor', '53.0')).toBeUndefined();
    expect(isBaseline(resolveStrategyRelease('cloud-hypervisor'))).toBe(false);
    expect(isBaseline(resolveStrategyRelease('cloud-hypervisor@53+syncTscOffsets=false'))).toBe(false);
    // Firecracker's bare name always issued KVMCLOCK_CTRL at pause: 1.16.0 as modelled now is its baseline
    expect(baselineRelease('firecracker').switches).toEqual(fc(true, true, true, true));
    for (const name of STRATEGY_NAMES.filter((n) => n !== 'cloud-hypervisor')) expect(resolveStrategyRelease(name)).toEqual(baselineRelease(name));
  });

  it("lists only the switches of a migration's architecture", () => {
    const all = ch(true, true);
    expect(switchesFor('cloud-hypervisor', 'x86', all)).toEqual({ clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true });
    expect(switchesFor('cloud-hypervisor', 'arm64', all)).toEqual({ arm64Downtime: true });
    // clock_realtime is a LoadSnapshot field on both: listed on both
    expect(Object.keys(switchesFor('firecracker', 'arm64', fc(true, true, true, true)))).toEqual(['clockRealtimeOptIn']);
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
    for (const strategy of ['firecracker@1.6', 'firecracker+bogus=true', 'firecraker@1.8', 'cloud-hypervisor@54']) {
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
    expect(a).toMatchObject({
      strategy: 'firecracker',
      release: '1.10.0',
      switches: { zeroDeadlineFilled: true, deadlineAfterTsc: true, kvmclockCtrlAtPause: true, kvmclockCtrl: true, clockRealtimeOptIn: false },
    });
    expect(b!.strategy).toBe('firecracker');
    expect('release' in b! || 'switches' in b!).toBe(false);
    const audits = (await l.ok('audit', {})).audits;
    expect(audits.map((x: { vmm: { release: string } }) => x.vmm.release)).toEqual(['1.10.0', '1.16.0']);
    expect(renderAuditReport(audits[0])).toMatch(
      /\nrelease: +1\.10\.0 zeroDeadlineFilled=true deadlineAfterTsc=true kvmclockCtrlAtPause=true kvmclockCtrl=true clockRealtimeOptIn=false\n/,
    );
    expectMigrateAuditsFromLog(l);
  });

  it("records the bare cloud-hypervisor's release: 53.0 with the offset sync; 53.0 without it is no baseline either (that is labelled 54.0)", async () => {
    await guest();
    const m1 = await l.ok('migrate', { vmId: 'g', toHost: 'b', strategy: 'cloud-hypervisor', blackoutNs: 1000 });
    await l.ok('migrate', { vmId: m1.newVmId, toHost: 'a', strategy: 'cloud-hypervisor@53+syncTscOffsets=false', blackoutNs: 1000 });
    const [a, b] = started();
    expect(a).toMatchObject({
      strategy: 'cloud-hypervisor',
      release: '53.0',
      switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true },
    });
    expect(b).toMatchObject({ strategy: 'cloud-hypervisor', release: '53.0', switches: { syncTscOffsets: false } });
    const audits = (await l.ok('audit', {})).audits;
    expect(audits.map((x: { vmm: { switches: { syncTscOffsets: boolean } } }) => x.vmm.switches.syncTscOffsets)).toEqual([true, false]);
    // an x86 migration's human report lists only the x86 switches (the JSON keeps the recorded map)
    expect(renderAuditReport(audits[0])).toMatch(/\nrelease: +53\.0 clockBeforeResume=true realtimeFilled=true syncTscOffsets=true\n/);
    expect(audits[0].vmm.switches.arm64Downtime).toBe(true);
    expectMigrateAuditsFromLog(l);
  });

  it('audits a bare cloud-hypervisor migration recorded before the bare name synchronized offsets as it did then, byte for byte', async () => {
    // test/fixtures/ch-bare-pre-sync.*: 2 vCPUs at 3 GHz, 2 s of uptime, `--strategy cloud-hypervisor`
    // to an equal host, 1 s blackout, writes 1.5 s apart, recorded (no release in MigrationStarted)
    // with the audit it had then. vCPU 1's write starts a new offset: TSCs 10 500 000 000 and
    // 6 000 000 000 at resume, skew 4 500 000 000, master clock lost.
    const fixture = (name: string) => join(import.meta.dirname, '..', 'fixtures', name);
    const { events } = JSON.parse(readFileSync(fixture('ch-bare-pre-sync.events.json'), 'utf8')) as {
      events: { streamId: string; version: number; type: string; schemaVersion: number; time: string; data: unknown }[];
    };
    const mig = events.find((e) => e.type === 'MigrationStarted')!.data as Record<string, unknown>;
    expect(mig.strategy).toBe('cloud-hypervisor');
    expect('release' in mig || 'switches' in mig).toBe(false);
    const store = storeFor({ db: l.db });
    for (const e of events)
      store.commit([
        {
          streamId: e.streamId,
          expectedVersion: e.version - 1,
          events: [{ type: e.type, schemaVersion: e.schemaVersion, time: BigInt(e.time), data: e.data }],
        },
      ]);
    const a = (await l.ok('audit', { migrationId: 'm1' })).audit;
    expect(a.vmm).toEqual({
      strategy: 'cloud-hypervisor',
      release: '54.0',
      switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: false, arm64Downtime: true },
    });
    expect(a.vcpus.map((v: { tscAfter: string }) => v.tscAfter)).toEqual(['10500000000', '6000000000']);
    expect(a.skewCycles).toEqual({ before: '0', after: '4500000000' });
    expect(a.masterClock).toEqual({ before: true, after: false });
    // CLOCKLEDGER_UPDATE_GOLDEN=1 rewrites the stored audit (only for an intended change of the report; never the events)
    const text = `${JSON.stringify(a, null, 1)}\n`;
    expect(text).toBe(goldenText(fixture('ch-bare-pre-sync.audit.json'), text));
    // the human report names the label the log carried, which no release bears, and lists only x86 switches
    const human = renderAuditReport(a);
    const label = /\nrelease: +54\.0 \(the label it was recorded under: no such release; 53\.0 has these changes: no v54\.0 was tagged .*\) /;
    expect(human).toMatch(new RegExp(`${label.source}clockBeforeResume=true realtimeFilled=true syncTscOffsets=false\\n`));
    expect(human).not.toContain('arm64Downtime');
  });

  it('audits a log recorded under the label 54.0 as recorded, and says which label it carried', async () => {
    // the same log, as the bare name recorded it once it synchronized offsets: release 54.0, every switch on
    const fixture = join(import.meta.dirname, '..', 'fixtures', 'ch-bare-pre-sync.events.json');
    type Recorded = { streamId: string; version: number; type: string; schemaVersion: number; time: string; data: Record<string, unknown> };
    const { events } = JSON.parse(readFileSync(fixture, 'utf8')) as { events: Recorded[] };
    const recorded = { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true };
    const store = storeFor({ db: l.db });
    for (const e of events) {
      const data = e.type === 'MigrationStarted' ? { ...e.data, release: '54.0', switches: recorded } : e.data;
      const event = { type: e.type, schemaVersion: e.schemaVersion, time: BigInt(e.time), data };
      store.commit([{ streamId: e.streamId, expectedVersion: e.version - 1, events: [event] }]);
    }
    const a = (await l.ok('audit', { migrationId: 'm1' })).audit;
    expect(a.vmm).toEqual({ strategy: 'cloud-hypervisor', release: '54.0', switches: recorded });
    // the recorded ioctls are what is audited: the log holds no offset sync, whatever the label says
    expect(a.skewCycles).toEqual({ before: '0', after: '4500000000' });
    expect(renderAuditReport(a)).toMatch(/\nrelease: +54\.0 \(the label it was recorded under: no such release; 53\.0 has these changes/);
  });

  it("the demo's cloud-hypervisor migration runs 53.0: vCPU 0's offset written to all four, master clock on → on", async () => {
    const r = await l.ok('demo', { strategies: ['cloud-hypervisor'], htmlReports: false });
    const a = r.audits[0];
    expect(a.vmm).toEqual({
      strategy: 'cloud-hypervisor',
      release: '53.0',
      switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true },
    });
    const sync = storeFor({ db: l.db })
      .read({ streamId: `vm-${a.newVmId}` })
      .filter((e) => e.type === 'IoctlIssued' && /DEVICE_ATTR/.test((e.data as { ioctl: string }).ioctl))
      .map((e) => e.data as { ioctl: string; vcpu: number; arg: { value?: string }; out?: { value: string } });
    // KVM_GET_DEVICE_ATTR(KVM_VCPU_TSC_OFFSET) on vCPU 0, then that value set on vCPUs 0-3
    const offset0 = sync[0]!.out!.value;
    expect(sync.map((d) => [d.ioctl, d.vcpu, d.arg.value ?? null])).toEqual([
      ['KVM_GET_DEVICE_ATTR', 0, null],
      ...[0, 1, 2, 3].map((v) => ['KVM_SET_DEVICE_ATTR', v, offset0]),
    ]);
    const st = (await l.ok('stateAt', { streamId: `vm-${a.newVmId}` })).state;
    expect(st.kvm.vcpus.map((v: { l1TscOffset: string }) => v.l1TscOffset)).toEqual([offset0, offset0, offset0, offset0]);
    expect(a.masterClock).toEqual({ before: true, after: true });
    expect(a.skewCycles).toEqual({ before: '0', after: '0' });
    // the demo's restore writes already matched (within KVM's 1 s): the sync changes no offset, it
    // only costs its 5 ioctls × 20 µs of VMM latency before the resume: every TSC reads
    // 30 000 840 000 + 5 × 20 µs × 3 GHz = 30 001 140 000 then, the error (−300.280 ms) as before
    expect(a.vcpus.map((v: { tscAfter: string; tscErrorNs: string }) => [v.tscAfter, v.tscErrorNs])).toEqual(Array(4).fill(['30001140000', '-300280000']));
  });

  it("lists every strategy's releases ascending with their switches and sources, and renders them for each architecture", async () => {
    const r = await l.ok('strategies', {});
    const fc = r.strategies.find((s: { name: string; arch: string }) => s.name === 'firecracker' && s.arch === 'x86');
    expect(fc.releases).toEqual(['1.7.0', '1.8.0', '1.10.0', '1.14.0', '1.14.4', '1.15.0', '1.15.1', '1.16.0']);
    expect(fc.releaseDetails[3]).toMatchObject({ release: '1.14.0', switches: { kvmclockCtrl: true, clockRealtimeOptIn: false } });
    expect(fc.releaseDetails[3].source).toMatch(/CHANGELOG 1\.14\.0: #5494 .*d33011c67/);
    expect(fc.releaseDetails[2].source).toMatch(/b098b4f7a, first tagged v1\.10\.0/);
    expect(fc.newest).toMatchObject({ version: '1.16.1' });
    expect(Object.keys(fc.switches)).toEqual(['zeroDeadlineFilled', 'deadlineAfterTsc', 'kvmclockCtrlAtPause', 'kvmclockCtrl', 'clockRealtimeOptIn']);
    const ch = r.strategies.find((s: { name: string; arch: string }) => s.name === 'cloud-hypervisor' && s.arch === 'x86');
    expect(ch.releases).toEqual(['50.0', '52.0', '53.0']);
    expect(ch.bare).toEqual({ release: '53.0', switches: { clockBeforeResume: true, realtimeFilled: true, syncTscOffsets: true, arm64Downtime: true } });
    expect(ch.switchArch).toEqual({ clockBeforeResume: 'x86', realtimeFilled: 'x86', syncTscOffsets: 'x86', arm64Downtime: 'arm64' });
    for (const s of r.strategies) {
      expect(s.releases.length).toBeGreaterThan(0);
      for (const d of s.releaseDetails) expect(d.source, `${s.name} ${d.release}`).toMatch(/\S/);
    }
    const text = renderStrategies(r);
    expect(text).toContain('releases (--strategy firecracker@X.Y[+switch=true|false]; the bare name runs 1.16.0; the newest published is 1.16.1):');
    expect(text).toMatch(
      /\n {4}1\.14\.0 {2}zeroDeadlineFilled=true deadlineAfterTsc=true kvmclockCtrlAtPause=true kvmclockCtrl=true clockRealtimeOptIn=false\n/,
    );
    expect(text).toMatch(/\n {6}source: CHANGELOG 1\.14\.0: #5494/);
    expect(text).toContain('releases (--strategy cloud-hypervisor@X.Y[+switch=true|false]; the bare name runs 53.0; the newest published is 53.0):');
    // each entry lists the switches of its architecture
    expect(text).toMatch(/\ncloud-hypervisor \(x86\)\n[\s\S]*?\n {4}53\.0 {2}clockBeforeResume=true realtimeFilled=true syncTscOffsets=true\n/);
    expect(text).toMatch(/\ncloud-hypervisor \(arm64\)\n[\s\S]*?\n {4}53\.0 {2}arm64Downtime=true\n/);
  });
});
