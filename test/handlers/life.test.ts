// A guest's whole life (machines/life, handler timeline): the guest recorded with its VM, the
// state it carries across standbys and migrations, its time sources, and its hosts' real TSC rate.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENGINE_NAMES, newLedger, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock, standbys } from '../helpers/guest-setup.js';

const root = join(import.meta.dirname, '..', '..');

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

const S = 1_000_000_000n;

/** One host, a 2-vCPU guest with kvmclock on both vCPUs, running 10 s. */
async function guestOn(guest: object, host: object = {}) {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000, ...host });
  await l.ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 2, guest });
  await l.ok('runVcpu', { vmId: 'web' });
  await registerKvmclock(l, 'web', 2);
  await l.ok('advanceTime', { ns: (10n * S).toString() });
}

/**
 * n standby cycles: pause, snapshot, restore 45 s later on the same host (QEMU stop/cont: kvmclock
 * does not count the stop; no VMM latency), then 100 s of running.
 */

describe('standby cycles', () => {
  it('four 45 s standbys with no time sync end 180 s behind and name the cycle that crossed 60 s', async () => {
    await guestOn({ ntp: { client: 'none' } });
    await standbys(l, 4);
    const t = await l.ok('timeline', { vmId: 'web', toleranceNs: (60n * S).toString() });
    const life = t.timeline;
    // no time source: CLOCK_REALTIME's error is kvmclock's, which lost each 45 s stop (QEMU keeps
    // kvmclock still from stop to cont) plus its own pvclock rounding (the same in both)
    const end = life.samples.at(-1);
    expect(end.realtimeErrorNs).toBe(end.kvmclockErrorNs);
    const rounding = BigInt(end.kvmclockErrorNs) + 4n * 45n * S;
    expect(rounding < 0n && rounding > -1000n).toBe(true);
    expect(life.cycles.map((c: { kind: string }) => c.kind)).toEqual(['standby', 'standby', 'standby', 'standby']);
    // each stop leaves the error it found, 45 s more behind: cycle 2 crosses 60 s (−90 s)
    expect(life.cycles.map((c: { errorAtResumeNs: string }) => BigInt(c.errorAtResumeNs) / S)).toEqual([-45n, -90n, -135n, -180n]);
    const crossed = life.findings.find((f: { code: string }) => f.code === 'realtime_beyond_tolerance');
    expect(crossed).toMatchObject({ cycle: 2, migrationId: 'm2', timeNs: life.cycles[1].resumeTime });
    // and the audit of the fourth standby starts from the 135 s the guest brought to it, not from 0
    const a = await l.ok('audit', { migrationId: 'm4' });
    expect(BigInt(a.audit.guest.wallClock.curve[0].errorNs) / S).toBe(-135n);
    expect(a.audit.guest.wallClock.client).toBe('none');
  });
});

