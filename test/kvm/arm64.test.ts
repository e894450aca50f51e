// The arm64 guest counters through the emulated kernel, per profile. The host counts at 25 MHz
// (CNTFRQ 25_000_000) from 0, so the host counter is t / 40 ns: 1 s = 25_000_000 ticks,
// 2 µs = 50 ticks, and at t = 10 s it reads 250_000_000.
import { describe, expect, it } from 'vitest';
import { KvmUsageError, type UsageErrorCode } from '../../kvm/errors.js';
import { ARM64_REGS, ATTR_GROUPS, arm64SysReg } from '../../kvm/uapi.js';
import { copyTimerIndices } from '../../kvm/arm64/timer.js';
import { Arm64Sim } from './arm64-sim.js';

const SEC = 1_000_000_000n;
const US = 1_000n;
const TICKS_PER_SEC = 25_000_000n;
const TWO64 = 1n << 64n;

const ALL_PROFILES = ['linux-5.15', 'arm64-offset-v8', 'linux-6.1', 'linux-6.6', 'linux-6.18', 'clock-cleanup-v6'];
const PRE_6_4 = ['linux-5.15', 'linux-6.1'];
const POST_6_4 = ['linux-6.6', 'linux-6.18', 'clock-cleanup-v6'];

const PHYS_OFFSET = { group: 'KVM_ARM_VCPU_TIMER_CTRL', attr: 'KVM_ARM_VCPU_TIMER_PHYS_OFFSET' };

/** A sim at t = 10 s (host counter 250_000_000) with vCPUs created there. */
function simAt10s(profile: string, vcpus: number[], spec: { ecv?: boolean } = {}): Arm64Sim {
  const sim = new Arm64Sim(profile, spec);
  sim.advance(10n * SEC);
  for (const id of vcpus) expect(sim.ioctl('KVM_CREATE_VCPU', id)).toEqual({ ret: 0 });
  return sim;
}

function expectUsageError(sim: Arm64Sim, fn: () => unknown, code: UsageErrorCode, field: string): void {
  const before = structuredClone(sim.vm);
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(KvmUsageError);
  expect((thrown as KvmUsageError).code).toBe(code);
  expect((thrown as KvmUsageError).field).toBe(field);
  expect(sim.vm).toEqual(before);
}

describe('vCPU creation restarts the virtual counter of the whole VM', () => {
  it.each(ALL_PROFILES)('%s', (profile) => {
    const sim = new Arm64Sim(profile);
    sim.advance(5n * SEC); // host 125_000_000
    sim.ioctl('KVM_CREATE_VCPU', 0);
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'cntvct').value).toBe(0n);
    sim.advance(SEC);
    expect(sim.guest(0, 'cntvct').value).toBe(TICKS_PER_SEC);

    // voffset = host now (150_000_000): vCPU 0's counter, running all along, drops back to 0 too
    expect(sim.ioctl('KVM_CREATE_VCPU', 1)).toEqual({ ret: 0 });
    sim.ioctl('KVM_RUN', undefined, 1);
    expect(sim.guest(0, 'cntvct').value).toBe(0n);
    expect(sim.guest(1, 'cntvct').value).toBe(0n);
    expect(sim.getReg(0, 'KVM_REG_ARM_TIMER_CNT')).toBe(0n);
    sim.advance(SEC);
    expect(sim.guest(0, 'cntvct').value).toBe(TICKS_PER_SEC);
    expect(sim.guest(1, 'cntvct').value).toBe(TICKS_PER_SEC);
    // Nothing offsets the physical counter here: it is the host's (175_000_000).
    expect(sim.guest(1, 'cntpct')).toEqual({ value: 175_000_000n, trapped: false });
    expect(sim.guest(0, 'cntfrq').value).toBe(25_000_000n);
  });

  it.each(['linux-5.15', 'linux-6.18'])(
    '%s: even a KVM_CREATE_VCPU refused with EEXIST restarts it (kvm_timer_vcpu_init runs before the id check)',
    (profile) => {
      const sim = new Arm64Sim(profile);
      sim.advance(5n * SEC);
      sim.ioctl('KVM_CREATE_VCPU', 0);
      sim.ioctl('KVM_RUN', undefined, 0);
      sim.advance(SEC);
      expect(sim.guest(0, 'cntvct').value).toBe(TICKS_PER_SEC);
      expect(sim.ioctl('KVM_CREATE_VCPU', 0)).toEqual({ ret: -1, errno: 'EEXIST' });
      expect(sim.vm.vcpus).toHaveLength(1);
      expect(sim.guest(0, 'cntvct').value).toBe(0n);
    },
  );

  it('vCPU ids stop at 511 (arm64 KVM_MAX_VCPU_IDS = KVM_MAX_VCPUS = 512)', () => {
    const sim = new Arm64Sim();
    expect(sim.ioctl('KVM_CREATE_VCPU', 512)).toEqual({ ret: -1, errno: 'EINVAL' });
    expect(sim.ioctl('KVM_CREATE_VCPU', 511)).toEqual({ ret: 0 });
  });
});

