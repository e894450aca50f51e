// The LAPIC TSC-deadline timer as kvm_set_lapic_tscdeadline_msr() and start_sw_tscdeadline() arm
// it: the deadline is in guest TSC cycles, the hrtimer in host nanoseconds through the guest's
// virtual TSC rate, so a guest TSC that lost or gained time across a migration moves the expiry.
import { describe, expect, it } from 'vitest';
import { MSRS } from '../../kvm/uapi.js';
import { X86Sim } from './sim.js';

const MS = 1_000_000n;

function running(spec: ConstructorParameters<typeof X86Sim>[0] = {}) {
  const sim = new X86Sim({ tscKhz: 3_000_000, ...spec });
  sim.ioctl('KVM_CREATE_VCPU', 0);
  sim.ioctl('KVM_RUN', undefined, 0);
  sim.advance(5n * MS);
  return sim;
}
const rdtsc = (sim: X86Sim) => sim.guest(0, 'rdtsc').value!;
const deadline = (sim: X86Sim, value: bigint) => sim.guest(0, 'wrmsr', { msr: MSRS.MSR_IA32_TSC_DEADLINE, value });

describe('TSC-deadline timer', () => {
  it('a deadline 3,000,000 cycles ahead on a 3 GHz guest expires 1 ms from now', () => {
    const sim = running();
    deadline(sim, rdtsc(sim) + 3_000_000n);
    expect(sim.vm.vcpus[0]!.tscDeadlineFiresAt).toBe(sim.t + MS);
    expect(sim.guest(0, 'rdmsr', { msr: MSRS.MSR_IA32_TSC_DEADLINE }).value).toBe(rdtsc(sim) + 3_000_000n);
  });

  it('counts cycles at the guest’s rate: 2,500,000 cycles of a scaled 2.5 GHz guest are 1 ms', () => {
    const sim = new X86Sim({ tscKhz: 3_000_000 });
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 2_500_000).ret).toBe(0);
    sim.ioctl('KVM_CREATE_VCPU', 0);
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.advance(5n * MS);
    deadline(sim, rdtsc(sim) + 2_500_000n);
    expect(sim.vm.vcpus[0]!.tscDeadlineFiresAt).toBe(sim.t + MS);
  });

  it('a deadline already passed expires at once; zero disarms', () => {
    const sim = running();
    deadline(sim, rdtsc(sim) - 1n);
    expect(sim.vm.vcpus[0]!.tscDeadlineFiresAt).toBe(sim.t);
    deadline(sim, 0n);
    expect(sim.vm.vcpus[0]!.tscDeadlineFiresAt).toBeNull();
    expect(sim.vm.vcpus[0]!.tscDeadline).toBe(0n);
  });

  it('a host TSC write after arming does not move the armed expiry (it was computed when the MSR was written)', () => {
    const sim = running();
    deadline(sim, rdtsc(sim) + 30_000_000n); // 10 ms
    const armed = sim.vm.vcpus[0]!.tscDeadlineFiresAt;
    sim.pause(0);
    expect(sim.ioctl('KVM_SET_MSRS', { entries: [{ index: MSRS.MSR_IA32_TSC, data: 0n }] }, 0).ret).toBe(1);
    expect(sim.vm.vcpus[0]!.tscDeadlineFiresAt).toBe(armed);
  });
});
