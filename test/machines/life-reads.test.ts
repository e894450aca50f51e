// A guest's life read by each VM state's closed form (machines/life/state-read.ts) is the life read
// through the emulated kernel at every instant, to the ns: the same samples, marks, cycles, findings
// and carry, on lives that cross every path of the reads (standbys, a refclock, an agent, a host
// 20 ppm slow, TSC scaling, software catch-up, chrony and ntpd, migrations between hosts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditOnce } from '../../machines/audit/audit-core.js';
import { logAuditSource } from '../../machines/audit/source.js';
import { lifeSource } from '../../machines/life/life-source.js';
import { toJson } from '../../machines/codec.js';
import { Correction, CorrectionD, freqPpb, SMALL } from '../../machines/life/correction.js';
import { guestLife, lifeToJson } from '../../machines/life/life.js';
import { DeltaSteps, kernelRead, mulDivFloor, readsKey, stateDeltas, stateReader } from '../../machines/life/state-read.js';
import { newLedger, type Ledger } from '../helpers/ledger.js';
import { registerKvmclock, standbys } from '../helpers/guest-setup.js';

let l: Ledger;
beforeEach(() => {
  l = newLedger();
});
afterEach(() => l.cleanup());

const S = 1_000_000_000n;

/** The life both ways, from any of its VM ids: equal, and not empty. */
async function sameBothWays(vmId: string, stepNs: bigint) {
  const src = logAuditSource(await l.store());
  const fast = guestLife(src, vmId, { stepNs })!;
  const exact = guestLife(src, vmId, { stepNs, exactReads: true })!;
  expect(fast.samples.length).toBeGreaterThan(50);
  expect(fast).toEqual(exact);
  // the timeline's JSON, samples converted row by row, is toJson()'s to the byte
  expect(JSON.stringify(lifeToJson(fast))).toBe(JSON.stringify(toJson(fast)));
  return fast;
}

async function guestOn(guest: object, host: object = {}, vm: object = {}, slewPpm?: number) {
  await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000, ...host });
  // the host's own NTP slewing its CLOCK_REALTIME (a negative slew: the floor of a negative product)
  if (slewPpm !== undefined) await l.ok('adjustRealtime', { hostId: 'a', slewPpm });
  // every instant of the life off the whole second (no product rounds exactly)
  await l.ok('advanceTime', { ns: 1_234_567 });
  await l.ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 2, guest, ...vm });
  await l.ok('runVcpu', { vmId: 'web' });
  await registerKvmclock(l, 'web', 2);
  await l.ok('advanceTime', { ns: (10n * S).toString() });
}

