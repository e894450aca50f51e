// What each kernel profile does differently (KVM.md §12, kvm/profiles.ts), the KVM_SET_TSC_KHZ rules
// of §5, KVM_KVMCLOCK_CTRL, the legacy kvmclock MSR and the master clock, with the expected numbers
// worked out here from the kernel's formulas.
import { describe, expect, it } from 'vitest';
import { getTimeScale, hvclockToHz } from '../../kvm/arith.js';
import { DEFAULT_REALTIME_OFFSET_NS, sampleHost, type HostSpec } from '../../kvm/host.js';
import { catchupTickDue, kvmCatchupTick } from '../../kvm/x86/vm.js';
import { KVM_CLOCK_HOST_TSC, KVM_CLOCK_REALTIME, KVM_CLOCK_TSC_STABLE, MSRS, PVCLOCK_GUEST_STOPPED, PVCLOCK_TSC_STABLE_BIT } from '../../kvm/uapi.js';
import { X86Sim } from './sim.js';

const NSEC_PER_SEC = 1_000_000_000n;
const MS = 1_000_000n;
const US = 1_000n;
const KVMCLOCK_ENABLE = 0x2000n | 1n;
const EINVAL = { ret: -1, errno: 'EINVAL' };
const ENXIO = { ret: -1, errno: 'ENXIO' };
const ENOTTY = { ret: -1, errno: 'ENOTTY' };
const ERANGE = { ret: -1, errno: 'ERANGE' };

type ClockOut = {
  clock: bigint;
  flags: number;
  realtime: bigint;
  host_tsc: bigint;
};
type PvtiOut = {
  version: number;
  tsc_timestamp: bigint;
  system_time: bigint;
  tsc_to_system_mul: bigint;
  tsc_shift: number;
  flags: number;
};

/** A VM with `n` vCPUs created 1 µs apart, each in KVM_RUN with kvmclock enabled by the guest. */
function runningVm(profile: string, spec: Partial<HostSpec> = {}, n = 1, guestKhz?: number): X86Sim {
  const sim = new X86Sim({ initialCounter: 1_000_000_000_000n, ...spec }, profile);
  sim.advance(NSEC_PER_SEC);
  for (let id = 0; id < n; id++) {
    expect(sim.ioctl('KVM_CREATE_VCPU', id)).toEqual({ ret: 0 });
    if (guestKhz !== undefined) expect(sim.ioctl('KVM_SET_TSC_KHZ', guestKhz, id)).toEqual({ ret: 0 });
    sim.advance(US);
  }
  for (let id = 0; id < n; id++) {
    sim.ioctl('KVM_RUN', undefined, id);
    expect(sim.guest(id, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE })).toEqual({});
  }
  return sim;
}
const getClock = (sim: X86Sim) => sim.ioctl('KVM_GET_CLOCK').out as ClockOut;
const guestTsc = (sim: X86Sim, id = 0) => sim.guest(id, 'rdtsc').value!;
const hostReadTsc = (sim: X86Sim, id = 0) =>
  (sim.ioctl('KVM_GET_MSRS', { indices: ['MSR_IA32_TSC'] }, id).out as { entries: { data: bigint }[] }).entries[0]!.data;
const pauseAll = (sim: X86Sim) => {
  for (const v of sim.vm.vcpus) sim.pause(v.id);
};
const runAll = (sim: X86Sim) => {
  for (const v of sim.vm.vcpus) sim.ioctl('KVM_RUN', undefined, v.id);
};
/** ratio = floor(2^frac · user_khz / host_khz) */
const ratioOf = (userKhz: bigint, hostKhz: bigint, frac = 48n) => ((1n << frac) * userKhz) / hostKhz;

describe('linux-5.15: KVM_SET_CLOCK refuses any flag', () => {
  it.each([KVM_CLOCK_TSC_STABLE, KVM_CLOCK_REALTIME, KVM_CLOCK_HOST_TSC, KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC | KVM_CLOCK_TSC_STABLE, 1])(
    'flags %d → EINVAL, kvmclock untouched',
    (flags) => {
      const sim = runningVm('linux-5.15');
      const before = getClock(sim);
      const offset = sim.vm.kvmclockOffset;
      expect(sim.ioctl('KVM_SET_CLOCK', { clock: 42n * NSEC_PER_SEC, flags, realtime: 1n })).toEqual(EINVAL);
      expect(sim.vm.kvmclockOffset).toBe(offset);
      expect(getClock(sim)).toEqual(before);
    },
  );

  it('flags 0 sets kvmclock: 42 s, then 1 ms later 42.001 s (2 GHz host: exact)', () => {
    const sim = runningVm('linux-5.15');
    expect(sim.ioctl('KVM_SET_CLOCK', { clock: 42n * NSEC_PER_SEC })).toEqual({ ret: 0 });
    sim.advance(MS);
    expect(getClock(sim).clock).toBe(42n * NSEC_PER_SEC + MS);
  });

  it('linux-6.6 for contrast: KVM_CLOCK_REALTIME is honoured, a flag outside 0xE is still EINVAL', () => {
    const sim = runningVm('linux-6.6');
    expect(sim.ioctl('KVM_SET_CLOCK', { clock: 0n, flags: 1 })).toEqual(EINVAL);
    // A realtime 180 s in the past adds the 180 s that passed since.
    const nowReal = DEFAULT_REALTIME_OFFSET_NS + sim.t;
    expect(sim.ioctl('KVM_SET_CLOCK', { clock: 5n * NSEC_PER_SEC, flags: KVM_CLOCK_REALTIME, realtime: nowReal - 180n * NSEC_PER_SEC })).toEqual({ ret: 0 });
    expect(getClock(sim).clock).toBe(185n * NSEC_PER_SEC);
  });
});

