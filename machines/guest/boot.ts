// The clock lines an x86 guest on kvm-clock prints as it boots, in the kernel's order:
// kvmclock_init() (arch/x86/kernel/kvmclock.c: its MSRs, kvm_sched_clock_init()'s offset,
// kvm-clock's registration), tsc_early_init() (arch/x86/kernel/tsc.c: "Detected … MHz"), the end of
// setup_arch() (refined-jiffies), tsc=unstable's parse, tsc_init() (tsc-early), core_initcall
// (jiffies), fs_initcall clocksource_done_booting() (the first "Switched to"), device_initcall
// init_tsc_clocksource() (tsc, and a second switch if it outranks kvm-clock). Every number is
// computed as the kernel computes it. The model knows one instant of the boot, the guest's write
// of its kvmclock MSR on the boot vCPU: every line is stamped there (the guest CPU time between
// them, about 0.25 s on a real guest, is not known).
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { U64_MAX } from '../../kvm/u64.js';
import { HZ, type GuestClocks, type Printk } from './clocks.js';
import { clocksCalcMaxNsecs, clocksourceMaxAdjustment, clocksourceSelect, clocksourceUpdateFreqScale, type Clocksource } from './clocksource.js';
import type { GuestSettings } from './settings.js';

/** What the log holds of the guest's boot on this VM. */
export interface GuestBoot {
  /** the true instant of kvmclock_init() on the boot vCPU: its wrmsr enabling MSR_KVM_SYSTEM_TIME(_NEW) */
  timeNs: bigint;
  /** KVM_FEATURE_CLOCKSOURCE2: the guest took MSR_KVM_SYSTEM_TIME_NEW / MSR_KVM_WALL_CLOCK_NEW, else the old pair */
  newMsrs: boolean;
  /** pvclock_tsc_khz() of the boot vCPU's pvclock page: the guest's tsc_khz and cpu_khz (kvm_get_tsc_khz()) */
  tscKhz: bigint;
}

/** The MSR numbers kvmclock_init() prints (%x): arch/x86/include/uapi/asm/kvm_para.h */
const MSRS = { new: [0x4b564d01, 0x4b564d00], old: [0x12, 0x11] } as const;
/** CLOCKSOURCE_MASK(64) and CLOCKSOURCE_MASK(32) (the jiffies clocksources) */
const MASK64 = U64_MAX;
const MASK32 = 0xffff_ffffn;
/** JIFFIES_SHIFT for HZ >= 67 (kernel/time/jiffies.c) */
const JIFFIES_SHIFT = 8;
/** CLOCK_TICK_RATE = PIT_TICK_RATE (arch/x86/include/asm/timex.h): register_refined_jiffies()'s argument */
const CLOCK_TICK_RATE = 1_193_182n;

/** __clocksource_update_freq_scale()'s line: "%s: mask: 0x%llx max_cycles: 0x%llx, max_idle_ns: %lld ns" (pr_fmt "clocksource: "). */
export function clocksourceRegisterLine(name: string, mult: bigint, shift: number, mask: bigint): string {
  const { maxNsecs, maxCycles } = clocksCalcMaxNsecs(mult, shift, clocksourceMaxAdjustment(mult), mask);
  return `clocksource: ${name}: mask: 0x${mask.toString(16)} max_cycles: 0x${maxCycles.toString(16)}, max_idle_ns: ${maxNsecs} ns`;
}

/** clocksource_jiffies' mult: TICK_NSEC << JIFFIES_SHIFT (NSEC_PER_JIFFY, (NSEC_PER_SEC + HZ/2) / HZ) */
export const jiffiesMult = (): bigint => ((NSEC_PER_SEC + HZ / 2n) / HZ) << BigInt(JIFFIES_SHIFT);