describe('the closed-form reads give the life the emulated kernel gives', () => {
  it('standby cycles without a time source', async () => {
    await guestOn({ ntp: { client: 'none' } });
    await standbys(l, 4);
    await sameBothWays('web', S);
  });

  it('chrony on the ptp_kvm refclock, with no makestep limit', async () => {
    await guestOn({ ntp: { client: 'chrony', refclock: 'ptp_kvm', makestepLimit: -1 } });
    await standbys(l, 4);
    const life = await sameBothWays('web', S);
    expect(life.marks.some((m) => m.source === 'ptp_kvm')).toBe(true);
  });

  it('a guest agent stepping above 1 s', async () => {
    await guestOn({ ntp: { client: 'none' }, agent: { everyNs: (30n * S).toString(), stepAboveNs: S.toString() } });
    await standbys(l, 3);
    const life = await sameBothWays('web', S);
    expect(life.marks.filter((m) => m.source === 'agent')).toHaveLength(3);
  });

  it('chrony on a host whose TSC runs 20 ppm slow and whose realtime slews, two days', async () => {
    await guestOn({ ntp: { client: 'chrony' } }, { actualTscHz: '2999940000' }, {}, -7.3);
    await l.ok('advanceTime', { ns: (2n * 86_400n * S).toString() });
    const life = await sameBothWays('web', 60n * S);
    // the client follows the drift: the error stays within a µs once its frequency is estimated
    expect(life.samples.slice(10).every((s) => s.realtimeErrorNs < 1000n && s.realtimeErrorNs > -1000n)).toBe(true);
  });

  it('a guest at its own TSC rate (scaled), migrated across hosts of other rates, one without scaling (catch-up)', async () => {
    await guestOn({ ntp: { client: 'chrony' } }, { initialTsc: '600000000000' }, { tscKhz: 2_500_000 });
    await l.ok('createHost', { hostId: 'b', tscKhz: 2_000_000, actualTscHz: '2000050000', initialTsc: '9000000000000' });
    await l.ok('createHost', { hostId: 'c', tscKhz: 2_400_000, tscScaling: false });
    await l.ok('advanceTime', { ns: (600n * S).toString() });
    const m1 = await l.ok('migrate', { vmId: 'web', toHost: 'b', strategy: 'qemu', blackoutNs: '300000000', preSaveGapNs: '20000000' });
    await l.ok('advanceTime', { ns: (900n * S).toString() });
    // Firecracker restores the guest's TSC rate where QEMU refuses the mismatch: a host without scaling catches it up in software
    const m2 = await l.ok('migrate', { vmId: m1.newVmId, toHost: 'c', strategy: 'firecracker', blackoutNs: '2000000000' });
    expect(m2.status).toBe('completed');
    await l.ok('advanceTime', { ns: (900n * S).toString() });
    const caughtUp = (await l.ok('stateAt', { vmId: m2.newVmId })).state.kvm.vcpus[0].tscAlwaysCatchup;
    expect(caughtUp).toBe(true);
    const life = await sameBothWays(m2.newVmId, S);
    expect(life.vmIds).toHaveLength(3);
  });

  // bench/life's life in small: chrony following a host 20 ppm slow, then one 15 ppm fast (its
  // frequency estimate negative, then positive), every update and sample of it in doubles
  it('chrony migrated between a host 20 ppm slow and one 15 ppm fast', async () => {
    await guestOn({ ntp: { client: 'chrony' } }, { actualTscHz: '2999940000' });
    await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000, actualTscHz: '3000045000' });
    await l.ok('advanceTime', { ns: (6n * 3600n * S).toString() });
    const m = await l.ok('migrate', { vmId: 'web', toHost: 'b', strategy: 'qemu', blackoutNs: '300000000' });
    await l.ok('advanceTime', { ns: (6n * 3600n * S).toString() });
    const life = await sameBothWays(m.newVmId, 7n * S);
    // the client's corrections kept the error within a µs on each host, once its estimate settled
    const settled = life.samples.filter(
      (s) => s.timeNs > life.startNs + 1800n * S && (s.timeNs < life.cycles[0]!.stopTime || s.timeNs > life.cycles[0]!.resumeTime! + 1800n * S),
    );
    expect(settled.length).toBeGreaterThan(5000);
    expect(settled.every((s) => s.realtimeErrorNs < 1000n && s.realtimeErrorNs > -1000n)).toBe(true);
  });

  // an update and a sample at one instant (the first span's polls fall on whole seconds of its
  // start): the update first, so a step shows in the sample at its instant (the error there is 0)
  it('chrony stepping beyond 1 µs on a host 20 ppm slow, its updates on the samples', async () => {
    await guestOn({ ntp: { client: 'chrony', makestepThresholdNs: '1000', makestepLimit: -1 } }, { actualTscHz: '2999940000' });
    await l.ok('advanceTime', { ns: (1200n * S).toString() });
    const life = await sameBothWays('web', S);
    const steps = life.marks.filter((m) => m.action === 'step');
    expect(steps.length).toBeGreaterThan(1);
    for (const m of steps) expect(life.samples.find((s) => s.timeNs === m.timeNs)?.realtimeErrorNs).toBe(0n);
  });

  // events that change what the guest reads in the middle of a running span (its TSC written, its
  // boot vCPU's kvmclock registered again): each instant is read on the state in force at it
  it('chrony while the guest writes its TSC and registers its kvmclock again', async () => {
    await guestOn({ ntp: { client: 'chrony' } }, { actualTscHz: '2999940000' });
    await l.ok('advanceTime', { ns: (300n * S + 123n).toString() });
    await l.ok('guest', { vmId: 'web', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC', value: '5000000000000000' });
    await l.ok('advanceTime', { ns: (200n * S).toString() });
    await l.ok('guest', { vmId: 'web', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x20001 });
    await l.ok('advanceTime', { ns: (900n * S).toString() });
    const life = await sameBothWays('web', S);
    // the TSC's error jumps at the write: 5·10^15 ticks at 3 GHz ahead of where it ran
    const jump = life.samples.findIndex((s, i) => i > 0 && s.tscErrorNs - life.samples[i - 1]!.tscErrorNs > 10n ** 15n);
    expect(jump).toBeGreaterThan(0);
  });

  // the guest's TSC (and so pvclock's delta) wraps 2^64 in the middle of a running span: the doubles
  // decline there (each value's room before its wrap) and the bigint reads take the instants after
  it("chrony across a wrap of the guest's TSC", async () => {
    await l.ok('createHost', { hostId: 'a', tscKhz: 3_000_000 });
    await l.ok('createVm', { vmId: 'web', hostId: 'a', vcpus: 1, guest: { ntp: { client: 'chrony' } } });
    await l.ok('runVcpu', { vmId: 'web' });
    await l.ok('guest', { vmId: 'web', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC', value: (2n ** 64n - 3_000_000_000_000n).toString() });
    await l.ok('guest', { vmId: 'web', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 });
    await l.ok('advanceTime', { ns: (2400n * S).toString() });
    const life = await sameBothWays('web', 10n * S);
    // the TSC's advance since the first run, read after the wrap: 2^64 ticks less
    expect(life.samples.at(-1)!.tscErrorNs < -(1n << 62n)).toBe(true);
    expect(life.samples.at(-1)!.kvmclockErrorNs! > -(10n ** 6n)).toBe(true);
  });

  // a standby of 14 days: its guest's clocks stood still, so after it their errors pass 2^50 ns (13
  // days) and the doubles decline (their terms must stay below it for every sum to be exact); the
  // bigint reads give those instants
  it('a standby of 14 days without a time source', async () => {
    await guestOn({ ntp: { client: 'none' } });
    await l.ok('migrate', { vmId: 'web', inPlace: true, strategy: 'qemu', blackoutNs: (14n * 86_400n * S).toString(), vmmLatencyNs: '0' });
    await l.ok('advanceTime', { ns: (1000n * S).toString() });
    const life = await sameBothWays('web', 10n * S);
    const big = (x: bigint | null) => x !== null && (x > 1n << 50n || x < -(1n << 50n));
    const after = life.samples.filter((s) => s.timeNs > life.cycles[0]!.resumeTime!);
    expect(after.length).toBeGreaterThan(50);
    expect(after.some((s) => big(s.realtimeErrorNs) || big(s.kvmclockErrorNs) || big(s.tscErrorNs))).toBe(true);
  });

  it('ntpd through a long blackout: its spike, then its step', async () => {
    await guestOn({ ntp: { client: 'ntpd' } });
    await l.ok('createHost', { hostId: 'b', tscKhz: 3_000_000, actualTscHz: '3000030000' });
    await l.ok('migrate', { vmId: 'web', toHost: 'b', strategy: 'qemu', blackoutNs: (5n * S).toString() });
    await l.ok('advanceTime', { ns: (1200n * S).toString() });
    const life = await sameBothWays('web', S);
    expect(life.marks.some((m) => m.source === 'ntpd' && m.action === 'step')).toBe(true);
  });
});

describe("the life's source: each VM's events read once", () => {
  it("leaves an x86 VM's tracepoints undecoded, and every audit of the life reads as from the log", async () => {
    await guestOn({ ntp: { client: 'chrony' } });
    await standbys(l, 3);
    const src = logAuditSource(await l.store());
    const life = lifeSource(src);
    // the log holds tracepoints with the VM's events; the life's reads of them have none
    expect(src.vmEvents('web', 0).filter((e) => 'trace' in (e.data as object)).length).toBeGreaterThan(10);
    const events = life.vmEvents('web', 0);
    expect(events.map((e) => [e.position, e.type, e.time])).toEqual(src.vmEvents('web', 0).map((e) => [e.position, e.type, e.time]));
    expect(events.some((e) => 'trace' in (e.data as object))).toBe(false);
    // no audit reads them: each stop's report is the one from the log's full events
    const ids = src.migrationIds();
    expect(ids).toHaveLength(3);
    for (const id of ids) expect(toJson(auditOnce(life, id))).toEqual(toJson(auditOnce(src, id)));
  });

  it("keeps an arm64 VM's tracepoints (its audit reads them)", async () => {
    await l.ok('createHost', { hostId: 'a', arch: 'arm64', cntfrqHz: '25000000' });
    await l.ok('createVm', { vmId: 'arm', hostId: 'a', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'arm' });
    await l.ok('advanceTime', { ns: (10n * S).toString() });
    const src = logAuditSource(await l.store());
    const full = src.vmEvents('arm', 0);
    expect(full.some((e) => 'trace' in (e.data as object))).toBe(true);
    expect(lifeSource(src).vmEvents('arm', 0)).toEqual(full);
  });
});

describe('one VM state read in closed form', () => {
  // A 500 MHz host (pvclock's tsc_shift is positive there) whose TSC wraps 2^64 some 2000 s in, its
  // realtime slewing −7.3 ppm from an anchor off the second; the guest at 700 MHz (TSC scaling).
  // Each instant is read both ways; among them those where (t − anchor) × slew is a whole number of
  // seconds (every 10^7 ns: 10^9 / gcd(7300, 10^9)) and the ns either side, where a floor taken as a
  // truncation would show.
  it('gives every instant the emulated kernel gives, across a wrap of the TSC and a negative slew', async () => {
    await l.ok('createHost', { hostId: 'w', tscKhz: 500_000, initialTsc: (2n ** 64n - 1_000_000_000_000n).toString() });
    await l.ok('advanceTime', { ns: 777_777_777 });
    await l.ok('adjustRealtime', { hostId: 'w', slewPpm: -7.3 });
    await l.ok('createVm', { vmId: 'g', hostId: 'w', vcpus: 1, tscKhz: 700_000 });
    await l.ok('runVcpu', { vmId: 'g' });
    await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 });
    const src = logAuditSource(await l.store());
    const now = src.now();
    const rec = src.vmAtTime('g', now)!;
    const host = src.host('w', now)!;
    expect(host.realtime.anchorT).toBe(777_777_777n);
    expect(rec.x86!.vcpus[0]!.pvti!.shift).toBeGreaterThan(0);
    expect(rec.x86!.vcpus[0]!.l1TscScalingRatio).not.toBe(1n << 48n);
    const read = stateReader(readsKey(rec, host)!);
    let wrapped = false;
    for (let k = 0n; k < 3000n; k++) {
      for (const t of [777_777_777n + k * 10_000_000n * 101n, 777_777_777n + k * 10_000_000n * 101n + 1n, now + k * 1_234_567_891n]) {
        const want = kernelRead(rec, host, t)!;
        expect(read(t)).toEqual(want);
        if (want.counter < 1_000_000_000n) wrapped = true;
      }
    }
    expect(wrapped).toBe(true);
  });

  // The other path: no TSC scaling (the host TSC is the guest's) on a 3 GHz host, where pvclock's
  // tsc_shift is negative (the delta shifted right before the multiply), across a wrap of the TSC.
  it('gives every instant the emulated kernel gives unscaled, with a negative tsc_shift, across a wrap', async () => {
    await l.ok('createHost', { hostId: 'u', tscKhz: 3_000_000, initialTsc: (2n ** 64n - 3_000_000_000_000n).toString() });
    await l.ok('createVm', { vmId: 'g', hostId: 'u', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'g' });
    // the guest's own TSC 1000 s before 2^64 too, so the pvclock delta crosses the wrap as well
    await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC', value: (2n ** 64n - 3_000_000_000_000n).toString() });
    await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 });
    const src = logAuditSource(await l.store());
    const now = src.now();
    const rec = src.vmAtTime('g', now)!;
    const host = src.host('u', now)!;
    expect(rec.x86!.vcpus[0]!.pvti!.shift).toBeLessThan(0);
    expect(rec.x86!.vcpus[0]!.l1TscScalingRatio).toBe(1n << 48n);
    const read = stateReader(readsKey(rec, host)!);
    let wrapped = false;
    for (let k = 0n; k < 3000n; k++) {
      for (const t of [now + k * 1_000_000_007n, now + k * 1_000_000_007n + 1n]) {
        const want = kernelRead(rec, host, t)!;
        expect(read(t)).toEqual(want);
        if (want.counter < 3_000_000_000_000n) wrapped = true;
      }
    }
    expect(wrapped).toBe(true);
  });
});