describe('KVM_GET_CLOCK flags and fields with the master clock on', () => {
  it('linux-5.15: TSC_STABLE only, realtime and host_tsc not filled', () => {
    const sim = runningVm('linux-5.15');
    expect(sim.vm.useMasterClock).toBe(true);
    sim.ioctl('KVM_SET_CLOCK', { clock: 7n * NSEC_PER_SEC });
    sim.advance(3n * US);
    expect(getClock(sim)).toEqual({ clock: 7n * NSEC_PER_SEC + 3n * US, flags: KVM_CLOCK_TSC_STABLE, realtime: 0n, host_tsc: 0n });
  });

  it.each(['linux-6.6', 'linux-6.18'])('%s: TSC_STABLE|REALTIME|HOST_TSC with realtime and host_tsc from the same instant', (profile) => {
    const sim = runningVm(profile);
    sim.ioctl('KVM_SET_CLOCK', { clock: 7n * NSEC_PER_SEC });
    sim.advance(3n * US);
    expect(getClock(sim)).toEqual({
      clock: 7n * NSEC_PER_SEC + 3n * US,
      flags: KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC,
      realtime: DEFAULT_REALTIME_OFFSET_NS + sim.t,
      host_tsc: 1_000_000_000_000n + 2n * sim.t, // 2 GHz from 1e12
    });
  });
});

// A regression pin: getKvmclock() once required X86_FEATURE_CONSTANT_TSC for the master-clock
// branch. The kernel's condition is `use_master_clock && (CONSTANT_TSC || cpu_tsc_khz)` since 5.19
// (`use_master_clock && cpu_tsc_khz` in 5.16-5.18; 5.15 sets TSC_STABLE from use_master_clock
// alone), and cpu_tsc_khz is non-zero on an online CPU.
describe('KVM_GET_CLOCK with the master clock on a host without constant TSC', () => {
  it.each([
    { profile: 'linux-5.15', flags: KVM_CLOCK_TSC_STABLE },
    { profile: 'linux-6.18', flags: KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC },
  ])('$profile: still reports flags $flags', ({ profile, flags }) => {
    const sim = runningVm(profile, { constantTsc: false });
    expect(sim.vm.useMasterClock).toBe(true);
    expect(getClock(sim).flags).toBe(flags);
  });
});

describe('KVM_CHECK_EXTENSION per profile', () => {
  it.each([
    { profile: 'linux-4.19', adjust: 2, attrs: 0, vmTsc: 0 },
    { profile: 'linux-5.4', adjust: 2, attrs: 0, vmTsc: 0 },
    { profile: 'linux-5.10', adjust: 2, attrs: 0, vmTsc: 0 },
    { profile: 'linux-5.15', adjust: 2, attrs: 0, vmTsc: 0 },
    { profile: 'linux-6.6', adjust: 0xe, attrs: 1, vmTsc: 1 },
    { profile: 'linux-6.18', adjust: 0xe, attrs: 1, vmTsc: 1 },
    { profile: 'clock-cleanup-v6', adjust: 0xe, attrs: 1, vmTsc: 1 },
  ])('$profile: ADJUST_CLOCK=$adjust VCPU_ATTRIBUTES=$attrs VM_TSC_CONTROL=$vmTsc', ({ profile, adjust, attrs, vmTsc }) => {
    const sim = new X86Sim({}, profile);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_ADJUST_CLOCK').ret).toBe(adjust);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_VCPU_ATTRIBUTES').ret).toBe(attrs);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_VM_TSC_CONTROL').ret).toBe(vmTsc);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_TSC_CONTROL').ret).toBe(1);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_GET_TSC_KHZ').ret).toBe(1);
  });
});

// A 2 GHz host without TSC scaling: kvm_max_guest_tsc_khz is 0, the 250 ppm window is
// adjust_tsc_khz(2 000 000, ∓250) = [1 999 500, 2 000 500]. Before 5.8 the vCPU ioctl compared every
// rate with that 0 maximum: EINVAL, even for the host's own rate, and virtual_tsc_khz stays 2 000 000.
// From 5.8 the maximum is checked only with scaling: a rate inside the window is taken (no ratio), a
// faster one outside it is caught up in software, a slower one refused by set_tsc_khz().
describe('vCPU KVM_SET_TSC_KHZ on a host without TSC scaling (tscKhzWithoutScaling, 5.8)', () => {
  const setKhz = (profile: string, khz: number) => {
    const sim = new X86Sim({ tscScaling: false }, profile);
    sim.ioctl('KVM_CREATE_VCPU', 0);
    const r = sim.ioctl('KVM_SET_TSC_KHZ', khz, 0);
    const v = sim.vm.vcpus[0]!;
    return { r, khz: sim.ioctl('KVM_GET_TSC_KHZ', undefined, 0).ret, catchup: v.tscAlwaysCatchup };
  };
  it.each(['linux-4.19', 'linux-5.4'])("%s: every rate refused, the host's own included", (profile) => {
    for (const khz of [2_000_000, 2_000_300, 2_001_000]) expect(setKhz(profile, khz)).toEqual({ r: EINVAL, khz: 2_000_000, catchup: false });
  });
  it.each(['linux-5.10', 'linux-5.15', 'linux-6.18'])('%s: inside the window taken as is, faster caught up, slower refused', (profile) => {
    expect(setKhz(profile, 2_000_300)).toEqual({ r: { ret: 0 }, khz: 2_000_300, catchup: false });
    expect(setKhz(profile, 2_001_000)).toEqual({ r: { ret: 0 }, khz: 2_001_000, catchup: true });
    expect(setKhz(profile, 1_999_000)).toMatchObject({ r: EINVAL, catchup: false });
  });
  it('linux-4.19 with the switch flipped on behaves as 5.10', () => {
    expect(setKhz('linux-4.19+x86.tscKhzWithoutScaling=true', 2_000_300)).toEqual({ r: { ret: 0 }, khz: 2_000_300, catchup: false });
  });
});

