// The guest's state as plain data: the timekeeper's and each detector's. The audit derives it at
// the stop from the clocks the guest read before it (guestStateAtStop); it is also what a guest
// carried through a VM's life would bring from one stop to the next.
import { arm64Clocksources, x86Clocksources, type Clocksource } from './clocksource.js';
import { monoReachedAt, timekeepingInit, type GuestClocks, type TimekeepingState } from './clocks.js';
import { clocksourceWatchdogInit, type ClocksourceWatchdogConfig, type ClocksourceWatchdogState } from './cs-watchdog.js';
import { ntpInit, type NtpState } from './ntp.js';
import { rcuInit, type RcuState } from './rcu-stall.js';
import type { GuestSettings } from './settings.js';
import { sleeperInit, type SleeperState } from './sleeper.js';
import { softlockupInit, type SoftlockupState } from './softlockup.js';
import type { GuestCarry, GuestInput } from './types.js';

export interface GuestState {
  timekeeping: TimekeepingState;
  clocksourceWatchdog: ClocksourceWatchdogState;
  softlockup: SoftlockupState;
  rcu: RcuState;
  sleeper: SleeperState;
  ntp: NtpState;
}

/** The clocksources the guest registers: x86 kvm-clock (if it enabled kvmclock) and the TSC, arm64 the arch timer. */
export function guestClocksources(inp: Pick<GuestInput, 'arch' | 'counterHz' | 'kvmclock' | 'boot'>, s: GuestSettings): Clocksource[] {
  // tsc_khz: kvm_get_tsc_khz() at boot (pvclock_tsc_khz(), which may truncate a kHz), else the vCPU's rate
  const tscKhz = inp.boot?.tscKhz ?? inp.counterHz / 1000n;
  return inp.arch === 'x86' ? x86Clocksources(s, Number(tscKhz), inp.kvmclock) : arm64Clocksources(inp.counterHz);
}

/**
 * The guest as the stop began, from the clocks it read before: timekeeping on the clocksource it
 * selected at boot, each detector as its periodic timers left it at CLOCK_MONOTONIC's reading at
 * the stop (`monoAtStop`, returned beside it), the wall clock right; or, carried from the guest's
 * life (`inp.carried`), on the clocksource it had, its unstable marks and its wall-clock error.
 */
/** The NTP client as the guest's life left it: its polls still those of CLOCK_MONOTONIC since boot, its error and state carried. */
function ntpCarried(fresh: NtpState, c: GuestCarry): NtpState {
  return { ...fresh, errorNs: c.realtimeErrorNs, spike: c.ntpSpike, lastValidUpdate: c.ntpLastValidUpdate ?? fresh.lastValidUpdate };
}

export function guestStateAtStop(
  inp: GuestInput,
  s: GuestSettings,
  clocks: GuestClocks,
  watchdog: ClocksourceWatchdogConfig,
): { state: GuestState; monoAtStop: bigint } {
  const carried = inp.carried;
  // a guest carried from an earlier stop keeps the clocksource it ran on and what it marked unstable
  const timekeeping = carried
    ? { ...timekeepingInit(clocks.clocksources, s.clocksource), clocksource: carried.clocksource, unstable: [...carried.unstable] }
    : timekeepingInit(clocks.clocksources, s.clocksource);
  const mono = (t: bigint) => clocks.ktimeGet(timekeeping, t);
  const monoAtStop = mono(inp.stopTime);
  // the watchdog's last run read the clocks once the guest's clock had reached its expiry while it
  // ran on this VM (an expiry in an earlier blackout fires as the guest runs again), through the
  // state in force then: a clock KVM wrote later is not what it read
  const firedAt = (expiresNs: bigint) => monoReachedAt(mono, inp, monoAtStop, expiresNs);
  return {
    monoAtStop,
    state: {
      timekeeping,
      clocksourceWatchdog: clocksourceWatchdogInit(watchdog, clocks, monoAtStop, firedAt),
      softlockup: softlockupInit(clocks.cpus, clocks.localClock(inp.stopTime, clocks.cpus[0]!), monoAtStop, s),
      rcu: rcuInit(monoAtStop),
      sleeper: sleeperInit(monoAtStop, s.sleeperPeriodNs, inp.deadline?.tscDeadline ?? null, clocks.clocksources),
      ntp: carried ? ntpCarried(ntpInit(monoAtStop, s), carried) : ntpInit(monoAtStop, s),
    },
  };
}
