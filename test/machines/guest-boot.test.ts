// The clock lines a guest on kvm-clock prints as it boots (machines/guest/boot.ts), and printk's
// timestamps as sched_clock, against a real Firecracker guest's (test/fixtures/dmesg/real-world:
// Linux 6.18.44, TSC 2096.022 MHz, booted with tsc=unstable) number for number, and the
// clocksource watchdog's message against a real guest's after a QEMU migration.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nsTimeScale } from '../../kvm/x86/clock.js';
import { clocksCalcMultShift } from '../../kvm/host.js';
import { dmesgStamp } from '../../machines/audit/guest-rules.js';
import { bootLines, clocksourceRegisterLine, jiffiesMult, pvclockTscKhz, registerRefinedJiffiesMult, type GuestBoot } from '../../machines/guest/boot.js';
import { runClocks, timekeepingInit } from '../../machines/guest/clocks.js';
import { clocksCalcMaxNsecs, clocksourceMaxAdjustment } from '../../machines/guest/clocksource.js';
import { clocksourceWatchdog, clocksourceWatchdogConfig, type ClocksourceWatchdogState } from '../../machines/guest/cs-watchdog.js';
import { handGuest } from '../helpers/guest-clocks.js';
import { expectMigrateAuditsFromLog, newLedger, type Ledger } from '../helpers/ledger.js';

const DMESG = join(import.meta.dirname, '..', 'fixtures', 'dmesg', 'real-world');
const capture = (file: string) =>
  readFileSync(join(DMESG, file), 'utf8')
    .split('\n')
    .filter((l) => l.length);
const FIRECRACKER = capture('firecracker-6.18-guest-boot-and-restore.dmesg');
/** the stamp and the text of a dmesg line */
const split = (line: string) => /^\[\s*([\d.]+)\] (.*)$/.exec(line)!.slice(1) as [string, string];

/** kvm-clock reads true time since the VM's creation; the guest's kvmclock_init() ran 103 096 373 ns in */
const OFFSET = 103_096_373n;
const boot: GuestBoot = { timeNs: OFFSET, newMsrs: true, tscKhz: 2_096_022n };

describe('clocks_calc_max_nsecs(): max_cycles and max_idle_ns as the kernel registers them', () => {
  // kvm-clock at 1 GHz: mult 2^23 = 8 388 608, shift 23; maxadj = 11% of it, 922 746;
  // max_cycles = ⌊(2^64 − 1) / 9 311 354⌋ = 1 980 964 007 931 = 0x1cd42e4dffb; max_idle_ns =
  // (max_cycles × 7 465 862 >> 23) / 2 = 881 590 591 483
  it("kvm-clock: the Firecracker guest's numbers", () => {
    expect(clocksourceMaxAdjustment(8_388_608n)).toBe(922_746n);
    expect(clocksCalcMaxNsecs(8_388_608n, 23, 922_746n, (1n << 64n) - 1n)).toEqual({ maxCycles: 0x1cd42e4dffbn, maxNsecs: 881_590_591_483n });
    expect(clocksourceRegisterLine('kvm-clock', 8_388_608n, 23, (1n << 64n) - 1n)).toBe(
      'clocksource: kvm-clock: mask: 0xffffffffffffffff max_cycles: 0x1cd42e4dffb, max_idle_ns: 881590591483 ns',
    );
  });

  // jiffies at HZ 250: mult = 4 000 000 << 8 = 1 024 000 000, maxadj 112 640 000; the 32-bit mask
  // caps max_cycles; max_idle_ns = (0xffffffff × 911 360 000 >> 8) / 2 = 7 645 041 785 100 000.
  // refined-jiffies counts the PIT's 1 193 182 Hz: 4773 cycles a tick, shift_hz = (1 193 182 << 8
  // + 2386) / 4773 = 63 996, nsec_per_tick = (10^9 << 8 + 31 998) / 63 996 = 4 000 250, mult
  // 1 024 064 000; maxadj 112 647 040; (0xffffffff × 911 416 960 >> 8) / 2 = 7 645 519 600 211 568
  it('jiffies and refined-jiffies (HZ 250, PIT 1 193 182 Hz)', () => {
    expect(jiffiesMult()).toBe(1_024_000_000n);
    expect(registerRefinedJiffiesMult()).toBe(1_024_064_000n);
    expect(clocksourceRegisterLine('jiffies', jiffiesMult(), 8, 0xffff_ffffn)).toBe(
      'clocksource: jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645041785100000 ns',
    );
    expect(clocksourceRegisterLine('refined-jiffies', registerRefinedJiffiesMult(), 8, 0xffff_ffffn)).toBe(
      'clocksource: refined-jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645519600211568 ns',
    );
  });
});