describe.each(PRE_6_4)('%s: one CNTVOFF for the VM, no physical offset', (profile) => {
  it('a TIMER_CNT write through vCPU 1 moves vCPU 0 (last writer wins)', () => {
    const sim = simAt10s(profile, [0, 1]);
    // voffset = 250_000_000 − 1_000_000 = 249_000_000
    expect(sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_CNT', value: 1_000_000n }, 1)).toEqual({ ret: 0 });
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.advance(SEC);
    expect(sim.guest(0, 'cntvct').value).toBe(1_000_000n + TICKS_PER_SEC);
    sim.pause(0);
    sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_CNT', value: 7n }, 0);
    expect(sim.getReg(1, 'KVM_REG_ARM_TIMER_CNT')).toBe(7n);
    // The guest physical counter stays the host's: 275_000_000.
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: 275_000_000n, trapped: false });
  });

  it('PTIMER registers are not timer registers yet: they fall to the sys_reg table (ENOENT)', () => {
    const sim = simAt10s(profile, [0]);
    for (const id of ['KVM_REG_ARM_PTIMER_CNT', 'KVM_REG_ARM_PTIMER_CTL', 'KVM_REG_ARM_PTIMER_CVAL']) {
      expect(sim.ioctl('KVM_SET_ONE_REG', { id, value: 5n }, 0)).toEqual({ ret: -1, errno: 'ENOENT' });
      expect(sim.ioctl('KVM_GET_ONE_REG', { id }, 0)).toEqual({ ret: -1, errno: 'ENOENT' });
    }
    expect(sim.ioctl('KVM_GET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_OFFSET' }, 0)).toEqual({ ret: -1, errno: 'ENOENT' });
    expect(sim.vm.poffset).toBe(0n);
  });

  it("no KVM_ARM_SET_COUNTER_OFFSET: the unknown VM ioctl gets kvm_arch_vm_ioctl()'s -EINVAL; the cap reads 0", () => {
    const sim = simAt10s(profile, [0]);
    expect(sim.ioctl('KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: 0n })).toEqual({ ret: -1, errno: 'EINVAL' });
    expect(sim.vm.counterOffsetUsed).toBe(false);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_COUNTER_OFFSET').ret).toBe(0);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_ARM_VTIMER_OFFSET').ret).toBe(0);
  });
});

