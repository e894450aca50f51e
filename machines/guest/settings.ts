// The Linux guest the audit simulates: its kernel version (the clocksource watchdog's margins
// depend on it), its boot parameters, its NTP client and its lockup detectors. Every field has a
// default; an audit request may override any of them (`guest` in the request).

import { hasGate, kernelVersionProblem, sourceOf } from './gates.js';

/** CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US's Kconfig range (fc153c1c58cb) */
export const MAX_SKEW_US_RANGE = [50, 1000] as const;

export type NtpClient = 'chrony' | 'ntpd' | 'none';

export interface GuestSettings {
  /** the guest kernel version, "major.minor" (its newest stable point release) or "major.minor.patch" (machines/guest/gates.ts) */
  kernel: string;
  /** clocksource= on the command line: 'auto' lets the kernel pick the highest rating */
  clocksource: 'auto' | 'kvm-clock' | 'tsc';
  /** tsc=reliable: the TSC is not watched (no CLOCK_SOURCE_MUST_VERIFY) */
  tscReliable: boolean;
  /** tsc=unstable: tsc_setup() marks the TSC unstable at boot; no "tsc" clocksource is registered */
  tscUnstable: boolean;
  /** CONFIG_PREEMPT_RCU: the RCU flavour's name is rcu_preempt (rcu_sched without it) */
  preemptRcu: boolean;
  /** the vCPUs show an invariant TSC (CPUID constant_tsc + nonstop_tsc): kvm-clock drops to rating 299 */
  invariantTsc: boolean;
  /** kernel.watchdog_thresh (s): the soft-lockup detector reports at twice it */
  watchdogThreshS: number;
  /** the clocksource watchdog's margin (ns): absent, the guest kernel version's (audit threshold watchdogMarginNs) */
  watchdogMarginNs?: bigint;
  /** CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US (5.18+): absent, the version's Kconfig default (125 from 6.3, 100 before) */
  watchdogMaxSkewUs?: number;
  /** the clocksource watchdog's interval (ns, WATCHDOG_INTERVAL: 0.5 s; audit threshold watchdogIntervalNs) */
  watchdogIntervalNs: bigint;
  /** intervals longer than this are skipped as bogus (ns): absent, the kernel version's (audit threshold watchdogMaxIntervalNs) */
  watchdogMaxIntervalNs?: bigint;
  /** the wall-clock error (ns) at the resume beyond which the audit reports wall_clock_behind / wall_clock_ahead */
  wallClockToleranceNs: bigint;
  /** rcupdate.rcu_cpu_stall_timeout (s) */
  rcuStallTimeoutS: number;
  ntp: {
    client: NtpClient;
    /** the NTP client's update interval in the guest's CLOCK_MONOTONIC (ns): its first update is at this, then every this */
    pollNs: bigint;
    /** chrony `makestep threshold limit`: step when the offset exceeds threshold in one of the first `limit` updates */
    makestepThresholdNs: bigint;
    makestepLimit: number;
    /** the largest slew (ppb): chrony maxslewrate (83333.333 ppm), ntpd's kernel PLL limit (500 ppm) */
    maxSlewPpb: bigint;
    /** ntpd -x: the step threshold is 600 s instead of 128 ms (ntpd documentation, ntp 4.2.8) */
    ntpdX: boolean;
    /** ntpd `tinker stepout`: offsets beyond the step threshold are ignored until this long after the last valid update (300 s in ntp 4.2.8) */
    stepoutNs: bigint;
    /** ntpd `tinker panic`: beyond this offset ntpd exits (1000 s; 0: never) */
    panicNs: bigint;
    /**
     * chrony's PHC refclock on /dev/ptp0 (`refclock PHC /dev/ptp0`), the ptp_kvm driver reading the
     * host's CLOCK_REALTIME through KVM_HC_CLOCK_PAIRING: chrony's source instead of a network
     * server, each update after `refclockPollNs` (absent: none)
     */
    refclock?: 'ptp_kvm';
    /** the refclock's `poll`: 2^4 = 16 s by default (chrony.conf(5), refclock directive: "The default is 4 (16 seconds)") */
    refclockPollNs?: bigint;
  };
  /**
   * a guest agent that steps CLOCK_REALTIME to the host's when the error passes `stepAboveNs`,
   * checked every `everyNs` of the guest's CLOCK_MONOTONIC (absent: none)
   */
  agent?: { everyNs: bigint; stepAboveNs: bigint };
  /** the periodic sleeper's period (ns): a task that sleeps this long in a loop on vCPU 0 */
  sleeperPeriodNs: bigint;
  /** how long after the resume the guest is simulated (ns) */
  horizonNs: bigint;
}

/** ntpd's clock state machine defaults (ntp 4.2.8: CLOCK_MINSTEP 300 s, CLOCK_PANIC 1000 s in ntpd/ntp_loopfilter.c) */
const NTPD_TINKER = { ntpdX: false, stepoutNs: 300_000_000_000n, panicNs: 1_000_000_000_000n };

