// What a test guest does through the handlers before its story starts: kvmclock registered on its
// vCPUs as a booting Linux guest does, and standby cycles (pause, snapshot, restore later in place).
import type { Ledger } from './ledger.js';

const S = 1_000_000_000n;

/**
 * Each vCPU writes MSR_KVM_SYSTEM_TIME_NEW with its own pvclock page (4 KiB apart) and the enable
 * bit set, as kvm_register_clock() does at boot (arch/x86/kernel/kvmclock.c).
 */
export async function registerKvmclock(l: Ledger, vmId: string, vcpus: number): Promise<void> {
  for (let v = 0; v < vcpus; v++) await l.ok('guest', { vmId, vcpu: v, op: 'wrmsr', msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10000 + 0x1000 * v + 1 });
}

/**
 * n standby cycles of a VM: pause, snapshot, restore 45 s later on the same host (QEMU stop/cont:
 * kvmclock does not count the stop; no VMM latency), then 100 s of running.
 */
export async function standbys(l: Ledger, n: number, vmId = 'web'): Promise<void> {
  for (let i = 0; i < n; i++) {
    await l.ok('migrate', { vmId, inPlace: true, strategy: 'qemu', blackoutNs: (45n * S).toString(), vmmLatencyNs: '0' });
    await l.ok('advanceTime', { ns: (100n * S).toString() });
  }
}