describe.each(POST_6_4)('%s: VM-wide voffset and poffset', (profile) => {
  it('PTIMER_CNT sets the physical offset, for every vCPU', () => {
    const sim = simAt10s(profile, [0, 1]);
    // poffset = 250_000_000 − 1_000
    expect(sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_PTIMER_CNT', value: 1_000n }, 1)).toEqual({ ret: 0 });
    sim.ioctl('KVM_RUN', undefined, 0);
    sim.advance(SEC);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: 1_000n + TICKS_PER_SEC, trapped: false }); // CNTPOFF (ecv) applies it
    expect(sim.getReg(1, 'KVM_REG_ARM_PTIMER_CNT')).toBe(1_000n + TICKS_PER_SEC);
    expect(sim.guest(0, 'cntvct').value).toBe(TICKS_PER_SEC); // the virtual one is untouched
  });

  it('V and P restored by value one after the other drift apart by the time between the writes', () => {
    const sim = simAt10s(profile, [0]);
    const X = 1_000_000_000n;
    sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_CNT', value: X }, 0); // host 250_000_000
    sim.advance(2n * US); // 50 ticks later
    sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_PTIMER_CNT', value: X }, 0); // host 250_000_050
    sim.ioctl('KVM_RUN', undefined, 0);
    const v = sim.guest(0, 'cntvct').value;
    const p = sim.guest(0, 'cntpct').value;
    expect([v, p]).toEqual([X + 50n, X]);
    expect(v - p).toBe(50n);
  });

  it('KVM_ARM_SET_COUNTER_OFFSET: EINVAL, EBUSY, then one offset for both counters, kept for later vCPUs, ONE_REG counter writes ignored', () => {
    const sim = simAt10s(profile, [0]);
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_COUNTER_OFFSET').ret).toBe(1);
    expect(sim.ioctl('KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: 0n, reserved: 1n })).toEqual({ ret: -1, errno: 'EINVAL' });
    const OFF = 200_000_000n;
    expect(sim.ioctl('KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: OFF })).toEqual({ ret: -1, errno: 'EBUSY' });
    expect(sim.vm.counterOffsetUsed).toBe(false);
    expect(sim.guest(0, 'cntvct').value).toBe(0n);

    sim.pause(0);
    expect(sim.ioctl('KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: OFF, reserved: 0n })).toEqual({ ret: 0 });
    sim.ioctl('KVM_RUN', undefined, 0);
    // both = 250_000_000 − 200_000_000
    expect(sim.guest(0, 'cntvct').value).toBe(50_000_000n);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: 50_000_000n, trapped: false });

    sim.advance(SEC);
    expect(sim.ioctl('KVM_CREATE_VCPU', 1)).toEqual({ ret: 0 }); // no restart any more
    sim.ioctl('KVM_RUN', undefined, 1);
    for (const id of [0, 1]) {
      expect(sim.guest(id, 'cntvct').value).toBe(75_000_000n);
      expect(sim.guest(id, 'cntpct').value).toBe(75_000_000n);
    }
    sim.pause(1);
    expect(sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_CNT', value: 5n }, 1)).toEqual({ ret: 0 });
    expect(sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_PTIMER_CNT', value: 5n }, 1)).toEqual({ ret: 0 });
    expect(sim.getReg(1, 'KVM_REG_ARM_TIMER_CNT')).toBe(75_000_000n);
    expect(sim.getReg(1, 'KVM_REG_ARM_PTIMER_CNT')).toBe(75_000_000n);
    expect(sim.guest(0, 'cntvct').value).toBe(75_000_000n);
  });

  it('KVM_ARM_SET_COUNTER_OFFSET before any vCPU exists, and again later; a u64-wrapped offset runs the guest ahead', () => {
    const sim = new Arm64Sim(profile);
    sim.advance(10n * SEC);
    expect(sim.ioctl('KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: 200_000_000n })).toEqual({ ret: 0 });
    sim.ioctl('KVM_CREATE_VCPU', 0);
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'cntvct').value).toBe(50_000_000n); // not restarted at 0 by the creation
    sim.pause(0);
    // (u64)−180 s: the guest reads host + 180 s = 250_000_000 + 4_500_000_000
    const minus180s = TWO64 - 180n * TICKS_PER_SEC;
    expect(sim.ioctl('KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: minus180s.toString() })).toEqual({ ret: 0 });
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'cntvct').value).toBe(4_750_000_000n);
    expect(sim.guest(0, 'cntpct').value).toBe(4_750_000_000n);
  });

  it('without CNTPOFF (no ECV) a non-zero physical offset traps guest CNTPCT reads, counted; a zero one does not', () => {
    const sim = simAt10s(profile, [0], { ecv: false });
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: 250_000_000n, trapped: false });
    sim.pause(0);
    sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_PTIMER_CNT', value: 0n }, 0); // poffset = 250_000_000
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: 0n, trapped: true });
    sim.advance(SEC);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: TICKS_PER_SEC, trapped: true });
    expect(sim.guest(0, 'cntvct')).toEqual({ value: 0n + TICKS_PER_SEC }); // CNTVOFF is always in hardware
    expect(sim.vcpu(0).trappedPhysReads).toBe(2);
  });
});

