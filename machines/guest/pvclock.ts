// PVCLOCK_GUEST_STOPPED (arch/x86/kernel/kvmclock.c, arch/x86/kernel/pvclock.c): the host sets it
// in a vCPU's pvclock page when it stopped the guest (KVM_KVMCLOCK_CTRL); the first detector to
// look on that vCPU clears it and touches every watchdog, so that the jump is not a lockup.
import { clocksourceTouchWatchdog, type ClocksourceWatchdogState } from './cs-watchdog.js';
import { rcuCpuStallReset, type RcuState } from './rcu-stall.js';
import { touchSoftlockupWatchdogSync, type SoftlockupState } from './softlockup.js';

/** A vCPU whose pvclock page holds PVCLOCK_GUEST_STOPPED: the log position of the guest read that found it. */
export interface GuestStoppedFlag {
  vcpu: number;
  position: number;
}

/** Where the guest found PVCLOCK_GUEST_STOPPED, and which detector looked. */
export interface GuestStoppedFound {
  vcpu: number;
  timeNs: bigint;
  by: 'softlockup' | 'rcu';
  position: number;
}

/** The detectors pvclock_touch_watchdogs() touches. */
export interface TouchedWatchdogs {
  softlockup: SoftlockupState;
  clocksourceWatchdog: ClocksourceWatchdogState;
  rcu: RcuState;
}

/** pvclock_touch_watchdogs() on a CPU: touch_softlockup_watchdog_sync(), clocksource_touch_watchdog(), rcu_cpu_stall_reset(). */
export function pvclockTouchWatchdogs<G extends TouchedWatchdogs>(g: G, cpu: number): G {
  return {
    ...g,
    softlockup: touchSoftlockupWatchdogSync(g.softlockup, cpu),
    clocksourceWatchdog: clocksourceTouchWatchdog(g.clocksourceWatchdog),
    rcu: rcuCpuStallReset(g.rcu),
  };
}

/** kvm_check_and_clear_guest_paused() on a CPU: the flag's position if it was set (now cleared), else null. */
export function kvmCheckAndClearGuestPaused(flags: readonly GuestStoppedFlag[], cpu: number): { flags: GuestStoppedFlag[]; position: number | null } {
  const found = flags.find((f) => f.vcpu === cpu);
  return found ? { flags: flags.filter((f) => f !== found), position: found.position } : { flags: [...flags], position: null };
}