export const DEFAULT_GUEST: GuestSettings = {
  kernel: '6.6',
  clocksource: 'auto',
  tscReliable: false,
  tscUnstable: false,
  preemptRcu: true,
  invariantTsc: false,
  watchdogThreshS: 10,
  watchdogIntervalNs: 500_000_000n,
  wallClockToleranceNs: 1_000_000n,
  rcuStallTimeoutS: 21,
  ntp: { ...NTPD_TINKER, client: 'chrony', pollNs: 64_000_000_000n, makestepThresholdNs: 1_000_000_000n, makestepLimit: 3, maxSlewPpb: 83_333_333n },
  sleeperPeriodNs: 100_000_000n,
  horizonNs: 10_000_000_000n,
};

/** ntpd's defaults: 64 s polls, slews at the kernel's 500 ppm, steps an offset beyond 128 ms once its stepout has passed. */
export const NTPD: GuestSettings['ntp'] = {
  ...NTPD_TINKER,
  client: 'ntpd',
  pollNs: 64_000_000_000n,
  makestepThresholdNs: 0n,
  makestepLimit: 0,
  maxSlewPpb: 500_000n,
};

export type GuestOverrides = Partial<Omit<GuestSettings, 'ntp'>> & { ntp?: Partial<GuestSettings['ntp']> };

/** chrony.conf(5), refclock directive: "poll … The default is 4 (16 seconds)" */
export const REFCLOCK_DEFAULT_POLL_NS = 16_000_000_000n;

/** The interval between the client's updates: its refclock's poll when it has one, else its server poll. */
export const ntpPollNs = ({ ntp }: Pick<GuestSettings, 'ntp'>): bigint => (ntp.refclock ? (ntp.refclockPollNs ?? REFCLOCK_DEFAULT_POLL_NS) : ntp.pollNs);

/**
 * What is wrong with a request's guest settings that their types cannot say (null: nothing): a
 * kernel version the model cannot read, a Kconfig value outside its range or on a kernel without
 * the option. Checked before anything is recorded.
 */
export function guestSettingsProblem(o: GuestOverrides): string | null {
  const kernel = o.kernel ?? DEFAULT_GUEST.kernel;
  const bad = kernelVersionProblem(kernel);
  if (bad) return bad;
  if (o.ntp?.refclock !== undefined && (o.ntp.client ?? DEFAULT_GUEST.ntp.client) !== 'chrony') {
    return `ntp.refclock ${o.ntp.refclock} is chrony's PHC refclock: ntp.client must be chrony, not ${o.ntp.client}`;
  }
  if (o.watchdogMaxSkewUs !== undefined) {
    const [lo, hi] = MAX_SKEW_US_RANGE;
    if (!Number.isInteger(o.watchdogMaxSkewUs) || o.watchdogMaxSkewUs < lo || o.watchdogMaxSkewUs > hi) {
      return `watchdogMaxSkewUs ${o.watchdogMaxSkewUs} is outside CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US's range ${lo}..${hi}`;
    }
    if (!hasGate(kernel, 'max-skew-kconfig')) {
      return (
        `guest kernel ${kernel} has no CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US ` +
        `(from 5.18: ${sourceOf('max-skew-kconfig')}); its WATCHDOG_MAX_SKEW is fixed`
      );
    }
  }
  return null;
}

/** The settings with overrides applied (ntp: client 'ntpd' starts from ntpd's defaults). */
export function guestSettings(o: GuestOverrides = {}): GuestSettings {
  const base = o.ntp?.client === 'ntpd' ? NTPD : o.ntp?.client === 'none' ? { ...DEFAULT_GUEST.ntp, client: 'none' as const } : DEFAULT_GUEST.ntp;
  return { ...DEFAULT_GUEST, ...o, ntp: { ...base, ...(o.ntp ?? {}) } };
}

