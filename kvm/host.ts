// The emulated host: its counter (x86 TSC or arm64 CNTPCT) and the kernel clocks derived from it,
// all as pure functions of the simulation's true time t (ns). Nothing here reads a real clock.
import { NSEC_PER_SEC } from './arith.js';
import { InvalidArgumentError } from './errors.js';
import { u32, u64, U64_MAX } from './u64.js';

export type Arch = 'x86' | 'arm64';
export type Vendor = 'vmx' | 'svm';

/** CLOCK_REALTIME as a piecewise-linear offset from true time: NTP slews and steps move it. */
export interface RealtimeModel {
  /** true time at which the current slew segment began */
  anchorT: bigint;
  /** realtime − t at anchorT */
  anchorOffsetNs: bigint;
  /** current NTP slew in parts per billion (realtime runs this much faster than true time) */
  slewPpb: bigint;
}

export interface HostState {
  id: string;
  arch: Arch;
  /** kernel behaviour profile name */
  profile: string;
  /** nominal counter frequency: x86 calibrated tsc_khz × 1000, arm64 CNTFRQ */
  counterHz: bigint;
  /** the rate at which the counter really ticks (may differ from nominal by a few ppm) */
  actualCounterHz: bigint;
  /** counter value at true time 0 */
  initialCounter: bigint;
  /** raw_boot_ns at true time 0 */
  bootNsAtZero: bigint;
  /** the host timekeeper's clocksource is the counter (TSC / arch timer) rather than e.g. HPET */
  counterClocksource: boolean;
  /** the clocksource's (mult, shift) pair, computed as clocks_calc_mult_shift() does */
  csMult: bigint;
  csShift: number;
  realtime: RealtimeModel;
  x86: X86HostCaps | null;
  arm64: Arm64HostCaps | null;
}

export interface X86HostCaps {
  /** tsc_khz: the calibrated integer kHz KVM uses everywhere */
  tscKhz: number;
  vendor: Vendor;
  /** kvm_caps.has_tsc_control */
  tscScaling: boolean;
  /** kvm_caps.tsc_scaling_ratio_frac_bits: VMX 48, SVM 32 */
  fracBits: number;
  /** kvm_caps.max_tsc_scaling_ratio: VMX 2^64−1, SVM 0xff_ffff_ffff */
  maxRatio: bigint;
  /** X86_FEATURE_CONSTANT_TSC */
  constantTsc: boolean;
  /** check_tsc_unstable() */
  tscUnstable: boolean;
}

export interface Arm64HostCaps {
  /** FEAT_ECV with CNTPOFF_EL2: the physical offset is applied by hardware instead of by trapping */
  ecv: boolean;
}

/** One sample of the host's hardware and clocks at a single instant: what an ioctl reads. */
export interface HostSample {
  /** true time (ns) */
  t: bigint;
  /** rdtsc() / CNTPCT */
  tsc: bigint;
  /** get_kvmclock_base_ns(): CLOCK_MONOTONIC_RAW + boot offset */
  rawNs: bigint;
  /** ktime_get_real_ns() */
  realNs: bigint;
  /**
   * The host as sampled at the guest's last timer tick before t, when that tick made a vCPU in
   * software TSC catch-up exit (see kvmCatchupTick()); absent otherwise.
   */
  tick?: HostSample;
}

export const VENDOR_FRAC_BITS: Record<Vendor, number> = { vmx: 48, svm: 32 };
export const VENDOR_MAX_RATIO: Record<Vendor, bigint> = {
  vmx: U64_MAX, // KVM_VMX_TSC_MULTIPLIER_MAX
  svm: 0xff_ffff_ffffn, // SVM_TSC_RATIO_MAX
};

/** clocks_calc_mult_shift(): the (mult, shift) that converts `from` units to `to` units over maxsec. */
export function clocksCalcMultShift(from: bigint, to: bigint, maxsec: bigint): { mult: bigint; shift: number } {
  let sftacc = 32;
  let tmp = (maxsec * from) >> 32n;
  while (tmp) {
    tmp >>= 1n;
    sftacc--;
  }
  let sft = 32;
  for (; sft > 0; sft--) {
    tmp = (to << BigInt(sft)) + from / 2n;
    tmp /= from;
    if (tmp >> BigInt(sftacc) === 0n) break;
  }
  return { mult: u32(tmp), shift: sft };
}

/**
 * The clocksource rating of the counter as __clocksource_update_freq_scale() registers it:
 * x86 registers tsc_khz (scale 1000, 64-bit mask), arm64 the arch timer in Hz (56-bit mask);
 * both hit the 600 s cap on the conversion range.
 */
export function counterClocksourceMultShift(arch: Arch, counterHz: bigint): { mult: bigint; shift: number } {
  if (arch === 'x86') return clocksCalcMultShift(counterHz / 1000n, NSEC_PER_SEC / 1000n, 600n * 1000n);
  return clocksCalcMultShift(counterHz, NSEC_PER_SEC, 600n);
}