describe('the guest recorded with its VM', () => {
  it('configureGuest changes what later audits use; a request still overrides it', async () => {
    await guestOn({ ntp: { client: 'none' } });
    await standbys(l, 1);
    expect((await l.ok('audit', { migrationId: 'm1' })).audit.guest.wallClock.client).toBe('none');
    await l.ok('configureGuest', { vmId: 'web', guest: { ntp: { client: 'chrony', refclock: 'ptp_kvm', makestepLimit: -1 } } });
    await standbys(l, 1);
    expect((await l.ok('audit', { migrationId: 'm1' })).audit.guest.wallClock.client).toBe('none');
    expect((await l.ok('audit', { migrationId: 'm2' })).audit.guest.wallClock.client).toBe('chrony');
    expect((await l.ok('audit', { migrationId: 'm2', thresholds: { guest: { ntp: { client: 'ntpd' } } } })).audit.guest.wallClock.client).toBe('ntpd');
    const bad = await l.call('configureGuest', { vmId: 'web', guest: { ntp: { client: 'ntpd' } } });
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
  });

  it('configureGuest on a VM a migration made keeps what the guest had (the agent) and adds the change', async () => {
    await guestOn({ ntp: { client: 'none' }, agent: { everyNs: (30n * S).toString(), stepAboveNs: S.toString() } });
    await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000 });
    const move = (vmId: string, to: string) => l.ok('migrate', { vmId, toHost: to, strategy: 'qemu', blackoutNs: (45n * S).toString(), vmmLatencyNs: '0' });
    await move('web', 'b');
    await l.ok('advanceTime', { ns: (60n * S).toString() });
    const changed = await l.ok('configureGuest', { vmId: 'web.m1', guest: { kernel: '6.1' } });
    expect(changed.guest).toMatchObject({ kernel: '6.1', ntp: { client: 'none' }, agent: { everyNs: '30000000000' } });
    await move('web.m1', 'a');
    await l.ok('advanceTime', { ns: (60n * S).toString() });
    const life = (await l.ok('timeline', { vmId: 'web.m2' })).timeline;
    // the second stop is corrected by the agent recorded on the first VM, as the first was
    expect(life.cycles.map((c: { correctedBy: string | null }) => c.correctedBy)).toEqual(['agent', 'agent']);
    expect((await l.ok('audit', { migrationId: 'm2' })).audit.guest.kernel).toBe('6.1');
  });

  it('with ptp_kvm (makestep 1 -1) the error is never beyond the step threshold longer than one 16 s poll', async () => {
    await guestOn({ ntp: { client: 'chrony', refclock: 'ptp_kvm', makestepLimit: -1 } });
    await standbys(l, 4);
    const life = (await l.ok('timeline', { vmId: 'web' })).timeline;
    for (const c of life.cycles) {
      expect(BigInt(c.errorAtResumeNs) / S).toBe(-45n);
      expect(c.correctedBy).toBe('ptp_kvm');
      expect(BigInt(c.correctedAt) - BigInt(c.resumeTime) <= 16n * S).toBe(true);
    }
  });

  it('with an agent every 30 s stepping above 1 s the error after each restore lasts at most 30 s', async () => {
    await guestOn({ ntp: { client: 'none' }, agent: { everyNs: (30n * S).toString(), stepAboveNs: S.toString() } });
    await standbys(l, 4);
    const life = (await l.ok('timeline', { vmId: 'web' })).timeline;
    for (const c of life.cycles) {
      expect(c.correctedBy).toBe('agent');
      expect(BigInt(c.correctedAt) - BigInt(c.resumeTime) <= 30n * S).toBe(true);
    }
    expect(life.marks.filter((m: { source?: string }) => m.source === 'agent')).toHaveLength(4);
  });
});

describe('a host whose TSC runs slow', () => {
  it('20 ppm slow, no sync, 10 days: the guest is 17.28 s behind', async () => {
    // the TSC really ticks at 2 999 940 000 Hz for a nominal 3 GHz: kvmclock (on CLOCK_MONOTONIC_RAW) runs 20 ppm slow
    await guestOn({ ntp: { client: 'none' } }, { actualTscHz: '2999940000' });
    await l.ok('advanceTime', { ns: (10n * 86_400n * S).toString() });
    const life = (await l.ok('timeline', { vmId: 'web' })).timeline;
    const end = life.samples.at(-1);
    // 20e-6 × (10 days + the first 10 s) = 17.280200 s; what is left is the rounding of the host
    // clocksource's and the pvclock's scale for 3 GHz (≈ 0.23 ppb: about 0.2 ms in 10 days)
    const expected = -(20n * (10n * 86_400n * S + 10n * S)) / 1_000_000n;
    expect(expected).toBe(-17_280_200_000n);
    const off = BigInt(end.realtimeErrorNs) - expected;
    expect(off > -1_000_000n && off < 1_000_000n).toBe(true);
    expect(life.findings.find((f: { code: string }) => f.code === 'unsynchronised_drift').message).toContain('20.000 ppm slow');
  });
});

