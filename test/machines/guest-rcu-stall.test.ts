// The RCU stall detector (machines/guest/rcu-stall.ts): a grace period in flight since the stop
// (CLOCK_MONOTONIC 9.5 s), checked at the first tick after the resume against
// rcu_cpu_stall_timeout (21 s); jiffies at HZ 250.
import { describe, expect, it } from 'vitest';
import { checkCpuStall, rcuCpuStallReset, rcuInit } from '../../machines/guest/rcu-stall.js';
import { S, handGuest } from '../helpers/guest-clocks.js';

const s = { rcuStallTimeoutS: 21 };
const atStop = rcuInit(9_500_000_000n);

describe('checkCpuStall', () => {
  it('30 s later: a self-detected stall, jiffies jumped 30 × 250 = 7500', () => {
    const { printk, texts } = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t });
    let asked = 0;
    const stall = checkCpuStall(atStop, 40n * S, 0, 39_500_000_000n, s, () => (asked++, false), printk);
    expect(stall).toEqual({ vcpu: 0, timeNs: 40n * S, jiffies: 7500n, log: [0] });
    expect(texts()).toEqual(['rcu: INFO: rcu_preempt self-detected stall on CPU']);
    expect(asked).toBe(1);
  });

  it('the host stopped the guest (kvm_check_and_clear_guest_paused()): no stall', () => {
    const { printk, log } = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t });
    expect(checkCpuStall(atStop, 40n * S, 0, 39_500_000_000n, s, () => true, printk)).toBeNull();
    expect(log).toEqual([]);
  });

  it('exactly the timeout (21 s) is no stall, and PVCLOCK_GUEST_STOPPED is not looked at', () => {
    const { printk } = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t });
    let asked = 0;
    expect(checkCpuStall(atStop, 40n * S, 0, 30_500_000_000n, s, () => (asked++, true), printk)).toBeNull();
    expect(asked).toBe(0);
  });

  it('after rcu_cpu_stall_reset(): no stall, and the flag is left for the next detector', () => {
    const { printk } = handGuest([0], { kvmclock: (t) => t, tsc: (t) => t });
    let asked = 0;
    expect(checkCpuStall(rcuCpuStallReset(atStop), 40n * S, 0, 39_500_000_000n, s, () => (asked++, true), printk)).toBeNull();
    expect(asked).toBe(0);
  });
});