/** The counter at true time t: rdtsc() on x86, CNTPCT_EL0 on arm64. */
export function hostCounter(h: HostState, t: bigint): bigint {
  return u64(h.initialCounter + (t * h.actualCounterHz) / NSEC_PER_SEC);
}

/** get_kvmclock_base_ns(): CLOCK_MONOTONIC_RAW plus the boot offset, as the timekeeper computes it. */
export function hostRawBootNs(h: HostState, t: bigint): bigint {
  if (!h.counterClocksource) return h.bootNsAtZero + t; // an ideal external clocksource
  // The timekeeper accumulates cycles × mult in shifted nanoseconds, so the result is exact to the cycle.
  const cycles = u64(hostCounter(h, t) - h.initialCounter);
  return h.bootNsAtZero + ((cycles * h.csMult) >> BigInt(h.csShift));
}

/** ktime_get_real_ns(): true time plus the host's realtime offset, NTP slew and steps. */
export function hostRealtimeNs(h: HostState, t: bigint): bigint {
  const r = h.realtime;
  return t + r.anchorOffsetNs + floorDiv((t - r.anchorT) * r.slewPpb, 1_000_000_000n);
}

/** Every hardware input of one instant. */
export function sampleHost(h: HostState, t: bigint): HostSample {
  return { t, tsc: hostCounter(h, t), rawNs: hostRawBootNs(h, t), realNs: hostRealtimeNs(h, t) };
}

/** Step CLOCK_REALTIME (settimeofday, an NTP step). */
export function stepRealtime(h: HostState, t: bigint, deltaNs: bigint): void {
  rebaseRealtime(h, t);
  h.realtime.anchorOffsetNs += deltaNs;
}

/** Change the NTP slew from instant t on. */
export function setRealtimeSlew(h: HostState, t: bigint, slewPpb: bigint): void {
  rebaseRealtime(h, t);
  h.realtime.slewPpb = slewPpb;
}

function rebaseRealtime(h: HostState, t: bigint): void {
  h.realtime.anchorOffsetNs = hostRealtimeNs(h, t) - t;
  h.realtime.anchorT = t;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

export interface HostSpec {
  id: string;
  arch: Arch;
  profile: string;
  /** x86: calibrated tsc_khz */
  tscKhz?: number;
  /** arm64: CNTFRQ in Hz */
  cntfrqHz?: bigint;
  /** the counter's real rate in Hz (default: nominal) */
  actualHz?: bigint;
  initialCounter?: bigint;
  bootNsAtZero?: bigint;
  clocksource?: 'tsc' | 'hpet' | 'arch_sys_counter';
  vendor?: Vendor;
  tscScaling?: boolean;
  constantTsc?: boolean;
  tscUnstable?: boolean;
  ecv?: boolean;
  realtimeOffsetNs?: bigint;
}

/** 2026-01-01T00:00:00Z: the default CLOCK_REALTIME at true time 0. */
export const DEFAULT_REALTIME_OFFSET_NS = 1_767_225_600n * NSEC_PER_SEC;

/** Build a host from its spec, with the defaults a freshly booted machine would have. */
export function createHost(spec: HostSpec): HostState {
  const counterHz = spec.arch === 'x86' ? BigInt(spec.tscKhz ?? 0) * 1000n : (spec.cntfrqHz ?? 0n);
  if (counterHz <= 0n) throw new InvalidArgumentError(spec.arch === 'x86' ? 'tscKhz' : 'cntfrqHz', 'the host counter frequency must be positive');
  const actualCounterHz = spec.actualHz ?? counterHz;
  const initialCounter = u64(spec.initialCounter ?? 0n);
  const { mult, shift } = counterClocksourceMultShift(spec.arch, counterHz);
  // By default the host booted when its counter was 0, so uptime agrees with the counter.
  const bootNsAtZero = spec.bootNsAtZero ?? (initialCounter * mult) >> BigInt(shift);
  const vendor = spec.vendor ?? 'vmx';
  return {
    id: spec.id,
    arch: spec.arch,
    profile: spec.profile,
    counterHz,
    actualCounterHz,
    initialCounter,
    bootNsAtZero,
    counterClocksource: spec.clocksource === undefined || spec.clocksource === 'tsc' || spec.clocksource === 'arch_sys_counter',
    csMult: mult,
    csShift: shift,
    realtime: { anchorT: 0n, anchorOffsetNs: spec.realtimeOffsetNs ?? DEFAULT_REALTIME_OFFSET_NS, slewPpb: 0n },
    x86:
      spec.arch === 'x86'
        ? {
            tscKhz: Number(counterHz / 1000n),
            vendor,
            tscScaling: spec.tscScaling ?? true,
            fracBits: VENDOR_FRAC_BITS[vendor],
            maxRatio: VENDOR_MAX_RATIO[vendor],
            constantTsc: spec.constantTsc ?? true,
            tscUnstable: spec.tscUnstable ?? false,
          }
        : null,
    arm64: spec.arch === 'arm64' ? { ecv: spec.ecv ?? true } : null,
  };
}