/** Two qemu migrations a → b → a with a 20 ms pre-save gap (each steps kvmclock 20 ms ahead of the TSC). */
async function twoQemuMigrations(guest: object | undefined) {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000, initialTsc: '600000000000' });
  await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000, initialTsc: '9000000000000' });
  await l.ok('createVm', { vmId: 'v', hostId: 'a', vcpus: 2, ...(guest ? { guest } : {}) });
  await l.ok('runVcpu', { vmId: 'v' });
  await registerKvmclock(l, 'v', 2);
  await l.ok('advanceTime', { ns: '2000000000' });
  const m1 = await l.ok('migrate', { vmId: 'v', toHost: 'b', strategy: 'qemu', blackoutNs: '300000000', preSaveGapNs: '20000000', vmmLatencyNs: '0' });
  await l.ok('advanceTime', { ns: '30000000000' });
  const m2 = await l.ok('migrate', { vmId: 'v.m1', toHost: 'a', strategy: 'qemu', blackoutNs: '300000000', preSaveGapNs: '20000000', vmmLatencyNs: '0' });
  await l.ok('advanceTime', { ns: '30000000000' });
  return [m1.audit, m2.audit];
}
const codes = (a: { findings: { code: string }[] }) => a.findings.map((f) => f.code);

describe('a tsc marked unstable', () => {
  it('in the first of two migrations is not marked again in the second', async () => {
    const [a1, a2] = await twoQemuMigrations({ kernel: '6.6' });
    expect(codes(a1)).toContain('watchdog_tsc_unstable');
    expect(codes(a2)).not.toContain('watchdog_tsc_unstable');
    expect(a2.guest.log.some((e: { text: string }) => e.text.includes("Marking clocksource 'tsc' as unstable"))).toBe(false);
    // the log's audit is the one migrate answered
    expect((await l.ok('audit', { migrationId: 'm2' })).audit).toEqual(a2);
    const life = (await l.ok('timeline', { vmId: 'v.m2' })).timeline;
    expect(life.vmIds).toEqual(['v', 'v.m1', 'v.m2']);
    expect(life.findings.filter((f: { code: string }) => f.code === 'tsc_marked_unstable').map((f: { migrationId: string }) => f.migrationId)).toEqual(['m1']);
  });

  it('a VM recorded without a guest keeps its audits as before: each stop alone, the tsc marked again', async () => {
    const [a1, a2] = await twoQemuMigrations(undefined);
    expect(codes(a1)).toContain('watchdog_tsc_unstable');
    expect(codes(a2)).toContain('watchdog_tsc_unstable');
  });
});

describe.each(ENGINE_NAMES)('the same timeline (%s)', (engine) => {
  beforeEach(() => {
    l.cleanup();
    l = newLedger(engine);
  });

  it('from a fresh process, from any of its VM ids, and under the recorded profile re-executed', async () => {
    await twoQemuMigrations({ ntp: { client: 'none' } });
    const t = (await l.ok('timeline', { vmId: 'v', stepNs: '1000000000' })).timeline;
    expect(t.samples.length).toBeGreaterThan(60);
    // kvmclock is saved after the 20 ms pre-save gap and restored as saved: each migration loses its
    // 300 ms blackout (−600 ms in all, to its ns rounding), and nothing corrects CLOCK_REALTIME
    expect(BigInt(t.samples.at(-1).realtimeErrorNs) / 1_000_000n).toBe(-600n);
    expect((await l.ok('timeline', { vmId: 'v.m2', stepNs: '1000000000' })).timeline).toEqual(t);
    expect((await l.ok('timeline', { vmId: 'v.m1', stepNs: '1000000000', profile: 'linux-6.6' })).timeline).toEqual(t);
    if (engine === 'sqlite') {
      const script =
        `import('${join(root, 'dist/index.js')}').then(async (m) => { ` +
        `const r = await m.handlers.timeline({ vmId: 'v.m1', stepNs: '1000000000' }, { db: ${JSON.stringify(l.db)} }); ` +
        'process.stdout.write(JSON.stringify(r)); process.exit(0); })';
      expect(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }))).toEqual({
        ok: true,
        format: 'json',
        timeline: t,
      });
    }
  });
});