describe('one VM state read in doubles from its base', () => {
  it('⌊(r0 + a × m) / d⌋ in doubles is the bigint quotient, up to the edge of the exact range', () => {
    // a fixed sequence of awkward values: near powers of two, of ten, and the rates the reads use
    let x = 0x9e3779b97f4a7c15n;
    const next = (mod: bigint) => {
      x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
      return (x >> 11n) % mod;
    };
    const cases: [m: bigint, d: bigint][] = [
      [3_000_000_000n, 1_000_000_000n],
      [2_999_940_000n, 1_000_000_000n],
      [1_000_000_000n, 2_999_940_000n],
      [2_863_311_530n, 1n << 32n],
      [(1n << 32n) - 1n, 1n << 32n],
      [1n << 32n, 999_999_999n],
    ];
    for (const [m, d] of cases) {
      for (let i = 0; i < 2000; i++) {
        const a = i < 20 ? (1n << 52n) - BigInt(i) : next(1n << BigInt(10 + (i % 43)));
        const r0 = next(d);
        const want = (r0 + a * m) / d;
        const got = mulDivFloor(Number(a), Number(m), Number(d), Number(r0));
        expect(got === -1 ? want >= 1n << 53n : BigInt(got) === want).toBe(true);
      }
    }
  });

  it("the NTP client's frequency estimate in doubles is bigint division's, truncated toward zero", () => {
    for (const dt of [64_000_000_000n, 16_000_000_000n, 1_000_000_007n, 3n]) {
      for (const drift of [0n, 1n, -1n, 63n, -63n, 1_280_000n, -1_280_000n, 3_999_999n, -3_999_999n, 4_000_000n, -123_456_789n]) {
        expect(freqPpb(drift, dt)).toBe((drift * 1_000_000_000n) / dt);
        // and each side of a whole quotient
        const whole = ((drift * 1_000_000_000n) / dt) * dt;
        if (whole % 1_000_000_000n === 0n)
          for (const e of [-1n, 0n, 1n]) expect(freqPpb(whole / 1_000_000_000n + e, dt)).toBe(((whole / 1_000_000_000n + e) * 1_000_000_000n) / dt);
      }
    }
  });

  // The correction's slew (either sign, clamped at what is left) and frequency compensation (either
  // sign, truncated toward zero), rebased and read at instants whose products pass 2^53: the doubles
  // give the bigint values, or decline (and change nothing) exactly where a value leaves their range.
  it("the correction in doubles is the bigint one's, or declines", () => {
    let x = 0x2545f4914f6cdd1dn;
    const next = (mod: bigint) => {
      x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
      return (x >> 11n) % mod;
    };
    const origin = 1_234_567_890_123n;
    let given = 0;
    let declined = 0;
    for (let run = 0; run < 300; run++) {
      const c = new Correction(origin + next(1000n));
      c.base = next(2n * 10n ** 12n) - 10n ** 12n;
      c.slewLeft = run % 3 === 0 ? 0n : next(2n * 10n ** 10n) - 10n ** 10n;
      c.slewPpb = [0n, 500_000n, 83_333_333n, 1n << 32n][run % 4]!;
      c.freqPpb = run % 5 === 0 ? 0n : next(2n ** 33n + 1n) - 2n ** 32n;
      // near the edge of the doubles' range: a base a slew away from SMALL
      if (run % 7 === 0) c.base = BigInt(SMALL) - 1n - next(10n ** 9n);
      const d = CorrectionD.of(c, origin)!;
      expect(d).not.toBeNull();
      let t = c.at;
      for (let i = 0; i < 40; i++) {
        // steps of a poll, of days, of a ns; some back in time (before the correction's instant); the
        // offsets below 2^52, as a span's are
        t += [64_000_000_000n, next(86_400_000_000_000n * 3n), 1n, -next(3_000_000_000n)][i % 4]!;
        expect(t - origin < 1n << 52n).toBe(true);
        const o = Number(t - origin);
        const v = d.valueAt(o);
        const want = c.valueAt(t);
        if (Number.isNaN(v)) {
          declined++;
          expect(want <= -BigInt(SMALL) || want >= BigInt(SMALL)).toBe(true);
        } else {
          given++;
          expect(BigInt(v)).toBe(want);
        }
        const before = [d.base, d.slewLeft, d.at];
        if (d.rebase(o)) {
          c.rebase(t);
          const back = new Correction(0n);
          d.writeTo(back, origin);
          expect([back.base, back.slewLeft, back.slewPpb, back.freqPpb, back.at]).toEqual([c.base, c.slewLeft, c.slewPpb, c.freqPpb, c.at]);
        } else expect([d.base, d.slewLeft, d.at]).toEqual(before);
      }
    }
    expect(given).toBeGreaterThan(5000);
    expect(declined).toBeGreaterThan(100);
    // a slew read as it ends: dt around the instant its rate has done all that was left, either sign
    for (const left of [1n, 7n, -7n, 1_280_015n, -1_280_015n, 999_999_999_999n, -(10n ** 14n)]) {
      for (const rate of [500_000n, 83_333_333n, 1n << 32n, 3n]) {
        const end = ((left < 0n ? -left : left) * 10n ** 9n + rate - 1n) / rate;
        for (const dt of [end - 2n, end - 1n, end, end + 1n, 2n * end + 5n]) {
          if (dt <= 0n || dt >= 1n << 52n) continue;
          const c = new Correction(origin);
          c.slewLeft = left;
          c.slewPpb = rate;
          c.base = 5n;
          const d = CorrectionD.of(c, origin)!;
          const v = d.valueAt(Number(dt));
          expect(Number.isNaN(v) ? null : BigInt(v)).toBe(c.valueAt(origin + dt));
        }
      }
    }
    // frozen, or a rate beyond 2^32 ppb: no doubles
    const frozen = new Correction(origin);
    frozen.frozen = true;
    expect(CorrectionD.of(frozen, origin)).toBeNull();
    const fast = new Correction(origin);
    fast.freqPpb = (1n << 32n) + 1n;
    expect(CorrectionD.of(fast, origin)).toBeNull();
  });

  // 3 GHz (tsc_shift −1) and 500 MHz (tsc_shift +1) hosts, their TSC wrapping within the hour: each
  // instant's advance from the state's base is the bigint reads' to the ns
  it('gives the advance the closed form gives, and declines beyond the exact range', async () => {
    for (const [hostId, tscKhz] of [
      ['g3', 3_000_000],
      ['m5', 500_000],
    ] as const) {
      const top = 2n ** 64n - 1_000_000_000_000n;
      await l.ok('createHost', { hostId, tscKhz, initialTsc: top.toString() });
      await l.ok('advanceTime', { ns: 333_333_333 });
      await l.ok('createVm', { vmId: `v-${hostId}`, hostId, vcpus: 1 });
      await l.ok('runVcpu', { vmId: `v-${hostId}` });
      await l.ok('guest', { vmId: `v-${hostId}`, vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 });
      const src = logAuditSource(await l.store());
      const now = src.now();
      const rec = src.vmAtTime(`v-${hostId}`, now)!;
      const host = src.host(hostId, now)!;
      const read = stateReader(readsKey(rec, host)!);
      const d = stateDeltas(readsKey(rec, host)!, now)!;
      expect(d.at).toEqual(read(now));
      const out = { counter: 0, kvmclock: 0 };
      let given = 0;
      let declined = 0;
      for (let k = 0n; k < 4000n; k++) {
        const u = k * 987_654_321n + (k % 7n);
        const want = read(now + u);
        if (d.deltas(Number(u), out)) {
          given++;
          expect(d.at.counter + BigInt(out.counter)).toBe(want.counter);
          expect(d.at.kvmclock! + BigInt(out.kvmclock)).toBe(want.kvmclock);
        } else declined++;
      }
      // (the guest's TSC starts near 0 on its VM: the host's wrap does not reach it)
      expect(given).toBe(4000);
      expect(declined).toBe(0);
      // beyond 2^52 ns (52 days without an event) the doubles decline
      expect(d.deltas(2 ** 52, out)).toBe(false);
    }
  });

  // Hand-made states whose remainders meet their moduli exactly (a host at 500 MHz stepping 1 ns:
  // the ticks' fraction at 10^9; mul 2^31: kvm-clock's low bits at 2^32; ns counted at 7 Hz), a
  // positive tsc_shift with tsc − tsc_timestamp just below its wrap, and a shift of −3 at 2^32 Hz.
  it('stepped, carries each remainder at its modulus and refuses at each wrap', async () => {
    await l.ok('createHost', { hostId: 'h', tscKhz: 3_000_000 });
    const real = logAuditSource(await l.store()).host('h', 0n)!;
    const M = (1n << 64n) - 1n;
    const base = 1_000_000_000_123n;
    const cases = [
      { hz: 500_000_000n, mul: 2n ** 31n, shift: 0, ts: 0n, s: 1, hz0: 7 },
      { hz: 2n ** 32n, mul: 3_000_000_000n, shift: 2, ts: -1n, s: 13, hz0: 2 ** 32 },
      { hz: 2n ** 32n, mul: 2n ** 32n - 1n, shift: -3, ts: 5n, s: 1_000_000_007, hz0: 3_000_000_000 },
    ];
    for (const c of cases) {
      const host = { ...real, actualCounterHz: c.hz, initialCounter: 0n };
      const counterAtBase = (base * c.hz) / 1_000_000_000n;
      // ts −1: tsc − tsc_timestamp 2^16 ticks below where its shift by 2 wraps
      const ts = c.ts < 0n ? (counterAtBase - ((M >> BigInt(c.shift)) - 65_536n)) & M : c.ts;
      const key = { host, offset: 0n, ratio: 1n << 48n, fracBits: 48, pvti: { mul: c.mul, shift: c.shift, tscTimestamp: ts, systemTime: 1_000n } };
      const d = stateDeltas(key, base)!;
      const out = { counter: 0, kvmclock: 0 };
      const steps = new DeltaSteps(c.hz0);
      const cr = c.hz0 - 1;
      let given = 0;
      let refused = 0;
      for (let i = 0, u = 3; i < 5000; i++, u += c.s) {
        const ok = steps.at(d, u, c.s, cr);
        expect(ok).toBe(d.deltas(u, out));
        if (ok) {
          given++;
          expect([steps.counter, steps.kvmclock, steps.ns]).toEqual([out.counter, out.kvmclock, mulDivFloor(out.counter, 1e9, c.hz0, cr)]);
        } else refused++;
      }
      expect(given).toBeGreaterThan(c.ts < 0n ? 10 : 4999);
      expect(refused).toBe(c.ts < 0n ? 5000 - given : 0);
    }
  });

  // The same hosts, the guest's TSC written 1000 s of ticks before 2^64: stepping by a fixed step
  // (a minute, a poll, odd ones), the sequence broken now and then, up to and past the wrap. Each
  // advance is deltas()' and the TSC's ns its floor ⌊(cr + counter × 10^9) / hz0⌋; the steps
  // refuse exactly where deltas() does.
  it('stepped by a fixed step, gives what deltas() gives, and refuses where it does, across a wrap', async () => {
    for (const [hostId, tscKhz] of [
      ['g3', 3_000_000],
      ['m5', 500_000],
    ] as const) {
      await l.ok('createHost', { hostId, tscKhz });
      await l.ok('advanceTime', { ns: 333_333_333 });
      const vmId = `v-${hostId}`;
      await l.ok('createVm', { vmId, hostId, vcpus: 1 });
      await l.ok('runVcpu', { vmId });
      const ticks = BigInt(tscKhz) * 1000n * 1000n;
      await l.ok('guest', { vmId, vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC', value: (2n ** 64n - ticks).toString() });
      await l.ok('guest', { vmId, vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 });
      const src = logAuditSource(await l.store());
      const now = src.now();
      const rec = src.vmAtTime(vmId, now)!;
      const host = src.host(hostId, now)!;
      // (pvclock's tsc_shift negative at 3 GHz, positive at 500 MHz)
      expect(Math.sign(rec.x86!.vcpus[0]!.pvti!.shift)).toBe(tscKhz > 1_000_000 ? -1 : 1);
      const d = stateDeltas(readsKey(rec, host)!, now)!;
      const hz0 = tscKhz * 1000;
      const out = { counter: 0, kvmclock: 0 };
      for (const step of [60_000_000_000, 64_000_000_000, 1_000_000_007, 999_999_999, 7]) {
        const steps = new DeltaSteps(hz0);
        const cr = step % hz0;
        let u = step === 7 ? 999_999_000_000 : 0;
        let given = 0;
        let refused = 0;
        for (let i = 0; i < 3000 && u < 1100e9; i++) {
          // now and then a jump (a new sequence: computed afresh)
          if (i % 97 === 96) u += 12_345;
          const ok = steps.at(d, u, step, cr);
          expect(ok).toBe(d.deltas(u, out));
          if (ok) {
            given++;
            expect([steps.counter, steps.kvmclock]).toEqual([out.counter, out.kvmclock]);
            expect(steps.ns).toBe(mulDivFloor(out.counter, 1e9, hz0, cr));
          } else refused++;
          u += step === 7 ? 7 : step;
        }
        expect(given).toBeGreaterThan(step === 7 ? 100 : 15);
        if (step !== 7) expect(refused).toBeGreaterThan(0);
      }
    }
  });
});