describe('the UAPI ids decode as the kernel routes them (get-reg-list)', () => {
  it('the timer registers each kernel lists, in copy_timer_indices() order', () => {
    const list = (profile: string) => {
      const sim = new Arm64Sim(profile);
      return copyTimerIndices(sim.ctx(), sim.vm).map((id) => `0x${id.toString(16).toUpperCase()}`);
    };
    const V = ['0x603000000013DF19', '0x603000000013DF1A', '0x603000000013DF02'];
    const P = ['0x603000000013DF11', '0x603000000013DF01', '0x603000000013DF12'];
    expect(list('linux-5.15')).toEqual(V);
    expect(list('linux-6.1')).toEqual(V);
    expect(list('linux-6.6')).toEqual([...V, ...P]);
    expect(list('linux-6.18')).toEqual([...V, ...P]);
    expect(list('arm64-offset-v8')).toEqual([...V, '0x603000000013E703']); // + TIMER_OFFSET after the opt-in
  });

  it.each(['linux-5.15', 'linux-6.18'])("%s: TIMER_CNT (CNTV_CVAL_EL0's encoding) is the counter, TIMER_CVAL (CNTVCT_EL0's) the compare value", (profile) => {
    const sim = simAt10s(profile, [0]);
    expect(ARM64_REGS.KVM_REG_ARM_TIMER_CNT).toBe(0x603000000013df1an);
    expect(ARM64_REGS.KVM_REG_ARM_TIMER_CVAL).toBe(0x603000000013df02n);
    sim.advance(SEC);
    // the raw id as hex, as decimal, as bigint: all the counter (25_000_000 ticks since creation)
    expect(sim.getReg(0, '0x603000000013DF1A')).toBe(TICKS_PER_SEC);
    expect(sim.getReg(0, 0x603000000013df1an.toString())).toBe(TICKS_PER_SEC);
    expect(sim.getReg(0, 0x603000000013df1an)).toBe(TICKS_PER_SEC);
    // the raw CNTVCT_EL0 encoding writes the compare value and leaves the counter alone
    expect(sim.ioctl('KVM_SET_ONE_REG', { id: '0x603000000013DF02', value: 12_345n }, 0)).toEqual({ ret: 0 });
    expect(sim.vcpu(0).cntvCval).toBe(12_345n);
    expect(sim.getReg(0, 'KVM_REG_ARM_TIMER_CVAL')).toBe(12_345n);
    expect(sim.getReg(0, 'KVM_REG_ARM_TIMER_CNT')).toBe(TICKS_PER_SEC);
  });

  it("an id outside the arm64 space is EINVAL; a sysreg the model does not emulate is the caller's mistake", () => {
    const sim = simAt10s('linux-6.18', [0]);
    expect(sim.ioctl('KVM_GET_ONE_REG', { id: '0x203000000013DF1A' }, 0)).toEqual({ ret: -1, errno: 'EINVAL' });
    const sctlr = arm64SysReg(3, 0, 1, 0, 0);
    expectUsageError(sim, () => sim.ioctl('KVM_SET_ONE_REG', { id: sctlr, value: 0n }, 0), 'invalid_argument', 'arg.id');
    expectUsageError(sim, () => sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_CNT' }, 0), 'invalid_argument', 'arg.value');
    expectUsageError(sim, () => sim.ioctl('KVM_GET_ONE_REG', { id: 'CNTVCT_EL0' }, 0), 'invalid_argument', 'arg.id');
  });

  it('CTL: ISTATUS is not stored, and reads back set once the counter reaches CVAL', () => {
    const sim = simAt10s('linux-6.18', [0]); // counter 0
    sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_CVAL', value: TICKS_PER_SEC }, 0);
    sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_CTL', value: 0b101n }, 0); // ENABLE | ISTATUS
    expect(sim.vcpu(0).cntvCtl).toBe(1n);
    expect(sim.getReg(0, 'KVM_REG_ARM_TIMER_CTL')).toBe(1n);
    sim.advance(SEC);
    expect(sim.getReg(0, 'KVM_REG_ARM_TIMER_CTL')).toBe(0b101n);
  });
});

describe('arm64-offset-v8 (the 2021 proposal)', () => {
  const profile = 'arm64-offset-v8';

  it('TIMER_OFFSET and PHYS_OFFSET are broadcast; virtual = host − TIMER_OFFSET − PHYS_OFFSET; without ECV physical reads trap', () => {
    const sim = simAt10s(profile, [0, 1], { ecv: false });
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_ARM_VTIMER_OFFSET').ret).toBe(1);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_COUNTER_OFFSET').ret).toBe(0);
    expect(sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_OFFSET', value: 40_000_000n }, 0)).toEqual({ ret: 0 });
    expect(sim.getReg(1, 'KVM_REG_ARM_TIMER_OFFSET')).toBe(40_000_000n);
    expect(sim.ioctl('KVM_HAS_DEVICE_ATTR', PHYS_OFFSET, 1)).toEqual({ ret: 0 });
    expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { ...PHYS_OFFSET, value: 100_000_000n }, 1)).toEqual({ ret: 0 });
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', PHYS_OFFSET, 0)).toEqual({ ret: 0, out: { value: 100_000_000n } });
    // TIMER_OFFSET is relative to the guest physical counter, so it does not move with PHYS_OFFSET
    expect(sim.getReg(0, 'KVM_REG_ARM_TIMER_OFFSET')).toBe(40_000_000n);

    for (const id of [0, 1]) sim.ioctl('KVM_RUN', undefined, id);
    for (const id of [0, 1]) {
      expect(sim.guest(id, 'cntpct')).toEqual({ value: 150_000_000n, trapped: true }); // 250M − 100M
      expect(sim.guest(id, 'cntvct').value).toBe(110_000_000n); // 250M − 40M − 100M
    }
    expect(sim.getReg(0, 'KVM_REG_ARM_TIMER_CNT')).toBe(110_000_000n);
    sim.guest(0, 'cntpct');
    expect([sim.vcpu(0).trappedPhysReads, sim.vcpu(1).trappedPhysReads]).toEqual([2, 1]);
    // still a 5.15 base: no PTIMER ONE_REG, no VM-wide offset ioctl
    expect(sim.ioctl('KVM_GET_ONE_REG', { id: 'KVM_REG_ARM_PTIMER_CNT' }, 0)).toEqual({ ret: -1, errno: 'ENOENT' });
  });

  it('with ECV (CNTPOFF) the physical offset is applied in hardware: no traps', () => {
    const sim = simAt10s(profile, [0], { ecv: true });
    sim.ioctl('KVM_SET_DEVICE_ATTR', { ...PHYS_OFFSET, value: 100_000_000n }, 0);
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: 150_000_000n, trapped: false });
    expect(sim.vcpu(0).trappedPhysReads).toBe(0);
  });

  it('a zero physical offset is not trapped even without ECV', () => {
    const sim = simAt10s(profile, [0], { ecv: false });
    sim.ioctl('KVM_RUN', undefined, 0);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: 250_000_000n, trapped: false });
  });

  it("the series' own gaps: a vCPU created later misses the physical offset; TIMER_CNT mixed with it reads back value − P", () => {
    const sim = simAt10s(profile, [0], { ecv: false });
    sim.ioctl('KVM_SET_DEVICE_ATTR', { ...PHYS_OFFSET, value: 100_000_000n }, 0);
    sim.advance(SEC); // host 275_000_000
    sim.ioctl('KVM_CREATE_VCPU', 1); // CNTVOFF = 275_000_000 on both; only vCPU 1's physical offset is 0
    for (const id of [0, 1]) sim.ioctl('KVM_RUN', undefined, id);
    expect(sim.guest(0, 'cntvct').value).toBe(TWO64 - 100_000_000n);
    expect(sim.guest(1, 'cntvct').value).toBe(0n);
    expect(sim.guest(0, 'cntpct')).toEqual({ value: 175_000_000n, trapped: true });
    expect(sim.guest(1, 'cntpct')).toEqual({ value: 275_000_000n, trapped: false });
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', PHYS_OFFSET, 1)).toEqual({ ret: 0, out: { value: 0n } });

    sim.pause(0);
    sim.ioctl('KVM_SET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_CNT', value: 1_000_000_000n }, 0);
    expect(sim.getReg(0, 'KVM_REG_ARM_TIMER_CNT')).toBe(900_000_000n);
    expect(sim.getReg(1, 'KVM_REG_ARM_TIMER_CNT')).toBe(1_000_000_000n);
  });

  it('KVM_REG_ARM_TIMER_OFFSET needs the VM opt-in (KVM_CAP_ARM_VTIMER_OFFSET), taken as done at VM creation', () => {
    const sim = simAt10s(profile, [0]);
    expect(sim.vm.timerOffsetEnabled).toBe(true);
    sim.vm.timerOffsetEnabled = false; // a VMM that never enabled the capability
    expect(sim.ioctl('KVM_GET_ONE_REG', { id: 'KVM_REG_ARM_TIMER_OFFSET' }, 0)).toEqual({ ret: -1, errno: 'ENOENT' });
    expect(copyTimerIndices(sim.ctx(), sim.vm)).toHaveLength(3);
  });
});

