// The RCU CPU stall detector (kernel/rcu/tree_stall.h): at a scheduler tick, a grace period in
// flight for longer than rcu_cpu_stall_timeout is a stall, unless the stall check was reset
// (rcu_cpu_stall_reset()) or the host stopped the guest (kvm_check_and_clear_guest_paused()).
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { HZ, type Printk } from './clocks.js';
import type { GuestSettings } from './settings.js';

export interface RcuStall {
  vcpu: number;
  timeNs: bigint;
  /** how far jiffies jumped since the grace period began: the t= of print_cpu_stall()'s next line */
  jiffies: bigint;
  /** rcu_state.n_online_cpus: its ncpus= */
  ncpus: number;
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
  s: Pick<GuestSettings, 'rcuStallTimeoutS' | 'preemptRcu'>,
  ncpus: number,
  guestPaused: () => boolean,
  printk: Printk,
): RcuStall | null {
  const elapsed = monoNs - state.gpStartNs;
  if (state.stallReset || elapsed <= BigInt(s.rcuStallTimeoutS) * NSEC_PER_SEC) return null;
  if (guestPaused()) return null;
  // print_cpu_stall(): pr_err("INFO: %s self-detected stall on CPU\n", rcu_state.name). Its next
  // lines, print_cpu_stall_info()'s and "\t(t=%lu jiffies g=%ld q=%lu ncpus=%d)", carry counters
  // the model does not have (the grace-period number, the queued callbacks, per-CPU state): t and
  // ncpus are in the returned entry, the lines are not printed
  const i = printk(t, cpu, `rcu: INFO: ${rcuName(s)} self-detected stall on CPU`);
  return { vcpu: cpu, timeNs: t, jiffies: (elapsed * HZ) / NSEC_PER_SEC, ncpus, log: [i] };
}

/** RCU_NAME_RAW (kernel/rcu/tree.h): "rcu_preempt" with CONFIG_PREEMPT_RCU, "rcu_sched" without. */
export const rcuName = (s: Pick<GuestSettings, 'preemptRcu'>): string => (s.preemptRcu ? 'rcu_preempt' : 'rcu_sched');
