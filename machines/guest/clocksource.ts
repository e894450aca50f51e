// The guest's clocksources (kernel/time/clocksource.c, arch/x86/kernel/kvmclock.c,
// arch/x86/kernel/tsc.c, drivers/clocksource/arm_arch_timer.c): their ratings, which one the
// kernel selects, their mult/shift, and the watchdog's margins for a kernel version.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { U64_MAX } from '../../kvm/u64.js';
import { clocksCalcMultShift } from '../../kvm/host.js';
import { hasGate, parseKernelVersion, sourceOf, type GateId } from './gates.js';
import type { GuestSettings } from './settings.js';

export type ClocksourceName = 'kvm-clock' | 'tsc' | 'arch_sys_counter';

export interface Clocksource {
  name: ClocksourceName;
  rating: number;
  /** CLOCK_SOURCE_MUST_VERIFY: watched by the clocksource watchdog */
  mustVerify: boolean;
  /** CLOCK_SOURCE_VERIFY_PERCPU: checked across CPUs once marked unstable (the TSC, 7560c02bdffb) */
  verifyPercpu: boolean;
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

/** clocksource_max_adjustment(): the largest NTP adjustment of mult, 11% of it (u32 arithmetic). */
export const clocksourceMaxAdjustment = (mult: bigint): bigint => (mult * 11n) / 100n;

/**
 * clocks_calc_max_nsecs() (kernel/time/clocksource.c): the cycles cyc2ns() takes at mult + maxadj
 * without overflowing 64 bits, capped at the mask, and half the ns they last at mult − maxadj
 * (the 50% margin); clocksource_update_max_deferment() stores them as max_cycles and max_idle_ns.
 */
export function clocksCalcMaxNsecs(mult: bigint, shift: number, maxadj: bigint, mask: bigint): { maxNsecs: bigint; maxCycles: bigint } {
  let maxCycles = U64_MAX / (mult + maxadj);
  if (maxCycles > mask) maxCycles = mask;
  const maxNsecs = clocksourceCyc2ns(maxCycles, mult - maxadj, shift) >> 1n;
  return { maxNsecs, maxCycles };
}

/** clocksource_cyc2ns(): cycles to ns through mult/shift (64-bit product: no overflow in bigint). */
export const clocksourceCyc2ns = (cycles: bigint, mult: bigint, shift: number): bigint => (cycles * mult) >> BigInt(shift);

/**
 * The x86 guest's clocksources: kvm-clock (400; 299 with an invariant TSC from 5.1) if the guest
 * enabled it, and the TSC (300) unless tsc=unstable marked it at boot: mark_tsc_unstable("boot
 * parameter") from tsc_setup(), after which init_tsc_clocksource() registers no "tsc" and
 * kvmclock_init() keeps kvm-clock at 400 (its 299 needs !check_tsc_unstable()).
 */
export function x86Clocksources(s: GuestSettings, tscKhz: number, kvmclock: boolean): Clocksource[] {
  const list: Clocksource[] = [];
  if (kvmclock) {
    // kvmclock_init(): clocksource_register_hz(&kvm_clock, NSEC_PER_SEC); rating 299 when the TSC is invariant (7539b174aef4, v5.1)
    const rating = s.invariantTsc && !s.tscUnstable && hasGate(s.kernel, 'kvmclock-rating-299') ? 299 : 400;
    list.push({ name: 'kvm-clock', rating, mustVerify: false, verifyPercpu: false, ...clocksourceUpdateFreqScale(1n, NSEC_PER_SEC), hz: NSEC_PER_SEC });
  }
  if (s.tscUnstable) return list;
  // init_tsc_clocksource(): clocksource_register_khz(&clocksource_tsc, tsc_khz); tsc=reliable drops MUST_VERIFY
  list.push({
    name: 'tsc',
    rating: 300,
    mustVerify: !s.tscReliable,
    verifyPercpu: true,
    ...clocksourceUpdateFreqScale(1000n, BigInt(tscKhz)),
    hz: BigInt(tscKhz) * 1000n,
  });
  return list;
}

/** The arm64 guest's arch timer counter (arch_counter_register(): rating 400, never watched). */
export function arm64Clocksources(cntfrqHz: bigint): Clocksource[] {
  return [{ name: 'arch_sys_counter', rating: 400, mustVerify: false, verifyPercpu: false, ...clocksourceUpdateFreqScale(1n, cntfrqHz), hz: cntfrqHz }];
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

export interface WatchdogRules {
  /** the skew beyond which the watched clocksource is marked unstable (ns) */
  marginNs: bigint;
  /** how the margin comes about, in the kernel's terms, with its source */
  marginIs: string;
  /** the wd_nsec/cs_nsec detail lines (22a223833716) */
  nsecLines: boolean;
  /** the "is current clocksource" line (fa218f1cce6b) */
  currentLine: boolean;
  /** the "Clocksource '%s' skewed …" line (dd029269947a), and whether its ms are signed (e40806e9bcf8) */
  skewLine: boolean;
  skewLineSigned: boolean;
  /** clocksource_verify_percpu() for a current clocksource marked unstable (7560c02bdffb) */
  verifyPercpu: boolean;
  /** a watchdog interval longer than WATCHDOG_INTERVAL_MAX_NS (1 s) is skipped (644649553508) */
  maxIntervalNs: bigint | null;
  /** clocksource_delta()'s negative-motion test: the top bit of the mask, or above 7/8 of it (76031d9536a0) */
  negativeMotion: 'top-bit' | 'seven-eighths';
}

/**
 * The clocksource watchdog of a guest kernel version (kernel/time/clocksource.c), each difference
 * a gate of machines/guest/gates.ts. The margin: WATCHDOG_THRESHOLD before the uncertainty margins;
 * with them, cs->uncertainty_margin + watchdog->uncertainty_margin, each 2 × WATCHDOG_MAX_SKEW for
 * a clocksource registered with a frequency (kvm-clock at 1 GHz, tsc at tsc_khz: their periods are
 * far below it). WATCHDOG_MAX_SKEW is MAX_SKEW_USEC µs, which is CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US
 * wherever the option exists (x86 always has it: the option depends on CLOCKSOURCE_WATCHDOG, which
 * x86 selects); `maxSkewUs` sets that option (absent: the Kconfig default of the version).
 */
export function watchdogRules(kernel: string, maxSkewUs?: number): WatchdogRules {
  const k = parseKernelVersion(kernel);
  const has = (id: GateId) => hasGate(k, id);
  let marginNs: bigint;
  let marginIs: string;
  if (!has('uncertainty-margin')) {
    marginNs = NSEC_PER_SEC >> 4n;
    marginIs = `WATCHDOG_THRESHOLD (NSEC_PER_SEC >> 4): the uncertainty margins came with ${sourceOf('uncertainty-margin')}`;
  } else {
    let us: number;
    let from: string;
    if (has('max-skew-kconfig')) {
      us = maxSkewUs ?? (has('max-skew-125us') ? 125 : 100);
      from =
        maxSkewUs !== undefined
          ? `CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US=${us} (set: watchdogMaxSkewUs)`
          : `CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US=${us}, its Kconfig default (${sourceOf(has('max-skew-125us') ? 'max-skew-125us' : 'max-skew-kconfig')})`;
    } else {
      us = has('max-skew-100us') ? 100 : 50;
      from = `WATCHDOG_MAX_SKEW = ${us} µs (${has('max-skew-100us') ? sourceOf('max-skew-100us') : sourceOf('uncertainty-margin')})`;
    }
    marginNs = 4n * BigInt(us) * 1000n;
    marginIs = `cs->uncertainty_margin + watchdog->uncertainty_margin = 2 × (2 × WATCHDOG_MAX_SKEW), ${from}`;
  }
  return {
    marginNs,
    marginIs,
    nsecLines: has('nsec-lines'),
    currentLine: has('current-clocksource-line'),
    skewLine: has('skew-line'),
    skewLineSigned: has('skew-line-signed'),
    verifyPercpu: has('verify-percpu'),
    maxIntervalNs: has('long-interval-skip') ? NSEC_PER_SEC : null,
    negativeMotion: has('negative-motion-7-8') ? 'seven-eighths' : 'top-bit',
  };
}

/**
 * clocksource_delta(): the masked u64 delta of two readings, 0 when it reads as negative motion
 * (x86 always checked: CLOCKSOURCE_VALIDATE_LAST_CYCLE, made unconditional by c163e40af9b2).
 */
export function clocksourceDelta(now: bigint, last: bigint, mask: bigint, rule: WatchdogRules['negativeMotion']): bigint {
  const ret = (now - last) & mask;
  if (rule === 'seven-eighths') return ret > (mask >> 1n) + (mask >> 2n) + (mask >> 3n) ? 0n : ret;
  return ret & ~(mask >> 1n) ? 0n : ret;
}