describe('pvclock_tsc_khz(): the rate the guest reads from its pvclock page', () => {
  it('2 096 022 kHz survives KVM\'s scale (the "Detected 2096.022 MHz"); 3 192 607 kHz comes back 1 kHz short', () => {
    const at = (khz: bigint) => {
      const s = nsTimeScale(khz * 1000n);
      return pvclockTscKhz(BigInt(s.mul), s.shift);
    };
    expect(at(2_096_022n)).toBe(2_096_022n);
    expect(at(3_192_607n)).toBe(3_192_606n);
  });
});

describe('the boot lines', () => {
  const guest = (overrides = {}) => handGuest([0], { kvmclock: (t) => t, tsc: (t) => (t * 2_096_022n) / 1_000_000n }, overrides, 2_096_022, OFFSET);

  it("tsc=unstable: the Firecracker guest's clock lines, number for number, in its order", () => {
    const g = guest({ tscUnstable: true, kernel: '6.18' });
    bootLines(boot, g.clocks, g.settings, g.printk);
    const mine = /^(kvm-clock|clocksource|tsc): /;
    const real = FIRECRACKER.map(split).filter(([, text]) => mine.test(text));
    expect(g.texts()).toEqual(real.map(([, text]) => text));
    // stamped at the boot's instant: sched_clock there is 0, as the real guest's first two lines
    expect(g.log.map((e) => dmesgStamp(e.guestNs))).toEqual(real.map(() => '[0.000000]'));
    expect(real.slice(0, 2).map(([stamp]) => stamp)).toEqual(['0.000000', '0.000000']);
    expect(g.clocks.clocksources.map((c) => [c.name, c.rating])).toEqual([['kvm-clock', 400]]);
  });

  // Without tsc=unstable the TSC registers twice at tsc_khz 2 096 022: clocks_calc_mult_shift(2 096 022,
  // 10^6, 600 000) = mult 8 004 313, shift 24; maxadj 880 474; max_cycles ⌊(2^64 − 1) / 8 884 787⌋ =
  // 0x1e3682a4489; max_idle_ns 440 795 250 066. kvm-clock (400) stays ahead of tsc (300).
  it('without it: tsc-early, then tsc after the switch to kvm-clock', () => {
    expect(clocksCalcMultShift(2_096_022n, 1_000_000n, 600_000n)).toEqual({ mult: 8_004_313n, shift: 24 });
    const g = guest();
    bootLines(boot, g.clocks, g.settings, g.printk);
    const tsc = (name: string) => `clocksource: ${name}: mask: 0xffffffffffffffff max_cycles: 0x1e3682a4489, max_idle_ns: 440795250066 ns`;
    expect(g.texts().slice(4)).toEqual([
      'clocksource: refined-jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645519600211568 ns',
      tsc('tsc-early'),
      'clocksource: jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645041785100000 ns',
      'clocksource: Switched to clocksource kvm-clock',
      tsc('tsc'),
    ]);
  });

  it('an invariant TSC (kvm-clock 299) or clocksource=tsc: a second switch, to tsc', () => {
    for (const o of [{ invariantTsc: true }, { clocksource: 'tsc' as const }]) {
      const g = guest(o);
      bootLines(boot, g.clocks, g.settings, g.printk);
      expect(g.texts().slice(-3)).toEqual([
        'clocksource: Switched to clocksource kvm-clock',
        expect.stringMatching(/^clocksource: tsc: /),
        'clocksource: Switched to clocksource tsc',
      ]);
    }
  });

  it('the old MSR pair without KVM_FEATURE_CLOCKSOURCE2', () => {
    const g = guest();
    bootLines({ ...boot, newMsrs: false }, g.clocks, g.settings, g.printk);
    expect(g.texts()[0]).toBe('kvm-clock: Using msrs 12 and 11');
  });
});

describe('printk timestamps: sched_clock = kvm-clock − kvm_sched_clock_offset', () => {
  it("1 s after the boot the guest stamps 1.000000, not kvm-clock's 1.103096", () => {
    const g = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t }, {}, 1_000_000, OFFSET);
    g.printk(OFFSET + 1_000_000_000n, 0, 'x');
    expect(g.log[0]!.guestNs).toBe(1_000_000_000n);
    expect(dmesgStamp(g.log[0]!.guestNs)).toBe('[1.000000]');
  });

  it("a kvm-clock set back below the offset wraps as u64, as the kernel's subtraction does", () => {
    const g = handGuest([0], { kvmclock: () => 3n, tsc: (t) => t }, {}, 1_000_000, OFFSET);
    g.printk(0n, 0, 'x');
    expect(g.log[0]!.guestNs).toBe(2n ** 64n + 3n - OFFSET);
  });
});