describe('linux-5.15: no vCPU device attributes, no VM-scoped TSC kHz', () => {
  it('vCPU KVM_{HAS,GET,SET}_DEVICE_ATTR → EINVAL (kvm_arch_vcpu_ioctl default) and the offset stays', () => {
    const sim = new X86Sim({}, 'linux-5.15');
    sim.ioctl('KVM_CREATE_VCPU', 0);
    const offset = sim.vm.vcpus[0]!.l1TscOffset;
    const attr = { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET' };
    expect(sim.ioctl('KVM_HAS_DEVICE_ATTR', attr, 0)).toEqual(EINVAL);
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', attr, 0)).toEqual(EINVAL);
    expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { ...attr, value: 12345n }, 0)).toEqual(EINVAL);
    expect(sim.vm.vcpus[0]!.l1TscOffset).toBe(offset);
    // linux-6.6 has it
    const six = new X86Sim({}, 'linux-6.6');
    six.ioctl('KVM_CREATE_VCPU', 0);
    expect(six.ioctl('KVM_HAS_DEVICE_ATTR', attr, 0)).toEqual({ ret: 0 });
  });

  it('VM KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ → ENOTTY; the vCPU ioctl works', () => {
    const sim = new X86Sim({}, 'linux-5.15');
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 1_500_000)).toEqual(ENOTTY);
    expect(sim.ioctl('KVM_GET_TSC_KHZ')).toEqual(ENOTTY);
    expect(sim.vm.defaultTscKhz).toBe(2_000_000);
    sim.ioctl('KVM_CREATE_VCPU', 0);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 1_500_000, 0)).toEqual({ ret: 0 });
    expect(sim.ioctl('KVM_GET_TSC_KHZ', undefined, 0)).toEqual({ ret: 1_500_000 });
  });
});

describe('first non-zero host TSC write within 1 s of vCPU creation (QEMU-style by-value restore)', () => {
  // Two vCPUs created at 1 s and 1 s + 1 ms; the saved TSC X (0.25 s of cycles at 2 GHz) is written
  // from the host to vCPU 0 at 1.010 s and to vCPU 1 at 1.0105 s.
  const X = 500_000_000n;
  function restore(profile: string) {
    const sim = new X86Sim({ initialCounter: 0n }, profile);
    sim.advance(NSEC_PER_SEC);
    const created = sim.t;
    sim.ioctl('KVM_CREATE_VCPU', 0);
    sim.advance(MS);
    sim.ioctl('KVM_CREATE_VCPU', 1);
    const genCreated = sim.vm.curTscGeneration;
    sim.advance(9n * MS);
    const firstWrite = sim.t;
    expect(sim.ioctl('KVM_SET_MSRS', { entries: [{ index: MSRS.MSR_IA32_TSC, data: X }] }, 0).ret).toBe(1);
    const genFirst = sim.vm.curTscGeneration;
    sim.advance(500n * US);
    expect(sim.ioctl('KVM_SET_MSRS', { entries: [{ index: 'MSR_IA32_TSC', data: X }] }, 1).ret).toBe(1);
    const genSecond = sim.vm.curTscGeneration;
    sim.advance(2n * MS);
    return { sim, created, firstWrite, genCreated, genFirst, genSecond };
  }

  it('linux-6.6: snapped to the creation generation; the guest TSC counts from vCPU creation', () => {
    const { sim, created, genCreated, genFirst, genSecond } = restore('linux-6.6');
    expect(genFirst).toBe(genCreated);
    expect(genSecond).toBe(genFirst);
    // host TSC 2 GHz from 0: guest = 2·(t − created), not X
    expect(hostReadTsc(sim, 0)).toBe(2n * (sim.t - created));
    expect(hostReadTsc(sim, 1)).toBe(2n * (sim.t - created));
  });

  it("linux-6.18: kept (user_set_tsc gate); the second write is glued into the first write's generation", () => {
    const { sim, firstWrite, genCreated, genFirst, genSecond } = restore('linux-6.18');
    expect(genFirst).toBe(genCreated + 1);
    expect(genSecond).toBe(genFirst);
    expect(hostReadTsc(sim, 0)).toBe(X + 2n * (sim.t - firstWrite));
    expect(hostReadTsc(sim, 1)).toBe(X + 2n * (sim.t - firstWrite));
    expect(sim.vm.nrVcpusMatchedTsc).toBe(1);
    runAll(sim);
    expect(sim.vm.useMasterClock).toBe(true);
  });

  it('a second write more than 1 s of cycles away from the first starts a new generation on both', () => {
    for (const profile of ['linux-6.6', 'linux-6.18']) {
      const { sim, genSecond } = restore(profile);
      sim.ioctl('KVM_SET_MSRS', { entries: [{ index: MSRS.MSR_IA32_TSC, data: X + 5n * 2_000_000_000n }] }, 1);
      expect(sim.vm.curTscGeneration).toBe(genSecond + 1);
      expect(sim.vm.vcpus[0]!.l1TscOffset).not.toBe(sim.vm.vcpus[1]!.l1TscOffset);
    }
  });
});