/** register_refined_jiffies(): the mult of a jiffies clocksource counting at the PIT's rate, in u32 arithmetic as the kernel's. */
export function registerRefinedJiffiesMult(cyclesPerSecond: bigint = CLOCK_TICK_RATE): bigint {
  const u32 = (x: bigint) => BigInt.asUintN(32, x);
  const cyclesPerTick = (cyclesPerSecond + HZ / 2n) / HZ;
  const shiftHz = ((cyclesPerSecond << 8n) + cyclesPerTick / 2n) / cyclesPerTick;
  const nsecPerTick = ((NSEC_PER_SEC << 8n) + u32(shiftHz) / 2n) / u32(shiftHz);
  return u32(u32(nsecPerTick) << BigInt(JIFFIES_SHIFT));
}

/** pvclock_tsc_khz() (arch/x86/kernel/pvclock.c): the TSC rate a pvclock page's mul/shift stand for, (10^6 << 32) / mul, shifted back. */
export function pvclockTscKhz(mul: bigint, shift: number): bigint {
  const khz = (1_000_000n << 32n) / mul;
  return shift < 0 ? khz << BigInt(-shift) : khz >> BigInt(shift);
}

/** "tsc: Detected %lu.%03lu MHz processor" (determine_cpu_tsc_frequencies(): cpu_khz, which kvm-clock makes tsc_khz). */
export const tscDetectedLine = (khz: bigint): string => `tsc: Detected ${khz / 1000n}.${(khz % 1000n).toString().padStart(3, '0')} MHz processor`;

/**
 * The guest's boot lines, printed at the boot's instant on the boot CPU. `clocksources` is what
 * registered by the end of the boot (kvm-clock, and the TSC unless tsc=unstable).
 */
export function bootLines(boot: GuestBoot, clocks: GuestClocks, s: GuestSettings, printk: Printk): number[] {
  const t = boot.timeNs;
  const cpu = clocks.cpus[0]!;
  const out: number[] = [];
  const p = (text: string) => out.push(printk(t, cpu, text));
  const [system, wall] = boot.newMsrs ? MSRS.new : MSRS.old;
  const kvm = clocks.clocksources.find((c) => c.name === 'kvm-clock')!;
  const tsc = clocksourceUpdateFreqScale(1000n, boot.tscKhz); // clocksource_register_khz(…, tsc_khz): tsc-early's and tsc's
  p(`kvm-clock: Using msrs ${system.toString(16)} and ${wall.toString(16)}`);
  p(`kvm-clock: using sched offset of ${clocks.schedOffset} cycles`); // kvm_sched_clock_init()
  p(clocksourceRegisterLine(kvm.name, kvm.mult, kvm.shift, MASK64));
  p(tscDetectedLine(boot.tscKhz));
  p(clocksourceRegisterLine('refined-jiffies', registerRefinedJiffiesMult(), JIFFIES_SHIFT, MASK32));
  if (s.tscUnstable)
    p('tsc: Marking TSC unstable due to boot parameter'); // tsc_setup() → mark_tsc_unstable("boot parameter")
  else p(clocksourceRegisterLine('tsc-early', tsc.mult, tsc.shift, MASK64)); // tsc_init()
  p(clocksourceRegisterLine('jiffies', jiffiesMult(), JIFFIES_SHIFT, MASK32));
  // clocksource_done_booting(): the "tsc" is not registered yet, and clocksource= names no "tsc-early":
  // kvm-clock (400, or 299 registered before tsc-early's 299) is the best
  p(`clocksource: Switched to clocksource ${kvm.name}`);
  const tscCs = clocks.clocksources.find((c: Clocksource) => c.name === 'tsc');
  if (!tscCs) return out;
  p(clocksourceRegisterLine('tsc', tscCs.mult, tscCs.shift, MASK64)); // init_tsc_clocksource(), X86_FEATURE_TSC_KNOWN_FREQ (kvm_get_tsc_khz())
  const best = clocksourceSelect(clocks.clocksources, s.clocksource);
  if (best.name !== kvm.name) p(`clocksource: Switched to clocksource ${best.name}`);
  return out;
}
