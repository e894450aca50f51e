// A simulated guest's detectors on hand-made clocks, without a log or a handler: an x86 guest with
// kvmclock and a 1 GHz TSC, whose clocksources both convert to ns as read (clocks_calc_mult_shift()
// gives mult 2^23, shift 23 for 1 GHz), so every expected number can be worked by hand from the
// linear clocks a test writes.
import { guestClocks, type GuestClocks, type GuestLogEntry, type Printk } from '../../machines/guest/clocks.js';
import { x86Clocksources } from '../../machines/guest/clocksource.js';
import { guestSettings, type GuestOverrides, type GuestSettings } from '../../machines/guest/settings.js';

export const S = 1_000_000_000n;
export const MS = 1_000_000n;
/** the pad of the watchdog's continuation lines, after the "clocksource: " prefix */
export const PAD = 'clocksource:                       ';

export interface HandClocks {
  /** kvm-clock's ns on a vCPU at true t (the boot vCPU's for every vCPU unless a test says otherwise) */
  kvmclock(t: bigint, cpu: number): bigint;
  /** the TSC's cycles (= ns at 1 GHz) on a vCPU at true t */
  tsc(t: bigint, cpu: number): bigint;
}

export interface HandGuest {
  clocks: GuestClocks;
  settings: GuestSettings;
  log: GuestLogEntry[];
  printk: Printk;
  /** the log's texts */
  texts(): string[];
}

/**
 * The guest: its vCPUs, its clocks, and its settings (the defaults: a 6.6 guest on kvm-clock), its
 * TSC at `tscKhz` (1 GHz unless a test says otherwise) and kvm_sched_clock_offset `schedOffset`.
 */
export function handGuest(cpus: number[], c: HandClocks, overrides: GuestOverrides = {}, tscKhz = 1_000_000, schedOffset = 0n): HandGuest {
  const settings = guestSettings(overrides);
  const reading = (t: bigint, vcpu: number) => ({ counter: c.tsc(t, vcpu), kvmclock: c.kvmclock(t, vcpu) });
  const clocks = guestClocks(reading, cpus, x86Clocksources(settings, tscKhz, true), schedOffset);
  const log: GuestLogEntry[] = [];
  const printk: Printk = (t, cpu, text) => log.push({ timeNs: t, guestNs: clocks.localClock(t, cpu), vcpu: cpu, text }) - 1;
  return { clocks, settings, log, printk, texts: () => log.map((e) => e.text) };
}

/** A clock that reads true time until `at`, and from there `jumpNs` more (negative: less). */
export const jumpAt = (at: bigint, jumpNs: bigint) => (t: bigint) => (t < at ? t : t + jumpNs);