describe('clock-cleanup-v6: KVM_VCPU_TSC_SCALE', () => {
  const scaleAttr = { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_SCALE' };

  it.each([
    { vendor: 'vmx' as const, frac: 48n },
    { vendor: 'svm' as const, frac: 32n },
  ])('$vendor: GET → the vCPU ratio and frac bits; SET → EINVAL', ({ vendor, frac }) => {
    const sim = new X86Sim({ tscKhz: 3_000_000, vendor }, 'clock-cleanup-v6');
    sim.ioctl('KVM_CREATE_VCPU', 0);
    expect(sim.ioctl('KVM_HAS_DEVICE_ATTR', scaleAttr, 0)).toEqual({ ret: 0 });
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', scaleAttr, 0).out).toEqual({ tsc_ratio: 1n << frac, tsc_frac_bits: frac });
    sim.ioctl('KVM_SET_TSC_KHZ', 2_500_000, 0);
    const ratio = ratioOf(2_500_000n, 3_000_000n, frac); // VMX 234562480592213 = ⌊2^48 · 5/6⌋
    if (vendor === 'vmx') expect(ratio).toBe(234_562_480_592_213n);
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', scaleAttr, 0).out).toEqual({ tsc_ratio: ratio, tsc_frac_bits: frac });
    expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { ...scaleAttr, value: 1n << frac }, 0)).toEqual(EINVAL);
    expect(sim.vm.vcpus[0]!.l1TscScalingRatio).toBe(ratio);
  });

  it('ENXIO without scaling hardware, and on linux-6.18 (no such attribute)', () => {
    const sim = new X86Sim({ tscScaling: false }, 'clock-cleanup-v6');
    sim.ioctl('KVM_CREATE_VCPU', 0);
    expect(sim.ioctl('KVM_HAS_DEVICE_ATTR', scaleAttr, 0)).toEqual(ENXIO);
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', scaleAttr, 0)).toEqual(ENXIO);
    const mainline = new X86Sim({}, 'linux-6.18');
    mainline.ioctl('KVM_CREATE_VCPU', 0);
    expect(mainline.ioctl('KVM_HAS_DEVICE_ATTR', scaleAttr, 0)).toEqual(ENXIO);
  });
});

