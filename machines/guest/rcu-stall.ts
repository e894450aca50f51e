// The RCU CPU stall detector (kernel/rcu/tree_stall.h): at a scheduler tick, a grace period in
// flight for longer than rcu_cpu_stall_timeout is a stall, unless the stall check was reset
// (rcu_cpu_stall_reset()) or the host stopped the guest (kvm_check_and_clear_guest_paused()).
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { HZ, type Printk } from './clocks.js';
import type { GuestSettings } from './settings.js';

export interface RcuStall {
  vcpu: number;
  timeNs: bigint;
  /** how far jiffies jumped since the grace period began */
  jiffies: bigint;
  log: number[];
}

export interface RcuState {
  /** CLOCK_MONOTONIC as the grace period in flight began (ns): the model's began as the stop did */
  gpStartNs: bigint;
  /** rcu_cpu_stall_reset() since it began: jiffies_stall is ULONG_MAX, no stall is seen */
  stallReset: boolean;
}

/** A grace period in flight since the stop (record_gp_stall_check_time()). */
export const rcuInit = (monoAtStop: bigint): RcuState => ({ gpStartNs: monoAtStop, stallReset: false });

/** rcu_cpu_stall_reset() */
export const rcuCpuStallReset = (state: RcuState): RcuState => ({ ...state, stallReset: true });

/**
 * check_cpu_stall() at a tick at true time t on a CPU whose CLOCK_MONOTONIC reads monoNs: a
 * self-detected stall once the grace period has run longer than rcu_cpu_stall_timeout, unless
 * `guestPaused` (kvm_check_and_clear_guest_paused(), which touches every detector) finds the host
 * stopped the guest.
 */
export function checkCpuStall(
  state: RcuState,
  t: bigint,
  cpu: number,
  monoNs: bigint,
  s: Pick<GuestSettings, 'rcuStallTimeoutS'>,
  guestPaused: () => boolean,
  printk: Printk,
): RcuStall | null {
  const elapsed = monoNs - state.gpStartNs;
  if (state.stallReset || elapsed <= BigInt(s.rcuStallTimeoutS) * NSEC_PER_SEC) return null;
  if (guestPaused()) return null;
  const i = printk(t, cpu, 'rcu: INFO: rcu_preempt self-detected stall on CPU'); // print_cpu_stall()
  return { vcpu: cpu, timeNs: t, jiffies: (elapsed * HZ) / NSEC_PER_SEC, log: [i] };
}
