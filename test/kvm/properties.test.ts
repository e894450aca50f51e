// Property tests of the emulated x86 clock core: offsets are idempotent, guest clocks never run
// backwards on their own, and u64 arithmetic wraps exactly where the kernel's does.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostCounter, type Vendor } from '../../kvm/host.js';
import { PROFILES } from '../../kvm/profiles.js';
import { KVM_CLOCK_TSC_STABLE, PVCLOCK_TSC_STABLE_BIT } from '../../kvm/uapi.js';
import type { Pvti } from '../../kvm/x86/state.js';
import { X86Sim } from './sim.js';

const TWO64 = 1n << 64n;
const MASK64 = TWO64 - 1n;
const NSEC_PER_SEC = 1_000_000_000n;
/** (u64)-180e9, the negative offset of the kernel's system_counter_offset_test */
const MINUS_180S = TWO64 - 180n * NSEC_PER_SEC;
const KVMCLOCK_ENABLE = 0x1000n | 1n; // guest: wrmsr(MSR_KVM_SYSTEM_TIME_NEW, gpa | KVM_MSR_ENABLED)
const FRAC = { vmx: 48n, svm: 32n } as const;
/** A fixed seed keeps the suite deterministic; change it (or raise numRuns) locally to explore further. */
const SEED = 0x6b766d;

// Independent restatements of the kernel's C, so the properties do not just compare kvm/arith.ts with itself.
/** kvm_scale_tsc(): mul_u64_u64_shr(tsc, ratio, frac), the 128-bit product's bits frac..frac+63 */
const refScale = (tsc: bigint, ratio: bigint, frac: bigint) => (ratio === 1n << frac ? tsc : ((tsc * ratio) >> frac) & MASK64);
/** __pvclock_read_cycles(), step by step as in arch/x86/include/asm/pvclock.h */
function refPvclockRead(p: Pvti, tsc: bigint): bigint {
  let delta = (tsc - p.tscTimestamp) & MASK64; // u64 delta
  if (p.shift < 0) delta >>= BigInt(-p.shift);
  else delta = (delta << BigInt(p.shift)) & MASK64;
  const scaled = ((delta * p.mul) >> 32n) & MASK64; // mul_u64_u32_shr(delta, mul, 32)
  return (p.systemTime + scaled) & MASK64; // u64 add
}

const X86_PROFILES = PROFILES.map((p) => p.name);
const ATTR_PROFILES = PROFILES.filter((p) => p.x86.vcpuTscOffsetAttr).map((p) => p.name);

const u64Edge = fc.constantFrom(0n, MASK64, MINUS_180S, 1n << 63n, 180n * NSEC_PER_SEC);
const anyU64 = fc.oneof(u64Edge, fc.bigInt({ min: 0n, max: MASK64 }));
/** Host TSC at true time 0: small, anywhere, or within ~30 min of 2^64 at a few GHz so that it wraps. */
const initialTsc = fc.oneof(fc.bigInt({ min: 0n, max: 1n << 40n }), fc.bigInt({ min: 0n, max: MASK64 }), fc.bigInt({ min: TWO64 - (1n << 42n), max: MASK64 }));
/** Guest kHz as per-mille of the host's: none, inside the 250 ppm window, or needing scaling (1/8× … 8×). */
const guestPerMille = fc.option(fc.oneof(fc.constant(1000), fc.integer({ min: 125, max: 8000 })), { nil: undefined });
/**
 * Time steps: sub-µs, up to 0.1 s, long ones that cross the 100 ms update work and the 300 s sync,
 * and "to within ±1 µs of the next due work" so that reads land just before and just after a page update.
 */