describe('clock-cleanup-v6: KVM_GET_CLOCK_GUEST / KVM_SET_CLOCK_GUEST', () => {
  // a 2.5 GHz guest on a 3 GHz VMX host: the guest's real frequency is ⌊3e9 · ratio / 2^48⌋ = 2,499,999,999 Hz
  const hostKhz = 3_000_000;
  const guestKhz = 2_500_000;
  const curHz = (3_000_000_000n * ratioOf(2_500_000n, 3_000_000n)) >> 48n;
  const v6 = () => runningVm('clock-cleanup-v6', { tscKhz: hostKhz }, 1, guestKhz);
  /** GET_CLOCK_GUEST's output in the shape SET_CLOCK_GUEST takes (mul as a u32 number). */
  const asArg = (p: PvtiOut) => ({ ...p, tsc_to_system_mul: Number(p.tsc_to_system_mul) });
  const pvtiForHz = (hz: bigint, p: PvtiOut) => {
    const s = getTimeScale(NSEC_PER_SEC, hz);
    return { ...asArg(p), tsc_to_system_mul: Number(s.mul), tsc_shift: s.shift };
  };

  it('the guest frequency is 2,499,999,999 Hz', () => expect(curHz).toBe(2_499_999_999n));

  it('GET_CLOCK_GUEST: EINVAL without a master clock (HPET host), EINVAL on linux-6.18 (kvm_arch_vcpu_ioctl default)', () => {
    const hpet = runningVm('clock-cleanup-v6', { clocksource: 'hpet' });
    expect(hpet.vm.useMasterClock).toBe(false);
    expect(hpet.ioctl('KVM_GET_CLOCK_GUEST', undefined, 0)).toEqual(EINVAL);
    const mainline = runningVm('linux-6.18');
    expect(mainline.ioctl('KVM_GET_CLOCK_GUEST', undefined, 0)).toEqual(EINVAL);
  });

  it('GET_CLOCK_GUEST returns the page a guest sees at the master reference point', () => {
    const sim = v6();
    const p = sim.ioctl('KVM_GET_CLOCK_GUEST', undefined, 0).out as PvtiOut;
    const page = sim.vm.vcpus[0]!.pvti!;
    expect(p).toEqual({
      version: 0,
      tsc_timestamp: page.tscTimestamp,
      system_time: page.systemTime,
      tsc_to_system_mul: Number(page.mul), // a u32: a JSON number
      tsc_shift: page.shift,
      flags: PVCLOCK_TSC_STABLE_BIT,
    });
    const s = getTimeScale(NSEC_PER_SEC, curHz);
    expect([BigInt(p.tsc_to_system_mul), p.tsc_shift]).toEqual([s.mul, s.shift]);
  });

  it('SET_CLOCK_GUEST validates pads, mul, shift and the frequency, leaving kvmclock alone', () => {
    const sim = v6();
    sim.pause(0);
    const p = sim.ioctl('KVM_GET_CLOCK_GUEST', undefined, 0).out as PvtiOut;
    const offset = sim.vm.kvmclockOffset;
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', { ...asArg(p), pad0: 1 }, 0)).toEqual(EINVAL);
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', { ...asArg(p), pad: [0, 1] }, 0)).toEqual(EINVAL);
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', { ...asArg(p), tsc_to_system_mul: 0 }, 0)).toEqual(EINVAL);
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', { ...asArg(p), tsc_shift: 40 }, 0)).toEqual(EINVAL);
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', { ...asArg(p), tsc_shift: -32 }, 0)).toEqual(EINVAL);
    // a pvclock for 2 kHz more or less than the guest's 2,499,999,999 Hz: hvclock_to_hz is > 1000 Hz off
    for (const hz of [curHz + 2000n, curHz - 2000n]) {
      const arg = pvtiForHz(hz, p);
      const encoded = hvclockToHz(BigInt(arg.tsc_to_system_mul), arg.tsc_shift);
      expect(encoded > curHz + 1000n || encoded < curHz - 1000n).toBe(true);
      expect(sim.ioctl('KVM_SET_CLOCK_GUEST', arg, 0)).toEqual(ERANGE);
    }
    expect(sim.vm.kvmclockOffset).toBe(offset);
    // 500 Hz off is inside the ±1000 Hz the proposal accepts
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', pvtiForHz(curHz + 500n, p), 0)).toEqual({ ret: 0 });
  });

  it('a GET_CLOCK_GUEST / SET_CLOCK_GUEST round trip leaves the guest kvmclock within 2 ns', () => {
    const sim = v6();
    sim.advance(2n * NSEC_PER_SEC + 123_457n);
    const g1 = sim.guest(0, 'kvmclock').value!;
    sim.pause(0);
    const p = sim.ioctl('KVM_GET_CLOCK_GUEST', undefined, 0).out as PvtiOut;
    const before = sim.vm.masterKernelNs;
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', asArg(p), 0)).toEqual({ ret: 0 });
    expect(sim.vm.masterKernelNs).not.toBe(before); // a new reference point was taken
    sim.ioctl('KVM_RUN', undefined, 0);
    const g2 = sim.guest(0, 'kvmclock').value!;
    const d = g2 > g1 ? g2 - g1 : g1 - g2;
    expect(d <= 2n).toBe(true);
  });

  // A regression pin: KVM_GET_CLOCK_GUEST's output (tsc_to_system_mul included) is accepted back
  // verbatim by KVM_SET_CLOCK_GUEST, the documented round trip of the struct.
  it('GET_CLOCK_GUEST output can be passed back verbatim to SET_CLOCK_GUEST', () => {
    const sim = v6();
    sim.pause(0);
    const p = sim.ioctl('KVM_GET_CLOCK_GUEST', undefined, 0).out as PvtiOut;
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', p, 0)).toEqual({ ret: 0 });
  });

  it('linux-6.18 has no SET_CLOCK_GUEST: EINVAL', () => {
    const sim = runningVm('linux-6.18');
    expect(sim.ioctl('KVM_SET_CLOCK_GUEST', { tsc_timestamp: 0n, system_time: 0n, tsc_to_system_mul: 1 << 31, tsc_shift: 0 }, 0)).toEqual(EINVAL);
  });
});

describe('pvclock frequency of a 2.5 GHz guest on a 3 GHz VMX host', () => {
  const ratio = ratioOf(2_500_000n, 3_000_000n);
  const hzScaled = (3_000_000_000n * ratio) >> 48n; // the proposal: Hz scaled
  const khzScaled = ((3_000_000n * ratio) >> 48n) * 1000n; // mainline: kHz scaled, then × 1000

  it('the two frequencies: 2,499,999,999 vs 2,499,999,000 Hz', () => {
    expect(hzScaled).toBe(2_499_999_999n);
    expect(khzScaled).toBe(2_499_999_000n);
  });

  it.each([
    { profile: 'clock-cleanup-v6', hz: hzScaled },
    { profile: 'linux-6.18', hz: khzScaled },
  ])('$profile: the guest page encodes $hz Hz', ({ profile, hz }) => {
    const sim = runningVm(profile, { tscKhz: 3_000_000 }, 1, 2_500_000);
    const page = sim.vm.vcpus[0]!.pvti!;
    const s = getTimeScale(NSEC_PER_SEC, hz);
    expect({ mul: page.mul, shift: page.shift }).toEqual(s);
    const encoded = hvclockToHz(page.mul, page.shift);
    expect(encoded).toBe(hvclockToHz(s.mul, s.shift));
    expect(encoded >= hz - 2n && encoded <= hz).toBe(true);
  });

  it('the two pages differ by ~999 Hz', () => {
    const hz = (p: string) => {
      const page = runningVm(p, { tscKhz: 3_000_000 }, 1, 2_500_000).vm.vcpus[0]!.pvti!;
      return hvclockToHz(page.mul, page.shift);
    };
    const diff = hz('clock-cleanup-v6') - hz('linux-6.18');
    expect(diff >= 997n && diff <= 1001n).toBe(true);
  });

  it('KVM_GET_CLOCK follows the guest under clock-cleanup-v6; on linux-6.18 the guest runs 0.4 ppm ahead of it', () => {
    const drift = (profile: string) => {
      const sim = runningVm(profile, { tscKhz: 3_000_000 }, 1, 2_500_000);
      sim.advance(1000n * NSEC_PER_SEC);
      return sim.guest(0, 'kvmclock').value! - getClock(sim).clock;
    };
    const d6 = drift('clock-cleanup-v6');
    expect(d6 >= -2n && d6 <= 2n).toBe(true);
    // guest cycles at 3e9·ratio/2^48 Hz read at 2,499,999,000 Hz: ahead by 1000 s · (rate/2,499,999,000 − 1)
    const rate = (3e9 * Number(ratio)) / 2 ** 48;
    const expected = 1000e9 * (rate / 2_499_999_000 - 1);
    expect(Math.abs(expected - 400_000)).toBeLessThan(1);
    expect(Math.abs(Number(drift('linux-6.18')) - expected)).toBeLessThan(1_000);
  });
});

