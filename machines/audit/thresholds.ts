// The thresholds the audit judges a migration by, each with the guest behaviour it stands for.
// A user may override any of them per audit.

export interface AuditThresholds {
  /** guest TSC or kvmclock error (ns) tolerated before it is reported: below this is rounding and VMM latency */
  clockErrorNs: bigint;
  /** kvmclock−TSC step (ns) tolerated before it is reported */
  clockStepNs: bigint;
  /**
   * the guest's clocksource watchdog margin: a TSC-vs-kvm-clock skew beyond it within a checked
   * interval marks the TSC unstable (the default guest's, 6.6: 500 µs; 62.5 ms before 5.14)
   */
  watchdogMarginNs: bigint;
  /** mapped onto the guest's watchdog interval and maximum interval when a request gives them */
  watchdogIntervalNs: bigint;
  watchdogMaxIntervalNs: bigint;
  /** 2 × the guest's watchdog_thresh: a request's value sets the guest's watchdogThreshS (its half, whole seconds) */
  softLockupNs: bigint;
  /** inter-vCPU TSC skew (cycles) tolerated */
  skewCycles: bigint;
  /** frequency error (parts per billion) reported as drift */
  driftPpb: bigint;
  /** frequency error (ppb) that is a warning rather than information (≈ 0.86 ms/day per 10 ppb) */
  driftWarnPpb: bigint;
  /** arm64: the extra cost of a trapped CNTPCT read (the 2021 series measured ~54 ns native vs ~148 ns trapped on Ampere Altra) */
  trapCostNs: bigint;
}

export const DEFAULT_THRESHOLDS: AuditThresholds = {
  clockErrorNs: 1_000_000n, // 1 ms
  clockStepNs: 1_000n, // 1 µs
  watchdogMarginNs: 500_000n, // the default guest's (6.6): 2 × (2 × CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US=125)
  watchdogIntervalNs: 500_000_000n,
  watchdogMaxIntervalNs: 1_000_000_000n,
  softLockupNs: 20_000_000_000n,
  skewCycles: 0n,
  driftPpb: 100n, // 0.1 ppm ≈ 8.6 ms/day
  driftWarnPpb: 1_000n, // 1 ppm ≈ 86 ms/day
  trapCostNs: 95n,
};

/** What each threshold stands for, for the user documentation (docs/audit.md). */
export const THRESHOLD_DOCS: Record<keyof AuditThresholds, string> = {
  clockErrorNs:
    "guest TSC, kvmclock or counter error (ns) tolerated before it is reported: below this is rounding and VMM latency; also the hosts' " +
    'CLOCK_REALTIME disagreement (realtime_disagrees), which a realtime-based restore turns into guest clock error one for one',
  clockStepNs: 'kvmclock−TSC step (ns) tolerated before it is reported',
  watchdogMarginNs:
    "given, the simulated guest's clocksource watchdog margin (guest setting watchdogMarginNs); not given, " +
    "the guest kernel version's (500 µs from 6.3, 400 µs in 5.17-6.2 and from 5.10.94 and 5.15.17, 200 " +
    "µs in 5.14-5.16, 62.5 ms before: see the guest kernel gates; the default shown is the default guest's)",
  watchdogIntervalNs: "given, the simulated guest's clocksource watchdog interval (guest setting watchdogIntervalNs, default 0.5 s)",
  watchdogMaxIntervalNs:
    "given, the interval beyond which the simulated guest's watchdog skips a check (guest " +
    "setting watchdogMaxIntervalNs); not given, the kernel version's (1 s from 6.8)",
  softLockupNs:
    "2 × the simulated guest's watchdog_thresh: given, it sets guest watchdogThreshS " +
    'to its half in whole seconds (1..60); tsc_jump fails beyond 2 × watchdogThreshS',
  skewCycles: 'inter-vCPU counter skew (cycles or ticks) tolerated beyond what was there before',
  driftPpb: 'frequency error (parts per billion) reported as drift (0.1 ppm ≈ 8.6 ms/day)',
  driftWarnPpb: 'frequency error (ppb) that is a warning rather than information (1 ppm ≈ 86 ms/day)',
  trapCostNs: 'arm64: the extra cost of a trapped CNTPCT read (~54 ns native vs ~148 ns trapped measured on Ampere Altra)',
};

