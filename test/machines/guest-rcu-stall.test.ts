// The RCU stall detector (machines/guest/rcu-stall.ts): a grace period in flight since the stop
// (CLOCK_MONOTONIC 9.5 s), checked at the first tick after the resume against
// rcu_cpu_stall_timeout (21 s); jiffies at HZ 250.
import { describe, expect, it } from 'vitest';
import { checkCpuStall, rcuCpuStallReset, rcuInit } from '../../machines/guest/rcu-stall.js';
import { S, handGuest } from '../helpers/guest-clocks.js';

const s = { rcuStallTimeoutS: 21, preemptRcu: true };
const atStop = rcuInit(9_500_000_000n);

describe('checkCpuStall', () => {
  it('30 s later: a self-detected stall, jiffies jumped 30 × 250 = 7500', () => {
    const { printk, texts } = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t });
    let asked = 0;
    const stall = checkCpuStall(atStop, 40n * S, 0, 39_500_000_000n, s, 1, () => (asked++, false), printk);
    expect(stall).toEqual({ vcpu: 0, timeNs: 40n * S, jiffies: 7500n, ncpus: 1, log: [0] });
    expect(texts()).toEqual(['rcu: INFO: rcu_preempt self-detected stall on CPU']);
    expect(asked).toBe(1);
  });

  // RCU_NAME_RAW (kernel/rcu/tree.h): a kernel without CONFIG_PREEMPT_RCU, as Firecracker's 5.10
  // guest config (PREEMPT_NONE=y), names rcu_sched; rcu_state.n_online_cpus is the guest's CPUs
  it('without CONFIG_PREEMPT_RCU the flavour is rcu_sched; ncpus is the online CPUs', () => {
    const { printk, texts } = handGuest([0, 1, 2], { kvmclock: (t) => t, tsc: (t) => t });
    const stall = checkCpuStall(atStop, 40n * S, 0, 39_500_000_000n, { ...s, preemptRcu: false }, 3, () => false, printk);
    expect(stall).toMatchObject({ jiffies: 7500n, ncpus: 3 });
    expect(texts()).toEqual(['rcu: INFO: rcu_sched self-detected stall on CPU']);
  });

  it('the host stopped the guest (kvm_check_and_clear_guest_paused()): no stall', () => {
    const { printk, log } = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t });
    expect(checkCpuStall(atStop, 40n * S, 0, 39_500_000_000n, s, 1, () => true, printk)).toBeNull();
    expect(log).toEqual([]);
  });

  it('exactly the timeout (21 s) is no stall, and PVCLOCK_GUEST_STOPPED is not looked at', () => {
    const { printk } = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t });
    let asked = 0;
    expect(checkCpuStall(atStop, 40n * S, 0, 30_500_000_000n, s, 1, () => (asked++, true), printk)).toBeNull();
    expect(asked).toBe(0);
  });

  it('after rcu_cpu_stall_reset(): no stall, and the flag is left for the next detector', () => {
    const { printk } = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t });
    let asked = 0;
    expect(checkCpuStall(rcuCpuStallReset(atStop), 40n * S, 0, 39_500_000_000n, s, 1, () => (asked++, true), printk)).toBeNull();
    expect(asked).toBe(0);
  });
});