describe('KVM_SET_TSC_KHZ on a vCPU whose guest TSC is already counting', () => {
  // 3 GHz host from TSC 0, vCPU created at t=0 (offset 0); 10 s later the guest TSC is 3e10; set 1.5 GHz.
  function setHalf(profile: string) {
    const sim = new X86Sim({ tscKhz: 3_000_000, initialCounter: 0n }, profile);
    sim.ioctl('KVM_CREATE_VCPU', 0);
    sim.advance(10n * NSEC_PER_SEC);
    sim.ioctl('KVM_RUN', undefined, 0);
    const before = guestTsc(sim);
    expect(before).toBe(30_000_000_000n);
    sim.pause(0);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 1_500_000, 0)).toEqual({ ret: 0 });
    sim.ioctl('KVM_RUN', undefined, 0);
    const after = guestTsc(sim);
    sim.advance(NSEC_PER_SEC);
    return { before, after, oneSecondLater: guestTsc(sim) };
  }

  it('clock-cleanup-v6: re-synchronised, the guest TSC continues (at the new rate)', () => {
    const { before, after, oneSecondLater } = setHalf('clock-cleanup-v6');
    expect(after).toBe(before);
    expect(oneSecondLater - after).toBe(1_500_000_000n);
  });

  it('linux-6.18: the guest TSC jumps to ⌊3e10 · 2^47 / 2^48⌋ + 0 = 1.5e10', () => {
    const { before, after, oneSecondLater } = setHalf('linux-6.18');
    expect(after).toBe(15_000_000_000n);
    expect(before - after).toBe(15_000_000_000n);
    expect(oneSecondLater - after).toBe(1_500_000_000n);
  });
});