type Step = bigint | { nearWork: bigint };
const steps = fc.array(
  fc.oneof(
    fc.bigInt({ min: 1n, max: 1_000n }),
    fc.bigInt({ min: 1_000n, max: 100_000_000n }),
    fc.bigInt({ min: 100_000_000n, max: 400n * NSEC_PER_SEC }),
    fc.record({ nearWork: fc.bigInt({ min: -1_000n, max: 1_000n }) }),
  ),
  { minLength: 1, maxLength: 20 },
);
/** The length of one step from now. */
function stepLength(sim: X86Sim, s: Step): bigint {
  if (typeof s === 'bigint') return s;
  const due = [sim.vm.kvmclockUpdateWorkAt, sim.vm.kvmclockSyncWorkAt].filter((x): x is bigint => x !== null);
  const next = due.reduce((a, b) => (a < b ? a : b), sim.t + 400n * NSEC_PER_SEC);
  const d = next + s.nearWork - sim.t;
  return d > 0n ? d : 1n;
}

function guestKhzOf(hostKhz: number, perMille: number | undefined): number | undefined {
  if (perMille === undefined) return undefined;
  // 1000 ‰ lands inside the tolerance window: a kHz 100 ppm off the host's.
  return perMille === 1000 ? hostKhz + Math.floor(hostKhz / 10_000) : Math.floor((hostKhz * perMille) / 1000);
}

describe('KVM_VCPU_TSC_OFFSET writes are idempotent', () => {
  it('writing an offset twice at different instants reads the same guest TSC later as writing it once', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ATTR_PROFILES),
        anyU64,
        initialTsc,
        guestPerMille,
        fc.bigInt({ min: 0n, max: 5n * NSEC_PER_SEC }),
        fc.bigInt({ min: 1n, max: 5n * NSEC_PER_SEC }),
        fc.bigInt({ min: 0n, max: 5n * NSEC_PER_SEC }),
        fc.bigInt({ min: 0n, max: 5n * NSEC_PER_SEC }),
        (profile, offset, initialCounter, perMille, d0, d1, d2, d3) => {
          const tscKhz = 2_500_000;
          const guestKhz = guestKhzOf(tscKhz, perMille);
          const setup = () => {
            const sim = new X86Sim({ tscKhz, initialCounter }, profile);
            expect(sim.ioctl('KVM_CREATE_VCPU', 0).ret).toBe(0);
            if (guestKhz !== undefined) expect(sim.ioctl('KVM_SET_TSC_KHZ', guestKhz, 0)).toEqual({ ret: 0 });
            return sim;
          };
          const write = (sim: X86Sim) => expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { group: 0, attr: 0, value: offset }, 0)).toEqual({ ret: 0 });
          // once: at d0 + d1. twice: at d0 and at d0 + d1 + d2. Both read at d0 + d1 + d2 + d3.
          const once = setup();
          once.advance(d0 + d1);
          write(once);
          once.advance(d2 + d3);
          const twice = setup();
          twice.advance(d0);
          write(twice);
          const gen = twice.vm.curTscGeneration;
          twice.advance(d1 + d2);
          write(twice);
          // the same offset at the same kHz is matched: no new generation
          expect(twice.vm.curTscGeneration).toBe(gen);
          twice.advance(d3);
          expect(twice.t).toBe(once.t);

          for (const sim of [once, twice]) sim.ioctl('KVM_RUN', undefined, 0);
          const a = once.guest(0, 'rdtsc').value!;
          const b = twice.guest(0, 'rdtsc').value!;
          expect(b).toBe(a);
          // and both are the kernel's guest TSC: kvm_scale_tsc(rdtsc, ratio) + offset, mod 2^64
          const v = once.vm.vcpus[0]!;
          expect(a).toBe((refScale(once.hostTsc(), v.l1TscScalingRatio, FRAC.vmx) + offset) & MASK64);
          expect(twice.ioctl('KVM_GET_DEVICE_ATTR', { group: 0, attr: 0 }, 0).out).toEqual({ value: offset });
        },
      ),
      { numRuns: 60, seed: SEED },
    );
  });
});