/** What each setting stands for, for the user documentation (docs/audit.md). */
export const GUEST_SETTING_DOCS: Record<string, string> = {
  kernel:
    'the guest kernel version: "major.minor" (default 6.6) is the newest point release of that series, "major.minor.patch" one point release; what ' +
    'changes with it (the watchdog margin: 62.5 ms before 5.14, 200 µs in 5.14-5.16, 400 µs in 5.17-6.2 ' +
    'and from 5.10.94 and 5.15.17, 500 µs from 6.3; its lines; the 1 s long-interval skip from 6.8, ' +
    "6.6.15, 6.1.78 and 5.15.149; kvm-clock's rating) is in the table of guest kernel gates below",
  clocksource: 'clocksource= on the guest command line: `auto` (the highest rating), `kvm-clock` or `tsc`',
  tscReliable: 'tsc=reliable: the TSC is not watched by the clocksource watchdog',
  tscUnstable:
    'tsc=unstable: tsc_setup() marks the TSC unstable at boot ("tsc: Marking TSC unstable due to boot parameter"), so no "tsc" clocksource is ' +
    'registered and kvm-clock keeps its rating 400 (arch/x86/kernel/tsc.c, kvmclock.c); a guest without kvmclock would then run on a ' +
    'clocksource the model does not emulate, and is not simulated',
  preemptRcu:
    'CONFIG_PREEMPT_RCU (default true): the RCU stall names rcu_preempt; false: rcu_sched (RCU_NAME_RAW, kernel/rcu/tree.h). ' +
    "Firecracker's 6.18 guest config has it (PREEMPT_DYNAMIC=y), its 5.10 config does not (PREEMPT_NONE=y): " +
    'resources/guest_configs/microvm-kernel-ci-x86_64-{6.18,5.10}.config in firecracker-microvm/firecracker',
  invariantTsc:
    "the guest sees an invariant TSC: kvm-clock registers with rating 299, below the TSC's 300 (arch/x86/kernel/kvmclock.c; from 5.1, 7539b174aef4)",
  watchdogMarginNs: "the clocksource watchdog's margin (ns), replacing the kernel version's (audit threshold `watchdogMarginNs` maps here)",
  watchdogMaxSkewUs:
    'CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US (µs, 50..1000; kernels from 5.18, fc153c1c58cb): the margin is 2 × (2 × ' +
    "it); absent, the version's Kconfig default, 125 from 6.3 (c37e85c135ce; distribution configs carry =125), 100 before",
  watchdogIntervalNs: "the clocksource watchdog's interval (ns, default WATCHDOG_INTERVAL = 0.5 s; audit threshold `watchdogIntervalNs` maps here)",
  watchdogMaxIntervalNs:
    "intervals longer than this are skipped as bogus (ns), replacing the kernel version's (1 s from " +
    '6.8 and its stable backports, none before; audit threshold `watchdogMaxIntervalNs` maps here)',
  wallClockToleranceNs:
    'the guest CLOCK_REALTIME error at the resume tolerated before wall_clock_behind / wall_clock_ahead ' +
    '(ns, default 1 ms), and the error its NTP client must bring it within (guest.wallClock.convergedAt)',
  watchdogThreshS:
    'kernel.watchdog_thresh (s, default 10): the soft-lockup hrtimer runs every 2 × thresh / 5 s and reports a ' +
    'CPU stuck beyond 2 × thresh (audit threshold `softLockupNs` maps here as softLockupNs / 2, in whole seconds)',
  rcuStallTimeoutS: 'rcu_cpu_stall_timeout (s, default 21)',
  'ntp.client':
    '`chrony` (default), `ntpd` (ntp 4.2.8: slews at 500 ppm; an offset beyond 128 ms is ignored as ' +
    'a spike until 300 s after its last valid update, then stepped; beyond 1000 s it exits) or `none`',
  'ntp.pollNs': "the NTP client's update interval in guest CLOCK_MONOTONIC (ns, default 64 s): updates at every multiple of it since boot",
  'ntp.makestepThresholdNs': 'chrony makestep threshold (ns, default 1 s)',
  'ntp.makestepLimit': 'chrony makestep limit (default 3): only the first this many updates since boot may step; negative: no limit (chrony.conf(5))',
  'ntp.maxSlewPpb': "the largest slew rate in ppb (chrony maxslewrate 83333.333 ppm; ntpd 500 ppm), applied to the guest clock's own rate",
  'ntp.ntpdX': 'ntpd -x: step threshold 600 s instead of 128 ms (the ntpd and "Clock State Machine" pages of ntp 4.2.8)',
  'ntp.stepoutNs':
    'ntpd `tinker stepout` (ns, default 300 s in ntp 4.2.8, CLOCK_MINSTEP): how long offsets beyond the step threshold are ignored after the last valid update',
  'ntp.refclock':
    "`ptp_kvm`: chrony's PHC refclock on /dev/ptp0 (`refclock PHC /dev/ptp0`), the ptp_kvm driver reading the host's " +
    'CLOCK_REALTIME and TSC through KVM_HC_CLOCK_PAIRING: an exact offset at every refclock poll, stepped or slewed by ' +
    "chrony's makestep rules (ntp.client must be chrony). KVM refuses the hypercall (KVM_EOPNOTSUPP) when the host's " +
    'clocksource is not the TSC (kvm_pv_clock_pairing() → kvm_get_walltime_and_clockread()), and the refclock then gives nothing',
  'ntp.refclockPollNs': 'the refclock\'s `poll` (ns, default 16 s: chrony.conf(5), refclock directive, "The default is 4 (16 seconds)")',
  agent:
    "a guest agent: `{ everyNs, stepAboveNs }`: every `everyNs` of the guest's CLOCK_MONOTONIC it compares CLOCK_REALTIME " +
    "with the host's and steps it when the error passes `stepAboveNs`",
  'ntp.panicNs': 'ntpd `tinker panic` (ns, default 1000 s, CLOCK_PANIC; 0: none): an offset beyond it makes ntpd exit',
  sleeperPeriodNs: "the period of the guest's sleeper on vCPU 0 (ns, default 100 ms)",
  horizonNs: "how long after the resume the guest's timers are simulated (ns, default 10 s; the wall-clock curve runs until NTP converges)",
};