describe('KVM_SET_TSC_KHZ (KVM.md §5)', () => {
  const vcpuSim = (spec: Partial<HostSpec> = {}, profile = 'linux-6.18') => {
    const sim = new X86Sim(spec, profile);
    sim.ioctl('KVM_CREATE_VCPU', 0);
    return sim;
  };
  const khzOf = (sim: X86Sim) => sim.ioctl('KVM_GET_TSC_KHZ', undefined, 0).ret;

  it('VMX: max_guest_tsc_khz = min(0x7fffffff, (2^64−1)·2e6 >> 48) = 0x7fffffff; at or above → EINVAL, nothing recorded', () => {
    const sim = vcpuSim();
    expect((((1n << 64n) - 1n) * 2_000_000n) >> 48n > 0x7fff_ffffn).toBe(true);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 0x7fff_ffff, 0)).toEqual(EINVAL);
    expect(khzOf(sim)).toBe(2_000_000);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 0x7fff_fffe, 0)).toEqual({ ret: 0 });
    expect(khzOf(sim)).toBe(0x7fff_fffe);
  });

  it('SVM: max_guest_tsc_khz = (0xff_ffff_ffff · 2e6) >> 32 = 511,999,999', () => {
    const max = (0xff_ffff_ffffn * 2_000_000n) >> 32n;
    expect(max).toBe(511_999_999n);
    const sim = vcpuSim({ vendor: 'svm' });
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 511_999_999, 0)).toEqual(EINVAL);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 511_999_998, 0)).toEqual({ ret: 0 });
    expect(sim.vm.vcpus[0]!.l1TscScalingRatio).toBe(ratioOf(511_999_998n, 2_000_000n, 32n));
  });

  it('within 250 ppm of 2,000,000 kHz ([1,999,500, 2,000,500]) the ratio stays default: the guest ticks at the host rate', () => {
    const rate = (khz: number) => {
      const sim = vcpuSim({ initialCounter: 0n });
      expect(sim.ioctl('KVM_SET_TSC_KHZ', khz, 0)).toEqual({ ret: 0 });
      expect(khzOf(sim)).toBe(khz);
      sim.ioctl('KVM_RUN', undefined, 0);
      const a = guestTsc(sim);
      sim.advance(NSEC_PER_SEC);
      return { ratio: sim.vm.vcpus[0]!.l1TscScalingRatio, perSecond: guestTsc(sim) - a };
    };
    for (const khz of [1_999_500, 2_000_000, 2_000_500]) expect(rate(khz)).toEqual({ ratio: 1n << 48n, perSecond: 2_000_000_000n });
    for (const khz of [1_999_499, 2_000_501]) {
      const r = rate(khz);
      expect(r.ratio).toBe(ratioOf(BigInt(khz), 2_000_000n));
      const ideal = BigInt(khz) * 1000n;
      expect(r.perSecond >= ideal - 1n && r.perSecond <= ideal + 1n).toBe(true);
    }
  });

  it('0 means the host kHz', () => {
    const sim = vcpuSim();
    sim.ioctl('KVM_SET_TSC_KHZ', 1_000_000, 0);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 0, 0)).toEqual({ ret: 0 });
    expect(khzOf(sim)).toBe(2_000_000);
    expect(sim.vm.vcpus[0]!.l1TscScalingRatio).toBe(1n << 48n);
  });

  it('no scaling hardware: a lower kHz → EINVAL but virtual_tsc_khz is recorded', () => {
    const sim = vcpuSim({ tscScaling: false });
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_TSC_CONTROL').ret).toBe(0);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 1_000_000, 0)).toEqual(EINVAL);
    expect(khzOf(sim)).toBe(1_000_000);
    // inside the tolerance window it is fine even without hardware
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 2_000_400, 0)).toEqual({ ret: 0 });
    expect(sim.vm.vcpus[0]!.tscCatchup).toBe(false);
  });

  it('no scaling hardware: a higher kHz → catch-up; each clock update moves the guest TSC to 3 GHz·elapsed', () => {
    // non-master-clock host, so each update catches up to "now" (master clock mode would catch up to its reference point)
    const sim = vcpuSim({ tscScaling: false, clocksource: 'hpet', initialCounter: 0n });
    const created = sim.t;
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 3_000_000, 0)).toEqual({ ret: 0 });
    expect(khzOf(sim)).toBe(3_000_000);
    expect(sim.vm.vcpus[0]!.tscAlwaysCatchup).toBe(true);
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.advance(NSEC_PER_SEC);
    // Between updates it ticks at the host's 2 GHz: the last update was the 100 ms kvmclock_update_work
    // (caught up to 0.3e9), then 0.9 s at 2 GHz.
    expect(guestTsc(sim)).toBe(300_000_000n + 1_800_000_000n);
    // any exit (here a guest wrmsr) serves the clock update tsc_always_catchup requests
    sim.guest(0, 'wrmsr', { msr: 'MSR_IA32_TSC_DEADLINE', value: 0n });
    const caught = guestTsc(sim);
    const ideal = 3n * (sim.t - created);
    expect(caught >= ideal - 2n && caught <= ideal + 2n).toBe(true);
  });

  it('catch-up at a guest tick: the exit at the last tick pulls the TSC to 3 GHz·T, then it runs at the host 2 GHz', () => {
    const sim = vcpuSim({ tscScaling: false, clocksource: 'hpet', initialCounter: 0n });
    sim.ioctl('KVM_SET_TSC_KHZ', 3_000_000, 0);
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.advance(NSEC_PER_SEC + MS);
    const vm = sim.vm;
    // the last tick at or before 1.001 s is 1 s (4 ms ticks), after the last event (the 100 ms work)
    expect(catchupTickDue(vm, 100n * MS, sim.t)).toBe(NSEC_PER_SEC);
    expect(catchupTickDue(vm, NSEC_PER_SEC, sim.t)).toBe(null);
    // 3 GHz: kvm_get_time_scale(3e9, 1e9) = (shift 2, mul 0.75·2^32), exact; HPET: raw_ns = t; the
    // vCPU's TSC generation began at t = 0 with 0. At the 1 s tick: 3e9; then 1 ms at 2 GHz: +2e6.
    const ctx = sim.ctx();
    kvmCatchupTick({ ...ctx, hw: { ...ctx.hw, tick: sampleHost(sim.host, NSEC_PER_SEC) } }, vm);
    expect(guestTsc(sim)).toBe(3_002_000_000n);
    // no tick sample, nothing happens; a paused vCPU takes no tick
    kvmCatchupTick(ctx, vm);
    expect(guestTsc(sim)).toBe(3_002_000_000n);
    sim.pause(0);
    expect(catchupTickDue(vm, 100n * MS, sim.t)).toBe(null);
  });

  it('VM-scoped: sets default_tsc_khz for vCPUs created later; EINVAL once a vCPU exists', () => {
    const sim = new X86Sim();
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 2_345_678)).toEqual({ ret: 0 });
    expect(sim.ioctl('KVM_GET_TSC_KHZ')).toEqual({ ret: 2_345_678 });
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 0x7fff_ffff)).toEqual(EINVAL); // max_guest_tsc_khz checked first
    sim.ioctl('KVM_CREATE_VCPU', 0);
    expect(khzOf(sim)).toBe(2_345_678);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 1_000_000)).toEqual(EINVAL);
    expect(sim.ioctl('KVM_GET_TSC_KHZ')).toEqual({ ret: 2_345_678 });
  });
});