describe('with no writes, a running vCPU never sees its TSC or kvmclock go backwards', () => {
  it('guest rdtsc and kvmclock reads are monotonic across time advances, update work and periodic sync', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...X86_PROFILES),
        fc.integer({ min: 500_000, max: 5_000_000 }),
        fc.constantFrom<Vendor>('vmx', 'svm'),
        initialTsc,
        guestPerMille,
        fc.constantFrom<'tsc' | 'hpet'>('tsc', 'tsc', 'hpet'),
        fc.integer({ min: -50, max: 50 }),
        steps,
        (profile, tscKhz, vendor, initialCounter, perMille, clocksource, ppm, advances) => {
          const nominalHz = BigInt(tscKhz) * 1000n;
          const actualHz = nominalHz + (nominalHz * BigInt(ppm)) / 1_000_000n;
          const sim = new X86Sim({ tscKhz, vendor, initialCounter, clocksource, actualHz }, profile);
          sim.advance(1_000n);
          expect(sim.ioctl('KVM_CREATE_VCPU', 0).ret).toBe(0);
          const guestKhz = guestKhzOf(tscKhz, perMille);
          if (guestKhz !== undefined) expect(sim.ioctl('KVM_SET_TSC_KHZ', guestKhz, 0)).toEqual({ ret: 0 });
          const vcpu = sim.vm.vcpus[0]!;
          const frac = FRAC[vendor];
          const scaled = vcpu.l1TscScalingRatio !== 1n << frac;

          // Restriction (hardware, not KVM): the multiplier applies to the 64-bit host TSC, so when the
          // host TSC wraps a scaled guest TSC restarts from (0 · ratio) + offset instead of continuing;
          // see the wrap-around tests below. Unscaled, host + offset wraps seamlessly modulo 2^64.
          const total = advances.reduce<bigint>((a, b) => a + (typeof b === 'bigint' ? b : 400n * NSEC_PER_SEC + 1_000n), 0n);
          const hostCyclesAhead = (total * actualHz) / NSEC_PER_SEC + 1n;
          fc.pre(!scaled || hostCyclesAhead < TWO64 - sim.hostTsc());

          sim.ioctl('KVM_RUN', undefined, 0);
          expect(sim.guest(0, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE })).toEqual({});
          const master = clocksource === 'tsc';
          expect(sim.vm.useMasterClock).toBe(master);

          // Non-master-clock mode (here: an HPET host clocksource) rebases the page on every clock update
          // (the 100 ms update work, the 300 s sync) to (rdtsc, CLOCK_MONOTONIC_RAW) now. The page
          // converts guest cycles at the kHz-truncated (scaled) frequency while CLOCK_MONOTONIC_RAW
          // follows the real time, so between two rebases kvmclock drifts from it and each rebase
          // steps it back by that drift when the pvclock ran fast. The kernel makes no monotonicity
          // promise without PVCLOCK_TSC_STABLE_BIT (the Linux guest clamps to its last_value for
          // exactly that reason). So there: monotonic within one page, and a step back bounded by
          // the rate error of the page's (mul, shift) times the time the old page was used.
          const rateError = (p: Pvti) => {
            // the guest TSC's real rate, unrounded (a floor here would be off by up to 1 Hz: 4.7 µs over 300 s at 63.5 MHz)
            const guestHz = (Number(actualHz) * Number(vcpu.l1TscScalingRatio)) / 2 ** Number(frac);
            const nsPerCycle = (Number(p.mul) * 2 ** p.shift) / 2 ** 32;
            return Math.abs((guestHz * nsPerCycle) / 1e9 - 1) + 1e-9;
          };

          let prev = { tsc: sim.guest(0, 'rdtsc').value!, host: sim.hostTsc(), ...read(sim) };
          for (const s of advances) {
            sim.advance(stepLength(sim, s));
            const host = sim.hostTsc();
            const tsc = sim.guest(0, 'rdtsc').value!;
            const cur = { tsc, host, ...read(sim) };
            // The guest TSC is a u64: without a re-synchronisation KVM_SET_TSC_KHZ leaves it at
            // scale(rdtsc) + (−rdtsc at creation), which a slower guest starts just below 2^64 and
            // wraps through 0 (as in the kernel). So "forwards" is modulo 2^64: each step is the
            // host cycles that passed, scaled, to within the truncation of the two scaled values.
            const step = (cur.tsc - prev.tsc) & MASK64;
            const hostStep = (cur.host - prev.host) & MASK64;
            const ideal = (hostStep * vcpu.l1TscScalingRatio) >> frac;
            expect(step >= ideal - 1n && step <= ideal + 1n, `rdtsc ${prev.tsc} -> ${cur.tsc}, expected +${ideal}`).toBe(true);
            if (master) {
              expect(cur.flags & PVCLOCK_TSC_STABLE_BIT).toBe(PVCLOCK_TSC_STABLE_BIT);
              expect(cur.clock >= prev.clock, `kvmclock ${prev.clock} -> ${cur.clock}`).toBe(true);
            } else if (cur.page.version === prev.page.version) {
              expect(cur.clock >= prev.clock, `kvmclock within one page ${prev.clock} -> ${cur.clock}`).toBe(true);
            } else if (cur.clock < prev.clock) {
              const used = Number(prev.clock - prev.page.systemTime);
              expect(Number(prev.clock - cur.clock)).toBeLessThanOrEqual(used * rateError(prev.page) * 1.001 + 4);
            }
            prev = cur;
          }
        },
      ),
      { numRuns: 200, seed: SEED },
    );
  });
});