describe('the rest of the arm64 ioctl surface', () => {
  it('capabilities: ONE_REG and VCPU_ATTRIBUTES yes, the x86 clock caps no', () => {
    const sim = new Arm64Sim('linux-6.18');
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_ONE_REG').ret).toBe(1);
    expect(sim.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_VCPU_ATTRIBUTES').ret).toBe(1);
    for (const cap of [
      'KVM_CAP_ADJUST_CLOCK',
      'KVM_CAP_TSC_CONTROL',
      'KVM_CAP_VM_TSC_CONTROL',
      'KVM_CAP_GET_TSC_KHZ',
      'KVM_CAP_KVMCLOCK_CTRL',
      'KVM_CAP_TSC_DEADLINE_TIMER',
    ]) {
      expect(sim.ioctl('KVM_CHECK_EXTENSION', cap).ret, cap).toBe(0);
    }
  });

  it("x86 ioctls and ioctls on the wrong fd get arm64's -EINVAL defaults", () => {
    const sim = simAt10s('linux-6.18', [0]);
    for (const ioctl of ['KVM_GET_CLOCK', 'KVM_GET_TSC_KHZ', 'KVM_RUN', 'KVM_GET_ONE_REG']) {
      expect(sim.ioctl(ioctl, undefined), ioctl).toEqual({ ret: -1, errno: 'EINVAL' });
    }
    for (const ioctl of ['KVM_GET_MSRS', 'KVM_GET_TSC_KHZ', 'KVM_KVMCLOCK_CTRL', 'KVM_CHECK_EXTENSION', 'KVM_CREATE_VCPU', 'KVM_GET_CLOCK_GUEST']) {
      expect(sim.ioctl(ioctl, undefined, 0), ioctl).toEqual({ ret: -1, errno: 'EINVAL' });
    }
    expect(sim.ioctl('KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: 0n }, 0)).toEqual({ ret: -1, errno: 'EINVAL' });
  });

  it.each(['linux-5.15', 'linux-6.18'])('%s: timer attributes without the proposal: IRQ numbers only; PHYS_OFFSET does not exist', (profile) => {
    const sim = simAt10s(profile, [0]);
    expect(sim.ioctl('KVM_HAS_DEVICE_ATTR', { group: 'KVM_ARM_VCPU_TIMER_CTRL', attr: 0 }, 0)).toEqual({ ret: 0 });
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', { group: 'KVM_ARM_VCPU_TIMER_CTRL', attr: 1 }, 0)).toEqual({ ret: 0, out: { value: 30n } });
    expect(sim.ioctl('KVM_HAS_DEVICE_ATTR', PHYS_OFFSET, 0)).toEqual({ ret: -1, errno: 'ENXIO' });
    expect(sim.ioctl('KVM_GET_DEVICE_ATTR', PHYS_OFFSET, 0)).toEqual({ ret: -1, errno: 'ENXIO' });
    // kvm_arm_timer_set_attr() wants an in-kernel GIC before it looks at the attribute
    expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { ...PHYS_OFFSET, value: 1n }, 0)).toEqual({ ret: -1, errno: 'EINVAL' });
    // x86's KVM_VCPU_TSC_CTRL is group 0, arm64's PMU group: ENXIO on a vCPU without a PMU
    expect(sim.ioctl('KVM_HAS_DEVICE_ATTR', { group: ATTR_GROUPS.KVM_VCPU_TSC_CTRL, attr: 'KVM_VCPU_TSC_OFFSET' }, 0)).toEqual({ ret: -1, errno: 'ENXIO' });
  });

  it('guest reads need a vCPU in KVM_RUN; caller mistakes throw and change nothing', () => {
    const sim = simAt10s('linux-6.18', [0]);
    expectUsageError(sim, () => sim.guest(0, 'cntvct'), 'invalid_state', 'vcpu');
    sim.ioctl('KVM_RUN', undefined, 0);
    expectUsageError(sim, () => sim.guest(0, 'rdtsc'), 'invalid_argument', 'op');
    expectUsageError(sim, () => sim.guest(3, 'cntvct'), 'not_found', 'vcpu');
    expectUsageError(sim, () => sim.ioctl('KVM_ARM_SET_COUNTER_OFFSET', { reserved: 0n }), 'invalid_argument', 'arg.counter_offset');
    expectUsageError(sim, () => sim.ioctl('KVM_SET_DEVICE_ATTR', PHYS_OFFSET, 0), 'invalid_argument', 'arg.value');
  });
});
