// What the guest model takes (the guest as the audit hands it over, every input rebuilt from the
// log) and what it reports, the detectors' entries in their own modules' shapes.
import type { GuestBoot } from './boot.js';
import type { GuestLogEntry, GuestReading } from './clocks.js';
import type { ClocksourceName } from './clocksource.js';
import type { WatchdogRun } from './cs-watchdog.js';
import type { WallClock } from './ntp.js';
import type { GuestStoppedFound } from './pvclock.js';
import type { RcuStall } from './rcu-stall.js';
import type { SleeperWake } from './sleeper.js';
import type { SoftLockup } from './softlockup.js';

export type { GuestBoot } from './boot.js';
export type { GuestLogEntry, GuestReading } from './clocks.js';
export type { WatchdogRun } from './cs-watchdog.js';
export type { WallClock, WallClockPoint } from './ntp.js';

/** The guest as the audit hands it over: every input is rebuilt from the log. */
export interface GuestInput {
  arch: 'x86' | 'arm64';
  vcpus: number[];
  /** the guest's counter rate: x86 tsc_khz × 1000 (the boot vCPU's virtual TSC), arm64 CNTFRQ */
  counterHz: bigint;
  /** x86: the guest enabled kvmclock on its boot vCPU */
  kvmclock: boolean;
  stopTime: bigint;
  /**
   * the instant the guest began running on the stopped VM (every vCPU in KVM_RUN): a VM a migration created
   * runs from that migration's resume, and its clocks before then are not the guest's
   */
  runningSince: bigint;
  /** null: nothing resumed (in flight) */
  resumeTime: bigint | null;
  /**
   * the guest's clocks on a vCPU at true time t, through the emulated kernel on the VM state in
   * force at t (before the stop: the state after the VM's last event at or before t; from the
   * resume: the resumed side as it resumed)
   */
  read(t: bigint, vcpu: number): GuestReading;
  /** before the stop: the span [from, until) of the VM state in force at t (until null: that state holds to the stop) */
  spanAt(t: bigint): { from: bigint; until: bigint | null };
  /** true wall-clock time at t (the host's CLOCK_REALTIME on the side the guest runs on) */
  realtime(t: bigint): bigint;
  /** x86: per vCPU, the log position of the guest read that found PVCLOCK_GUEST_STOPPED after the resume */
  guestStopped: Map<number, number>;
  /** x86: the boot vCPU's LAPIC TSC-deadline timer, if the guest had one armed as the stop began */
  deadline: { tscDeadline: bigint; firesAt: bigint | null; positions: number[] } | null;
  /**
   * x86: the guest's boot as the log holds it (its kvmclock_init() on the boot vCPU); absent or
   * null: the guest booted before the log's VM (a VM a migration or restore created), its
   * kvm_sched_clock_offset is not known
   */
  boot?: GuestBoot | null;
  /** what the guest's life brought to this stop (machines/life): absent, a guest fresh at the stop (its wall clock right) */
  carried?: GuestCarry;
}

/** What a guest carries from one stop to the next (machines/life/life.ts folds it from the log). */
export interface GuestCarry {
  /** the timekeeper's clocksource as the stop began, and the clocksources marked unstable before (they stay marked) */
  clocksource: ClocksourceName;
  unstable: ClocksourceName[];
  /** CLOCK_REALTIME − true time as the stop began (ns) */
  realtimeErrorNs: bigint;
  /** ntpd's SPIK state and the update its stepout counts from (null: the last before the stop) */
  ntpSpike: boolean;
  ntpLastValidUpdate: bigint | null;
  /**
   * x86: the guest's boot on the VM its life began on (null: not in the log, or no kvmclock), and
   * the kvm_sched_clock_offset it took there. A guest takes it once (kvm_sched_clock_init(); the
   * variable is __ro_after_init in arch/x86/kernel/kvmclock.c) and keeps it across every migration
   * and restore: its sched_clock on a later VM is that VM's kvm-clock less this offset.
   */
  boot: CarriedBoot | null;
}

/** The boot a guest carries: where and when it took its kvm_sched_clock_offset, and that offset. */
export interface CarriedBoot {
  vmId: string;
  timeNs: bigint;
  schedOffset: bigint;
}

export interface GuestReport {
  kernel: string;
  clocksource: {
    before: string;
    after: string;
    watchdog: string | null;
    ratings: Record<string, number>;
    marginNs: bigint;
    marginIs: string;
  };
  log: GuestLogEntry[];
  /**
   * the guest's boot when the log holds it: kvm_sched_clock_offset (sched_clock() = kvm-clock − it)
   * and the clock lines it printed (null: not known; sched_clock is then taken as kvm-clock itself).
   * A guest that booted on an earlier VM of its life (carried): its boot's instant and offset, and
   * no lines (they are in that VM's audits)
   */
  boot: { timeNs: bigint; schedOffset: bigint; log: GuestLogEntry[] } | null;
  /**
   * the clocksource watchdog's runs from the last before the stop to the horizon (runs that only
   * re-checked a clean interval after the first are counted, not listed)
   */
  watchdogRuns: WatchdogRun[];
  /** vCPUs on which the guest found PVCLOCK_GUEST_STOPPED and touched its watchdogs, and where */
  guestStopped: GuestStoppedFound[];
  softLockups: SoftLockup[];
  rcuStalls: RcuStall[];
  wallClock: WallClock;
  sleeper: {
    vcpu: number;
    periodNs: bigint;
    /** the first wake-ups after the resume: the CLOCK_MONOTONIC expiry, the true instant, and how late the guest sees it */
    wakes: SleeperWake[];
    /** the worst lateness (null: a wake-up still pending at the horizon) */
    maxLateNs: bigint | null;
    /** the LAPIC deadline was armed and never fired within the horizon */
    stuck: boolean;
  };
}