// The watchdog's message on CPU26 of a 32-vCPU guest after a QEMU local migration, as printed:
// kvm-clock read 0x6dd50ce89 then 0x6fae14200 (wd_nsec 496 006 007), the TSC 0x1495b8075c then
// 0x14eb8565d9 (1 439 522 429 cycles). At tsc_khz 2 995 200 (mult/shift from
// clocks_calc_mult_shift(), the one rate in 2990-3000 MHz that gives it) that is cs_nsec
// 480 609 826: the skew −15 396 181 ns, −15 ms signed (6.6).
it("the watchdog's lines after a QEMU migration: the real guest's, number for number", () => {
  const real = capture('martins3-local-migration-cpu26.dmesg').map((l) => split(l)[1]);
  const at = 29_743_439_000n;
  const cpus = Array.from({ length: 32 }, (_, i) => i);
  const g = handGuest(cpus, { kvmclock: () => 0x6fae14200n, tsc: () => 0x14eb8565d9n }, { kernel: '6.6' }, 2_995_200);
  const config = clocksourceWatchdogConfig(g.clocks.clocksources, g.settings);
  const tk = timekeepingInit(g.clocks.clocksources, g.settings.clocksource);
  // the 27th run goes to CPU (27 − 1) mod 32 = 26
  const last = { tsc: { csLast: 0x1495b8075cn, wdLast: 0x6dd50ce89n } };
  const state: ClocksourceWatchdogState = { runs: 26n, expiresNs: 0n, last, resetPending: 0, maxIntervalNs: 0n };
  clocksourceWatchdog(state, tk, at, runClocks(g.clocks, tk, at), config, g.printk);
  expect(g.texts()).toEqual(real);
});