function read(sim: X86Sim) {
  const r = sim.guest(0, 'kvmclock');
  const page = { ...sim.vm.vcpus[0]!.pvti! };
  // the guest's read is __pvclock_read_cycles(page, rdtsc)
  expect(r.value).toBe(refPvclockRead(page, r.tsc!));
  return { clock: r.value!, flags: r.flags!, page };
}

describe('u64 wrap-around at the edges', () => {
  it('guest TSC = (host TSC + offset) mod 2^64 for offsets that wrap small host TSCs', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 1_000_000_000_000n }),
        fc.oneof(fc.constantFrom(MINUS_180S, MASK64, 1n << 63n), fc.bigInt({ min: 1n << 63n, max: MASK64 })),
        fc.bigInt({ min: 0n, max: 10n * NSEC_PER_SEC }),
        (initialCounter, offset, later) => {
          const sim = new X86Sim({ tscKhz: 3_000_000, initialCounter });
          sim.ioctl('KVM_CREATE_VCPU', 0);
          expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET', value: offset }, 0).ret).toBe(0);
          sim.advance(later);
          const host = sim.hostTsc();
          const expected = (host + offset) % TWO64;
          sim.ioctl('KVM_RUN', undefined, 0);
          expect(sim.guest(0, 'rdtsc').value).toBe(expected);
          const msr = sim.ioctl('KVM_GET_MSRS', { indices: ['MSR_IA32_TSC'] }, 0).out as { entries: { data: bigint }[] };
          expect(msr.entries[0]!.data).toBe(expected);
          if (host + offset >= TWO64) expect(expected).toBeLessThan(host);
        },
      ),
      { numRuns: 100, seed: SEED },
    );
  });

  it('worked example: host TSC 1000 with offset (u64)-180e9 reads 2^64 - 180e9 + 1000', () => {
    const sim = new X86Sim({ tscKhz: 2_000_000, initialCounter: 1000n });
    sim.ioctl('KVM_CREATE_VCPU', 0);
    sim.ioctl('KVM_SET_DEVICE_ATTR', { group: 0, attr: 0, value: '-180000000000' }, 0);
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'rdtsc').value).toBe(18_446_743_893_709_552_616n);
    // 90 s later the guest TSC itself has wrapped through 2^64: 1000 + 180e9 − 180e9
    sim.advance(90n * NSEC_PER_SEC);
    expect(sim.guest(0, 'rdtsc').value).toBe(1000n);
  });

  it.each([
    { guestKhz: 3_000_000, jumps: false, what: 'unscaled: host + offset wraps seamlessly' },
    { guestKhz: 2_500_000, jumps: true, what: 'VMX ratio < 1' },
    { guestKhz: 4_500_000, jumps: true, what: 'VMX ratio > 1: bits 48..111 of the 128-bit product, truncated to 64' },
  ])('scaled TSC of host values near 2^64 ($what)', ({ guestKhz, jumps }) => {
    const hostKhz = 3_000_000;
    const initialCounter = TWO64 - 3_000_000_000n; // the host TSC wraps 1 s in
    const sim = new X86Sim({ tscKhz: hostKhz, vendor: 'vmx', initialCounter });
    // VM-wide kHz before the vCPU exists (as tsc_scaling_sync does), so the vCPU starts scaled at guest TSC 0.
    expect(sim.ioctl('KVM_SET_TSC_KHZ', guestKhz)).toEqual({ ret: 0 });
    sim.ioctl('KVM_CREATE_VCPU', 0);
    const ratio = guestKhz === hostKhz ? 1n << 48n : ((1n << 48n) * BigInt(guestKhz)) / BigInt(hostKhz);
    expect(sim.vm.vcpus[0]!.l1TscScalingRatio).toBe(ratio);
    const scale = (host: bigint) => ((host * ratio) >> 48n) & MASK64;
    const offset = (TWO64 - scale(initialCounter)) & MASK64;
    expect(sim.vm.vcpus[0]!.l1TscOffset).toBe(offset);
    const guestAt = (host: bigint) => (scale(host) + offset) & MASK64;
    sim.ioctl('KVM_RUN', undefined, 0);

    sim.advance(999_999_999n); // host TSC 2^64 − 3
    expect(sim.hostTsc()).toBe(MASK64 - 2n);
    const before = sim.guest(0, 'rdtsc').value!;
    expect(before).toBe(guestAt(MASK64 - 2n));
    // about one second of guest cycles so far
    expect(before / BigInt(guestKhz)).toBe(999n);
    sim.advance(2n); // host TSC 2^64 + 3 → 3
    expect(sim.hostTsc()).toBe(3n);
    const after = sim.guest(0, 'rdtsc').value!;
    expect(after).toBe(guestAt(3n));
    const step = (after - before) & MASK64;
    if (!jumps) expect(step).toBe(6n);
    // Scaled, the multiplier restarts with the host's count: the guest TSC leaps by ~2^64·(1 − ratio) mod 2^64
    // instead of advancing 5 cycles, as VMX hardware (and kvm_scale_tsc) compute it.
    else expect(step > 1n << 60n).toBe(true);
  });

  it('pvclock reads where system_time + delta wraps through 2^64', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 2n * NSEC_PER_SEC }),
        fc.bigInt({ min: 0n, max: 4n * NSEC_PER_SEC }),
        fc.bigInt({ min: 0n, max: MASK64 }),
        (beforeWrap, elapsed, initialCounter) => {
          const sim = new X86Sim({ tscKhz: 2_000_000, initialCounter });
          sim.ioctl('KVM_CREATE_VCPU', 0);
          sim.ioctl('KVM_RUN', undefined, 0);
          sim.guest(0, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE });
          sim.pause(0);
          const clock = TWO64 - beforeWrap;
          expect(sim.ioctl('KVM_SET_CLOCK', { clock })).toEqual({ ret: 0 });
          sim.ioctl('KVM_RUN', undefined, 0);
          const page = sim.vm.vcpus[0]!.pvti!;
          expect(page.systemTime).toBe(clock); // master clock: SET_CLOCK's reference point is the page's
          sim.advance(elapsed);
          const g = sim.guest(0, 'kvmclock');
          expect(g.value).toBe(refPvclockRead(page, g.tsc!));
          // 2 GHz: (mul, shift) = (2^31, 0) converts cycles to ns exactly, so kvmclock = clock + elapsed mod 2^64
          expect(g.value).toBe((clock + elapsed) % TWO64);
          const k = sim.ioctl('KVM_GET_CLOCK').out as { clock: bigint; flags: number };
          expect(k.flags & KVM_CLOCK_TSC_STABLE).toBe(KVM_CLOCK_TSC_STABLE);
          expect(k.clock).toBe((clock + elapsed) % TWO64);
          if (elapsed >= beforeWrap) expect(g.value! < clock).toBe(true);
        },
      ),
      { numRuns: 60, seed: SEED },
    );
  });

  it('hostCounter itself wraps modulo 2^64', () => {
    const sim = new X86Sim({ tscKhz: 1_000_000, initialCounter: MASK64 });
    expect(hostCounter(sim.host, 0n)).toBe(MASK64);
    expect(hostCounter(sim.host, 1n)).toBe(0n);
  });
});
