// The kernel's own KVM selftests (tools/testing/selftests/kvm), ported step by step against the
// emulated kernel, asserting what the kernel's versions assert.
import { describe, expect, it } from 'vitest';
import { KVM_CLOCK_HOST_TSC, KVM_CLOCK_REALTIME, MSRS } from '../../kvm/uapi.js';
import { sampleHost } from '../../kvm/host.js';
import { u64 } from '../../kvm/u64.js';
import { X86Sim } from './sim.js';

const NSEC_PER_SEC = 1_000_000_000n;
const US = 1_000n;

describe('kvm_clock_test', () => {
  const cases = [
    { base: 0n, realtimeOffset: 0n },
    { base: 180n * NSEC_PER_SEC, realtimeOffset: 0n },
    { base: 0n, realtimeOffset: -180n * NSEC_PER_SEC },
    { base: 0n, realtimeOffset: 180n * NSEC_PER_SEC },
  ];

  it('KVM_CAP_ADJUST_CLOCK advertises KVM_CLOCK_REALTIME', () => {
    const sim = new X86Sim();
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_ADJUST_CLOCK').ret & KVM_CLOCK_REALTIME).toBe(KVM_CLOCK_REALTIME);
  });

  it.each(cases)('SET_CLOCK base=$base realtime offset=$realtimeOffset: start <= guest kvmclock <= end', ({ base, realtimeOffset }) => {
    const sim = new X86Sim({ initialCounter: 123_456_789_000n });
    sim.advance(5n * NSEC_PER_SEC);
    expect(sim.ioctl('KVM_CREATE_VCPU', 0).ret).toBe(0);
    sim.ioctl('KVM_RUN', undefined, 0);
    // guest: wrmsr(MSR_KVM_SYSTEM_TIME_NEW, gpa | KVM_MSR_ENABLED)
    sim.guest(0, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: 0x10000n | 1n });
    sim.pause(0);
    sim.advance(10n * US);

    const arg: Record<string, bigint | number> = { clock: base };
    if (realtimeOffset !== 0n) {
      arg.flags = KVM_CLOCK_REALTIME;
      arg.realtime = sampleHost(sim.host, sim.t).realNs + realtimeOffset;
    }
    expect(sim.ioctl('KVM_SET_CLOCK', arg)).toEqual({ ret: 0 });
    sim.advance(3n * US);
    const start = sim.ioctl('KVM_GET_CLOCK').out as { clock: bigint; flags: number };
    sim.advance(7n * US);
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.advance(2n * US);
    const g = sim.guest(0, 'kvmclock').value!;
    sim.pause(0);
    sim.advance(5n * US);
    const end = sim.ioctl('KVM_GET_CLOCK').out as { clock: bigint; flags: number };

    for (const d of [start, end]) expect(d.flags & (KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)).toBe(KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC);
    expect(start.clock <= g && g <= end.clock).toBe(true);
    // What KVM did with the request: a realtime in the past adds the elapsed 180 s; one in the future adds nothing.
    const expected = realtimeOffset < 0n ? base - realtimeOffset : base;
    expect(start.clock - expected).toBeGreaterThanOrEqual(0n);
    expect(start.clock - expected).toBeLessThan(10n * US);
  });
});

describe('system_counter_offset_test', () => {
  const offsets = [0n, 180n * NSEC_PER_SEC, u64(-180n * NSEC_PER_SEC)];

  it('KVM_HAS_DEVICE_ATTR(KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET) succeeds', () => {
    const sim = new X86Sim();
    sim.ioctl('KVM_CREATE_VCPU', 0);
    expect(sim.ioctl('KVM_HAS_DEVICE_ATTR', { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET' }, 0)).toEqual({ ret: 0 });
  });

  it.each(offsets)('offset %s: host rdtsc + offset brackets the guest rdtsc', (offset) => {
    const sim = new X86Sim({ initialCounter: 1_000_000_000_000n });
    sim.ioctl('KVM_CREATE_VCPU', 0);
    sim.advance(1_000n);
    expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { group: 0, attr: 0, value: offset }, 0)).toEqual({ ret: 0 });
    const start = u64(sim.hostTsc() + offset);
    sim.advance(500n);
    sim.ioctl('KVM_RUN', undefined, 0);
    const g = sim.guest(0, 'rdtsc').value!;
    expect(g).toBe(u64(sim.hostTsc() + offset)); // no scaling: exactly host + offset
    sim.advance(500n);
    const end = u64(sim.hostTsc() + offset);
    expect(start <= g && g <= end).toBe(true);
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', { group: 0, attr: 0 }, 0).out).toEqual({ value: offset });
  });
});

describe('tsc_scaling_sync', () => {
  const NR_TEST_VCPUS = 20;
  const TEST_TSC_KHZ = 2_345_678;
  const TEST_TSC_OFFSET = 200_000_000n;

  function run(profile: string) {
    const sim = new X86Sim({ tscKhz: 2_000_000, initialCounter: 7_777_777_777n }, profile);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_VM_TSC_CONTROL').ret).toBe(1);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', TEST_TSC_KHZ)).toEqual({ ret: 0 });
    // Each thread creates its vCPU under a lock; the first also writes its TSC from the host.
    for (let id = 0; id < NR_TEST_VCPUS; id++) {
      sim.advance(37_000n);
      expect(sim.ioctl('KVM_CREATE_VCPU', id).ret).toBe(0);
      if (id === 0) {
        expect(sim.ioctl('KVM_SET_MSRS', { entries: [{ index: MSRS.MSR_IA32_TSC, data: TEST_TSC_OFFSET }] }, 0).ret).toBe(1);
      }
    }
    for (let id = 0; id < NR_TEST_VCPUS; id++) sim.ioctl('KVM_RUN', undefined, id);
    // The guests publish their TSC into one shared word for 5 s; nobody may ever see it go back.
    let tscSync = 0n;
    let failures = 0;
    const start = sim.guest(0, 'rdtsc').value!;
    let local = start;
    while (local - start < 5000n * BigInt(TEST_TSC_KHZ)) {
      for (let id = 0; id < NR_TEST_VCPUS; id++) {
        sim.advance(211_000n);
        local = sim.guest(id, 'rdtsc').value!;
        if (local < tscSync) failures++;
        tscSync = local;
      }
    }
    return { sim, failures, start };
  }

  it('linux-6.18: no vCPU ever reads the shared TSC going backwards, and the host write is kept', () => {
    const { sim, failures, start } = run('linux-6.18');
    expect(failures).toBe(0);
    expect(sim.vm.useMasterClock).toBe(true);
    expect(new Set(sim.vm.vcpus.map((v) => v.l1TscOffset)).size).toBe(1);
    // 200e6 cycles plus ~0.74 ms of creating vCPUs at 2.345678 GHz
    expect(start > TEST_TSC_OFFSET && start < TEST_TSC_OFFSET + 2_000_000n).toBe(true);
  });

  it('linux-6.6: equally in sync, but the first host write is snapped to the creation generation', () => {
    const { failures, start } = run('linux-6.6');
    expect(failures).toBe(0);
    expect(start < TEST_TSC_OFFSET).toBe(true);
  });
});