// The same boot through the emulated kernel and the audit: a 1-vCPU guest on a 2096.022 MHz host
// enables kvmclock 103 096 373 ns after its VM's creation (kvm-clock then reads that, less
// pvclock's truncation: `read`), runs 2 s, and is restored on another host after 30 s by Firecracker 1.13, whose
// KVM_SET_CLOCK carries the 30 s into kvm-clock without PVCLOCK_GUEST_STOPPED (issue #5322): the
// soft lockup at the resume. Its stamp is sched_clock = kvm-clock − the offset: 2 s + 30 s after the
// boot is [32.000000], where the raw kvm-clock would have read [32.103096].
describe('through the audit', () => {
  let l: Ledger;
  beforeEach(() => {
    l = newLedger();
  });
  afterEach(() => {
    expectMigrateAuditsFromLog(l);
    l.cleanup();
  });

  it("tsc=unstable: guest.boot has the offset the guest read and the capture's lines; the soft lockup is stamped kvm-clock − offset", async () => {
    await l.ok('createHost', { hostId: 'fc', tscKhz: 2_096_022 });
    await l.ok('createHost', { hostId: 'fc2', tscKhz: 2_096_022 });
    await l.ok('createVm', { vmId: 'g', hostId: 'fc', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'g' });
    await l.ok('advanceTime', { ns: Number(OFFSET) });
    await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 });
    const read = BigInt((await l.ok('guest', { vmId: 'g', vcpu: 0, op: 'kvmclock' })).value);
    await l.ok('advanceTime', { ns: 2_000_000_000 });
    const guest = { tscUnstable: true, kernel: '6.18' };
    const restore = { vmId: 'g', toHost: 'fc2', strategy: 'firecracker@1.13', blackoutNs: 30_000_000_000, vmmLatencyNs: 0 };
    const r = await l.ok('migrate', { ...restore, thresholds: { guest } });
    const g = r.audit.guest;
    expect(OFFSET - read).toBeLessThanOrEqual(1n);
    expect(g.boot.timeNs).toBe(String(OFFSET));
    expect(g.boot.schedOffset).toBe(String(read));
    const mine = /^(kvm-clock|clocksource|tsc): /;
    const real = FIRECRACKER.map(split)
      .filter(([, text]) => mine.test(text))
      .map(([, text]) => text.replace('103096373', String(read)));
    expect(g.boot.log.map((e: { text: string }) => e.text)).toEqual(real);
    expect(g.clocksource).toMatchObject({ before: 'kvm-clock', watchdog: null, ratings: { 'kvm-clock': 400 } });
    const lockup = g.log.find((e: { text: string }) => e.text.startsWith('watchdog: BUG: soft lockup'));
    expect(dmesgStamp(BigInt(lockup.guestNs))).toBe('[32.000000]');
    // the restored VM's kvmclock was enabled by its VMM (KVM_SET_MSRS): the guest booted elsewhere
    const next = await l.ok('migrate', { ...restore, vmId: r.newVmId, toHost: 'fc', thresholds: { guest } });
    expect(next.audit.guest.boot).toBeNull();
  });

  // A guest recorded with its VM boots 5 s after its VM's creation on a 1 GHz host, where pvclock's
  // scale is the identity (kvm_get_time_scale(10^9, 10^9): mul 2^31, shift 1), so kvm-clock reads the
  // exact ns since the creation and kvm_sched_clock_init() takes an offset of 5 000 000 000. It runs
  // 10 s and is restored on another 1 GHz host after 30 s by Firecracker 1.13 (kvm-clock carries the
  // 30 s), then runs 10 s and is restored back after 30 s more. The second restore's VM booted
  // nowhere: its guest kept the offset it took on 'v', so its soft lockup at true 85 s is stamped
  // [80.000000] (85 − 5), not [85.000000]; and the detector's get_timestamp() (sched_clock >> 30)
  // counts 30 s as the first restore's did: its stopper's last touch before the stop was at the last
  // 4 s sample period of sched_clock 50 s, 48 s (48e9 >> 30 = 44), and it reads 80e9 >> 30 = 74 at the
  // resume. Taken as 0, the offset made those 52e9 >> 30 = 48 and 85e9 >> 30 = 79: 31 s.
  it('a restored guest keeps the sched offset its boot on an earlier VM took: its stamps are kvm-clock − it', async () => {
    const lockupOf = (a: { guest: { log: { text: string; guestNs: string; timeNs: string }[] } }) =>
      a.guest.log.find((e) => e.text.startsWith('watchdog: BUG: soft lockup'))!;
    for (const recorded of [true, false]) {
      if (!recorded) {
        await expectMigrateAuditsFromLog(l);
        l.cleanup();
        l = newLedger();
      }
      await l.ok('createHost', { hostId: 'fc', tscKhz: 1_000_000 });
      await l.ok('createHost', { hostId: 'fc2', tscKhz: 1_000_000 });
      await l.ok('createVm', { vmId: 'v', hostId: 'fc', vcpus: 1, ...(recorded ? { guest: { kernel: '6.18' } } : {}) });
      await l.ok('runVcpu', { vmId: 'v' });
      await l.ok('advanceTime', { ns: 5_000_000_000 });
      await l.ok('guest', { vmId: 'v', vcpu: 0, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10001 });
      await l.ok('advanceTime', { ns: 10_000_000_000 });
      const restore = { strategy: 'firecracker@1.13', blackoutNs: 30_000_000_000, vmmLatencyNs: 0, thresholds: { guest: { kernel: '6.18' } } };
      const m1 = await l.ok('migrate', { vmId: 'v', toHost: 'fc2', ...restore });
      await l.ok('advanceTime', { ns: 10_000_000_000 });
      const m2 = await l.ok('migrate', { vmId: 'v.m1', toHost: 'fc', ...restore });
      // the first restore: the boot is on its VM, the offset its own
      expect(m1.audit.guest.boot).toMatchObject({ timeNs: '5000000000', schedOffset: '5000000000' });
      expect(m1.audit.guest.boot.log).toHaveLength(9);
      expect(lockupOf(m1.audit)).toMatchObject({ timeNs: '45000000000', guestNs: '40000000000' });
      expect(lockupOf(m1.audit).text).toContain('stuck for 30s!');
      const lockup = lockupOf(m2.audit);
      expect(lockup.timeNs).toBe('85000000000');
      if (recorded) {
        expect(m2.audit.guest.boot).toEqual({ timeNs: '5000000000', schedOffset: '5000000000', log: [] });
        expect(lockup.guestNs).toBe('80000000000');
        expect(lockup.text).toContain('stuck for 30s!');
        // the life carries it, to the end
        const life = (await l.ok('timeline', { vmId: 'v.m2' })).timeline;
        expect(life.carry.boot).toEqual({ vmId: 'v', timeNs: '5000000000', schedOffset: '5000000000' });
      } else {
        // a VM recorded without a guest: each stop alone, as before (the boot elsewhere is not known)
        expect(m2.audit.guest.boot).toBeNull();
        expect(lockup.guestNs).toBe('85000000000');
        expect(lockup.text).toContain('stuck for 31s!');
      }
    }
  });

  it('tsc=unstable on a guest without kvmclock: a clocksource the model does not emulate, no guest simulated', async () => {
    await l.ok('createHost', { hostId: 'fc', tscKhz: 2_096_022 });
    await l.ok('createVm', { vmId: 'g', hostId: 'fc', vcpus: 1 });
    await l.ok('runVcpu', { vmId: 'g' });
    await l.ok('advanceTime', { ns: 2_000_000_000 });
    const r = await l.ok('migrate', { vmId: 'g', inPlace: true, strategy: 'firecracker', blackoutNs: 1_000_000, thresholds: { guest: { tscUnstable: true } } });
    expect(r.audit.guest).toBeNull();
    const plain = await l.ok('audit', { migrationId: r.migrationId });
    expect(plain.audit.guest.clocksource.before).toBe('tsc');
  });
});