/** How each finding code is judged (docs/audit.md adds each of its rules). */
export const FINDING_CODES = {
  migration_failed: 'a step was refused: the migration ended in failed and the source resumed (fail)',
  migration_in_flight: 'the log ends inside the migration (a fork cut it): no outcome, nothing after the stop judged; the verdict is in_flight (info)',
  tsc_lost_time: 'the guest TSC advanced less than true time by more than clockErrorNs (warn)',
  tsc_jump: 'the guest TSC advanced more than true time by more than clockErrorNs (warn; fail beyond softLockupNs)',
  kvmclock_lost_time: 'kvmclock advanced less than true time by more than clockErrorNs (warn)',
  kvmclock_jump: 'kvmclock advanced more than true time by more than clockErrorNs (warn)',
  kvmclock_tsc_step: "kvmclock and the TSC moved by different amounts: the guest's two clocks now disagree by more than clockStepNs (warn)",
  watchdog_tsc_unstable:
    "the simulated guest's clocksource watchdog marked tsc unstable, printing the kernel's lines, which the finding cites (guestLog) (fail)",
  vcpu_skew: 'guest TSCs differ across vCPUs by more than before (warn; fail when the pvclock still claims TSC_STABLE)',
  master_clock_lost: 'the master clock (PVCLOCK_TSC_STABLE) was on before and is off after (warn)',
  time_backwards:
    "a vCPU's TSC or kvmclock, or the guest across vCPUs, reads lower after than before, " +
    'or the resumed guest ran before its kvmclock was restored and read it lower (fail)',
  soft_lockup_risk:
    'the simulated guest printed "BUG: soft lockup" on one or more CPUs: its clock jumped beyond ' +
    '2 × watchdog_thresh without PVCLOCK_GUEST_STOPPED; the finding cites the lines (fail)',
  wall_clock_behind:
    "the simulated guest's CLOCK_REALTIME was behind true time by more than " +
    'wallClockToleranceNs at the resume; the message says how its NTP client corrects it (warn)',
  wall_clock_ahead: "the simulated guest's CLOCK_REALTIME was ahead of true time by more than wallClockToleranceNs at the resume (warn)",
  frequency_drift: 'a guest clock runs at a rate other than its nominal one, in ppm and ms/day (info; warn beyond driftWarnPpb)',
  counter_writes_ignored: 'arm64: counter writes after KVM_ARM_SET_COUNTER_OFFSET were silently ignored (warn)',
  tsc_writes_ignored:
    'x86: the guest TSC is protected (TDX, SEV-SNP Secure TSC): TSC writes the VMM made ' +
    '(IA32_TSC, IA32_TSC_ADJUST, KVM_VCPU_TSC_OFFSET) succeeded and changed nothing (warn)',
  counter_lost_time: 'arm64: the virtual counter advanced less than true time by more than clockErrorNs (warn)',
  counter_jump: 'arm64: the virtual counter advanced more than true time by more than clockErrorNs (warn)',
  counter_divergence: 'arm64: the virtual and physical counters moved apart by more than clockErrorNs (warn)',
  physical_counter_traps: 'arm64: the physical counter is offset without FEAT_ECV, so every guest CNTPCT read traps; counted and costed at trapCostNs (info)',
  guest_rcu_stall: 'the simulated guest printed an rcu_preempt stall (fail)',
  guest_sleeper_stuck: "the simulated guest's sleeper waited on a LAPIC TSC deadline that fired more than 1 s late or not at all (fail)",
  realtime_disagrees:
    "the source and destination hosts' CLOCK_REALTIME differ by more than clockErrorNs at the migration. A realtime-based restore " +
    "(KVM_CLOCK_REALTIME, the offset procedure's ΔT) takes that difference for elapsed time and moves the guest's clocks by it, one for one " +
    '(Documentation/virt/kvm/devices/vcpu.rst: the procedure holds only if CLOCK_REALTIME is synchronized between source and destination), ' +
    'so the guest-clock error tolerance is the threshold (info; warn when the restore used realtime)',
} as const;
export type FindingCode = keyof typeof FINDING_CODES;
