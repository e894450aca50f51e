// The guest's clocksources (kernel/time/clocksource.c, arch/x86/kernel/kvmclock.c,
// arch/x86/kernel/tsc.c, drivers/clocksource/arm_arch_timer.c): their ratings, which one the
// kernel selects, their mult/shift, and the watchdog's margins for a kernel version.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { clocksCalcMultShift } from '../../kvm/host.js';
import type { GuestSettings } from './settings.js';

export type ClocksourceName = 'kvm-clock' | 'tsc' | 'arch_sys_counter';

export interface Clocksource {
  name: ClocksourceName;
  rating: number;
  /** CLOCK_SOURCE_MUST_VERIFY: watched by the clocksource watchdog */
  mustVerify: boolean;
  mult: bigint;
  shift: number;
  /** what its read() returns counts at this rate (Hz) */
  hz: bigint;
}


/**
 * __clocksource_update_freq_scale(): mult/shift of a clocksource registered at freq × scale Hz
 * with a 64-bit mask (the conversion range capped at 600 s).
 */
export function clocksourceUpdateFreqScale(scale: bigint, freq: bigint): { mult: bigint; shift: number } {
  const sec = 600n;
  return clocksCalcMultShift(freq, NSEC_PER_SEC / scale, sec * scale);
}

/** clocksource_cyc2ns(): cycles to ns through mult/shift (64-bit product: no overflow in bigint). */
export const clocksourceCyc2ns = (cycles: bigint, mult: bigint, shift: number): bigint => (cycles * mult) >> BigInt(shift);

/** The x86 guest's clocksources: kvm-clock (400, 299 with an invariant TSC) if the guest enabled it, and the TSC (300). */
export function x86Clocksources(s: GuestSettings, tscKhz: number, kvmclock: boolean): Clocksource[] {
  const list: Clocksource[] = [];
  if (kvmclock) {
    // kvmclock_init(): clocksource_register_hz(&kvm_clock, NSEC_PER_SEC); rating 299 when the TSC is invariant
    list.push({ name: 'kvm-clock', rating: s.invariantTsc ? 299 : 400, mustVerify: false, ...clocksourceUpdateFreqScale(1n, NSEC_PER_SEC), hz: NSEC_PER_SEC });
  }
  // init_tsc_clocksource(): clocksource_register_khz(&clocksource_tsc, tsc_khz); tsc=reliable drops MUST_VERIFY
  list.push({ name: 'tsc', rating: 300, mustVerify: !s.tscReliable, ...clocksourceUpdateFreqScale(1000n, BigInt(tscKhz)), hz: BigInt(tscKhz) * 1000n });
  return list;
}

/** The arm64 guest's arch timer counter (arch_counter_register(): rating 400, never watched). */
export function arm64Clocksources(cntfrqHz: bigint): Clocksource[] {
  return [{ name: 'arch_sys_counter', rating: 400, mustVerify: false, ...clocksourceUpdateFreqScale(1n, cntfrqHz), hz: cntfrqHz }];
}

/** clocksource_select(): the clocksource= override if registered and usable, else the highest rating. */
export function clocksourceSelect(list: readonly Clocksource[], override: string, unstable: ReadonlySet<string> = new Set()): Clocksource {
  const usable = list.filter((c) => !unstable.has(c.name));
  const forced = usable.find((c) => c.name === override);
  if (forced) return forced;
  return usable.reduce((a, b) => (b.rating > a.rating ? b : a));
}

/** clocksource_select_watchdog(): the highest-rated clocksource not itself watched (null: none, nothing is checked). */
export function clocksourceSelectWatchdog(list: readonly Clocksource[]): Clocksource | null {
  const wd = list.filter((c) => !c.mustVerify);
  return wd.length ? wd.reduce((a, b) => (b.rating > a.rating ? b : a)) : null;
}

/** The guest kernel version as a comparable number: "6.6" → 606. */
export function kernelNumber(kernel: string): number {
  const m = /^(\d+)\.(\d+)/.exec(kernel);
  if (!m) throw new RangeError(`guest kernel version '${kernel}' is not "major.minor"`);
  return Number(m[1]) * 100 + Number(m[2]);
}

export interface WatchdogRules {
  /** the skew beyond which the watched clocksource is marked unstable (ns) */
  marginNs: bigint;
  /** how the margin comes about, in the kernel's terms */
  marginIs: string;
  /** 5.15+: the wd_nsec/cs_nsec detail lines and the current-clocksource line */
  nsecLines: boolean;
  /** 6.2+: the "Clocksource '%s' skewed …" line */
  skewLine: boolean;
  /** 6.8+: a watchdog interval longer than WATCHDOG_INTERVAL_MAX_NS (1 s) is skipped */
  maxIntervalNs: bigint | null;
}

/**
 * The watchdog's margins by kernel version. Before 5.15: |cs_nsec − wd_nsec| > WATCHDOG_THRESHOLD
 * (NSEC_PER_SEC >> 4). From 5.15: cs->uncertainty_margin + watchdog->uncertainty_margin, each
 * 2 × WATCHDOG_MAX_SKEW for a clocksource registered with a frequency (both kvm-clock and tsc):
 * WATCHDOG_MAX_SKEW is 50 µs in 5.15, 100 µs from 5.16, and MAX_SKEW_USEC = 125 × WATCHDOG_INTERVAL
 * / HZ = 62 µs from 6.2.
 */
export function watchdogRules(kernel: string): WatchdogRules {
  const k = kernelNumber(kernel);
  const skew = k < 515 ? null : k === 515 ? 50_000n : k < 602 ? 100_000n : 62_000n;
  return {
    marginNs: skew === null ? NSEC_PER_SEC >> 4n : 4n * skew,
    marginIs: skew === null ? 'WATCHDOG_THRESHOLD (NSEC_PER_SEC >> 4)' : `2 × uncertainty_margin (2 × WATCHDOG_MAX_SKEW, ${skew / 1000n} µs)`,
    nsecLines: k >= 515,
    skewLine: k >= 602,
    maxIntervalNs: k >= 608 ? NSEC_PER_SEC : null,
  };
}