describe('tsc_msrs_test', () => {
  const UNITY = 1n << 30n;
  const HOST_ADJUST = 64n * UNITY;
  const GUEST_STEP = 4n * UNITY;
  const ROUND = (x: bigint) => u64(x + UNITY / 2n) & u64(-UNITY);

  it('guest and host writes of IA32_TSC and IA32_TSC_ADJUST', () => {
    const sim = new X86Sim({ initialCounter: 0n });
    sim.ioctl('KVM_CREATE_VCPU', 0);
    const host = (index: number) => (sim.ioctl('KVM_GET_MSRS', { indices: [index] }, 0).out as { entries: { data: bigint }[] }).entries[0]!.data;
    const hostSet = (index: number, data: bigint) => expect(sim.ioctl('KVM_SET_MSRS', { entries: [{ index, data }] }, 0).ret).toBe(1);
    const guest = (msr: number) => sim.guest(0, 'rdmsr', { msr }).value!;
    const { MSR_IA32_TSC: TSC, MSR_IA32_TSC_ADJUST: ADJ } = MSRS;
    const both = (tsc: bigint, adj: bigint, who: 'host' | 'guest') => {
      const read = who === 'host' ? host : guest;
      expect(ROUND(read(TSC))).toBe(ROUND(tsc));
      expect(ROUND(read(ADJ))).toBe(ROUND(adj));
    };

    both(0n, 0n, 'host');
    sim.ioctl('KVM_RUN', undefined, 0);
    both(0n, 0n, 'guest');
    // Guest: TSC write moves TSC_ADJUST by the same delta.
    sim.guest(0, 'wrmsr', { msr: TSC, value: GUEST_STEP });
    both(GUEST_STEP, GUEST_STEP, 'guest');
    sim.pause(0);
    both(GUEST_STEP, GUEST_STEP, 'host');
    // Guest: TSC_ADJUST write moves the TSC.
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.guest(0, 'wrmsr', { msr: ADJ, value: 2n * GUEST_STEP });
    both(2n * GUEST_STEP, 2n * GUEST_STEP, 'guest');
    sim.pause(0);
    both(2n * GUEST_STEP, 2n * GUEST_STEP, 'host');
    // Host: a TSC write leaves TSC_ADJUST alone.
    hostSet(TSC, HOST_ADJUST + 2n * GUEST_STEP);
    both(HOST_ADJUST + 2n * GUEST_STEP, 2n * GUEST_STEP, 'host');
    sim.ioctl('KVM_RUN', undefined, 0);
    both(HOST_ADJUST + 2n * GUEST_STEP, 2n * GUEST_STEP, 'guest');
    sim.pause(0);
    // Host: a TSC_ADJUST write leaves the TSC alone, and reads back exactly.
    hostSet(ADJ, UNITY * 123456n);
    expect(ROUND(host(TSC))).toBe(ROUND(HOST_ADJUST + 2n * GUEST_STEP));
    expect(host(ADJ)).toBe(UNITY * 123456n);
    hostSet(ADJ, 2n * GUEST_STEP);
    both(HOST_ADJUST + 2n * GUEST_STEP, 2n * GUEST_STEP, 'host');
    // Guest: TSC_ADJUST write after the host moved the TSC.
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.guest(0, 'wrmsr', { msr: ADJ, value: 3n * GUEST_STEP });
    both(HOST_ADJUST + 3n * GUEST_STEP, 3n * GUEST_STEP, 'guest');
    sim.pause(0);
    both(HOST_ADJUST + 3n * GUEST_STEP, 3n * GUEST_STEP, 'host');
    // Guest: TSC write; TSC_ADJUST ends at 4·STEP − HOST_ADJUST (negative, as a u64).
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.guest(0, 'wrmsr', { msr: TSC, value: 4n * GUEST_STEP });
    both(4n * GUEST_STEP, u64(4n * GUEST_STEP - HOST_ADJUST), 'guest');
    sim.pause(0);
    both(4n * GUEST_STEP, u64(4n * GUEST_STEP - HOST_ADJUST), 'host');
  });
});