describe('KVM_KVMCLOCK_CTRL', () => {
  it('EINVAL until the guest enables kvmclock; then PVCLOCK_GUEST_STOPPED in the next page the guest reads', () => {
    const sim = new X86Sim();
    sim.ioctl('KVM_CREATE_VCPU', 0);
    expect(sim.ioctl('KVM_KVMCLOCK_CTRL', undefined, 0)).toEqual(EINVAL);
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.ioctl('KVM_KVMCLOCK_CTRL', undefined, 0)).toEqual(EINVAL);
    sim.guest(0, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE });
    expect(sim.guest(0, 'kvmclock').flags).toBe(PVCLOCK_TSC_STABLE_BIT);
    sim.pause(0);
    expect(sim.ioctl('KVM_KVMCLOCK_CTRL', undefined, 0)).toEqual({ ret: 0 });
    expect(sim.vm.vcpus[0]!.pvti!.flags).toBe(PVCLOCK_TSC_STABLE_BIT); // not until the vCPU re-enters
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'kvmclock').flags).toBe(PVCLOCK_TSC_STABLE_BIT | PVCLOCK_GUEST_STOPPED);
    expect(PVCLOCK_GUEST_STOPPED).toBe(2);
    // disabling kvmclock (enable bit clear) makes it EINVAL again
    sim.guest(0, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x2000n });
    expect(sim.ioctl('KVM_KVMCLOCK_CTRL', undefined, 0)).toEqual(EINVAL);
  });
});

describe('legacy MSR_KVM_SYSTEM_TIME (0x12)', () => {
  it('a guest write on vCPU 0 turns the master clock off; on vCPU 1 it does not; the new MSR turns it back on', () => {
    const sim = runningVm('linux-6.18', {}, 2);
    expect(sim.vm.useMasterClock).toBe(true);
    sim.guest(1, 'wrmsr', { msr: 0x12, value: KVMCLOCK_ENABLE });
    expect(sim.vm.useMasterClock).toBe(true);
    expect(getClock(sim).flags & KVM_CLOCK_TSC_STABLE).toBe(KVM_CLOCK_TSC_STABLE);
    sim.guest(0, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME', value: KVMCLOCK_ENABLE });
    expect(sim.vm.useMasterClock).toBe(false);
    expect(getClock(sim).flags).toBe(0);
    expect(sim.guest(0, 'kvmclock').flags! & PVCLOCK_TSC_STABLE_BIT).toBe(0);
    expect(sim.guest(1, 'kvmclock').flags! & PVCLOCK_TSC_STABLE_BIT).toBe(0);
    sim.guest(0, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE });
    expect(sim.vm.useMasterClock).toBe(true);
    expect(sim.guest(0, 'kvmclock').flags! & PVCLOCK_TSC_STABLE_BIT).toBe(PVCLOCK_TSC_STABLE_BIT);
  });

  it('a host-initiated write of the legacy MSR on vCPU 0 does not', () => {
    const sim = runningVm('linux-6.18', {}, 1);
    sim.pause(0);
    expect(sim.ioctl('KVM_SET_MSRS', { entries: [{ index: 'MSR_KVM_SYSTEM_TIME', data: KVMCLOCK_ENABLE }] }, 0).ret).toBe(1);
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.vm.useMasterClock).toBe(true);
  });
});

describe('the master clock', () => {
  const stable = (sim: X86Sim) => ({
    getClock: (getClock(sim).flags & KVM_CLOCK_TSC_STABLE) !== 0,
    pages: sim.vm.vcpus.map((v) => (sim.guest(v.id, 'kvmclock').flags! & PVCLOCK_TSC_STABLE_BIT) !== 0),
  });

  it('on with all vCPUs matched and a TSC clocksource', () => {
    const sim = runningVm('linux-6.18', {}, 3);
    expect(sim.vm.nrVcpusMatchedTsc).toBe(2);
    expect(stable(sim)).toEqual({ getClock: true, pages: [true, true, true] });
  });

  it('off with clocksource hpet', () => {
    const sim = runningVm('linux-6.18', { clocksource: 'hpet' }, 3);
    expect(sim.vm.nrVcpusMatchedTsc).toBe(2);
    expect(stable(sim)).toEqual({ getClock: false, pages: [false, false, false] });
  });

  it('off after different KVM_VCPU_TSC_OFFSET values on two vCPUs; on again once all get the same one', () => {
    const sim = runningVm('linux-6.18', {}, 2);
    pauseAll(sim);
    const set = (id: number, value: bigint) => expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { group: 0, attr: 0, value }, id)).toEqual({ ret: 0 });
    set(0, 1_000n);
    set(1, 2_000n);
    // KVM_GET_CLOCK serves no requests: the master clock is still on until a vCPU enters the guest
    expect(getClock(sim).flags & KVM_CLOCK_TSC_STABLE).toBe(KVM_CLOCK_TSC_STABLE);
    runAll(sim);
    expect(stable(sim)).toEqual({ getClock: false, pages: [false, false] });
    pauseAll(sim);
    set(0, 5_000n);
    set(1, 5_000n);
    expect(sim.vm.nrVcpusMatchedTsc).toBe(1);
    runAll(sim);
    expect(stable(sim)).toEqual({ getClock: true, pages: [true, true] });
    expect(sim.vm.vcpus.map((v) => v.l1TscOffset)).toEqual([5_000n, 5_000n]);
  });
});

describe('KVM_CHECK_EXTENSION is a system/VM ioctl', () => {
  it("on a vCPU fd it reaches kvm_arch_vcpu_ioctl()'s default: EINVAL", async () => {
    const { X86Sim } = await import('./sim.js');
    const sim = new X86Sim();
    sim.ioctl('KVM_CREATE_VCPU', 0);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_TSC_CONTROL', 0)).toEqual({ ret: -1, errno: 'EINVAL' });
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_TSC_CONTROL').ret).toBe(1);
  });
});
