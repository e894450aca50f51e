// A caller's mistake (a malformed request, a vCPU that does not exist, a guest instruction on a
// vCPU that is not running) throws a KvmUsageError naming the problem and changes nothing; a kernel
// refusal is a result carrying an errno instead.
import { describe, expect, it } from 'vitest';
import { KvmUsageError, type UsageErrorCode } from '../../kvm/errors.js';
import { X86Sim } from './sim.js';

const KVMCLOCK_ENABLE = 0x3000n | 1n;
const TWO64 = 1n << 64n;

/**
 * A VM with something to lose: two vCPUs, vCPU 0 in KVM_RUN with kvmclock enabled, vCPU 1 paused with
 * a clock update pending (so an ioctl that went on to kick running vCPUs or serve requests would show).
 */
function busyVm(profile = 'linux-6.18'): X86Sim {
  const sim = new X86Sim({ initialCounter: 77_000_000_000n }, profile);
  sim.advance(1_000_000n);
  sim.ioctl('KVM_CREATE_VCPU', 0);
  sim.ioctl('KVM_CREATE_VCPU', 1);
  sim.ioctl('KVM_RUN', undefined, 0);
  sim.guest(0, 'wrmsr', { msr: 'MSR_KVM_SYSTEM_TIME_NEW', value: KVMCLOCK_ENABLE });
  sim.advance(5_000n);
  sim.ioctl('KVM_SET_CLOCK', { clock: 1_000_000n }); // requests a clock update on vCPU 1 too
  sim.advance(5_000n);
  expect(sim.vm.vcpus[1]!.requests.clockUpdate).toBe(true);
  return sim;
}

/** Run `fn`, which must throw a KvmUsageError with this code and field, and must leave the VM and host as they were. */
function expectUsageError(sim: X86Sim, fn: () => unknown, code: UsageErrorCode, field: string): KvmUsageError {
  const vm = structuredClone(sim.vm);
  const host = structuredClone(sim.host);
  let thrown: unknown;
  let returned: unknown;
  try {
    returned = fn();
  } catch (e) {
    thrown = e;
  }
  expect(returned, 'a usage error must be thrown, not returned as a result').toBeUndefined();
  expect(thrown).toBeInstanceOf(KvmUsageError);
  const err = thrown as KvmUsageError;
  expect({ code: err.code, field: err.field }).toEqual({ code, field });
  expect(err.message.startsWith(`${field}: `)).toBe(true);
  expect(sim.vm).toEqual(vm);
  expect(sim.host).toEqual(host);
  return err;
}

describe('bad ioctl requests throw KvmUsageError and change nothing', () => {
  const cases: { name: string; ioctl: unknown; arg?: unknown; vcpu?: number; code: UsageErrorCode; field: string; profile?: string }[] = [
    // the ioctl itself
    { name: 'unknown ioctl name', ioctl: 'KVM_GET_CLOCKS', code: 'invalid_argument', field: 'ioctl' },
    { name: 'unknown request number', ioctl: 0xdeadbeef, code: 'invalid_argument', field: 'ioctl' },
    { name: 'ioctl name of the wrong type', ioctl: { name: 'KVM_RUN' }, code: 'invalid_argument', field: 'ioctl' },
    // shapes
    { name: 'KVM_SET_CLOCK with a string for the struct', ioctl: 'KVM_SET_CLOCK', arg: 'now', code: 'invalid_argument', field: 'arg' },
    { name: 'KVM_SET_CLOCK with an array for the struct', ioctl: 'KVM_SET_CLOCK', arg: [1, 2], code: 'invalid_argument', field: 'arg' },
    {
      name: 'KVM_SET_MSRS entries not an array',
      ioctl: 'KVM_SET_MSRS',
      vcpu: 0,
      arg: { entries: { index: 16, data: 0 } },
      code: 'invalid_argument',
      field: 'arg.entries',
    },
    { name: 'KVM_GET_MSRS without indices', ioctl: 'KVM_GET_MSRS', vcpu: 0, arg: {}, code: 'invalid_argument', field: 'arg.indices' },
    {
      name: 'KVM_SET_DEVICE_ATTR without attr',
      ioctl: 'KVM_SET_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 0, value: 1 },
      code: 'invalid_argument',
      field: 'arg.attr',
    },
    {
      name: 'KVM_SET_DEVICE_ATTR without the value',
      ioctl: 'KVM_SET_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 0, attr: 0 },
      code: 'invalid_argument',
      field: 'arg.value',
    },
    // out of range
    {
      name: '65-bit offset (2^64)',
      ioctl: 'KVM_SET_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 0, attr: 0, value: TWO64 },
      code: 'invalid_argument',
      field: 'arg.value',
    },
    {
      name: '65-bit offset as a decimal string',
      ioctl: 'KVM_SET_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 0, attr: 0, value: '18446744073709551616' },
      code: 'invalid_argument',
      field: 'arg.value',
    },
    {
      name: 'offset below −2^63',
      ioctl: 'KVM_SET_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 0, attr: 0, value: -(1n << 63n) - 1n },
      code: 'invalid_argument',
      field: 'arg.value',
    },
    { name: 'kHz of 2^32 on a vCPU', ioctl: 'KVM_SET_TSC_KHZ', vcpu: 0, arg: 2 ** 32, code: 'invalid_argument', field: 'arg' },
    { name: 'kHz of 2^32 on the VM', ioctl: 'KVM_SET_TSC_KHZ', arg: 2 ** 32, code: 'invalid_argument', field: 'arg' },
    { name: 'negative kHz', ioctl: 'KVM_SET_TSC_KHZ', vcpu: 0, arg: -1, code: 'invalid_argument', field: 'arg' },
    { name: 'negative KVM_SET_CLOCK flags', ioctl: 'KVM_SET_CLOCK', arg: { clock: 0, flags: -1 }, code: 'invalid_argument', field: 'arg.flags' },
    {
      name: 'KVM_SET_CLOCK_GUEST shift outside s8',
      ioctl: 'KVM_SET_CLOCK_GUEST',
      vcpu: 0,
      profile: 'clock-cleanup-v6',
      arg: { tsc_timestamp: 0, system_time: 0, tsc_to_system_mul: 1, tsc_shift: 200 },
      code: 'invalid_argument',
      field: 'arg.tsc_shift',
    },
    {
      name: 'KVM_SET_CLOCK_GUEST mul above u32',
      ioctl: 'KVM_SET_CLOCK_GUEST',
      vcpu: 0,
      profile: 'clock-cleanup-v6',
      arg: { tsc_timestamp: 0, system_time: 0, tsc_to_system_mul: 2 ** 32, tsc_shift: 0 },
      code: 'invalid_argument',
      field: 'arg.tsc_to_system_mul',
    },
    // not integers
    { name: 'fractional kHz', ioctl: 'KVM_SET_TSC_KHZ', vcpu: 0, arg: 2_000_000.5, code: 'invalid_argument', field: 'arg' },
    { name: 'fractional clock', ioctl: 'KVM_SET_CLOCK', arg: { clock: 1.5 }, code: 'invalid_argument', field: 'arg.clock' },
    { name: 'clock above 2^53 as a JS number (not exact)', ioctl: 'KVM_SET_CLOCK', arg: { clock: 2 ** 60 }, code: 'invalid_argument', field: 'arg.clock' },
    { name: 'clock as a non-numeric string', ioctl: 'KVM_SET_CLOCK', arg: { clock: '12ns' }, code: 'invalid_argument', field: 'arg.clock' },
    {
      name: 'MSR data as a float string',
      ioctl: 'KVM_SET_MSRS',
      vcpu: 0,
      arg: { entries: [{ index: 16, data: '1.0' }] },
      code: 'invalid_argument',
      field: 'arg.entries.0.data',
    },
    { name: 'fractional vCPU id', ioctl: 'KVM_CREATE_VCPU', arg: 2.5, code: 'invalid_argument', field: 'arg' },
    // unknown names
    {
      name: 'unknown MSR name',
      ioctl: 'KVM_GET_MSRS',
      vcpu: 0,
      arg: { indices: ['MSR_IA32_TSC', 'MSR_IA32_TSX'] },
      code: 'invalid_argument',
      field: 'arg.indices.1',
    },
    {
      name: 'unknown MSR name in a later KVM_SET_MSRS entry (the first is not applied)',
      ioctl: 'KVM_SET_MSRS',
      vcpu: 0,
      arg: {
        entries: [
          { index: 'MSR_IA32_TSC', data: 5 },
          { index: 'MSR_TSC', data: 6 },
        ],
      },
      code: 'invalid_argument',
      field: 'arg.entries.1.index',
    },
    { name: 'unknown capability name', ioctl: 'KVM_CHECK_EXTENSION', arg: 'KVM_CAP_ADJUST_CLOCKS', code: 'invalid_argument', field: 'arg' },
    {
      name: 'unknown attribute name',
      ioctl: 'KVM_HAS_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSETS' },
      code: 'invalid_argument',
      field: 'arg.attr',
    },
    {
      name: 'unknown attribute group name',
      ioctl: 'KVM_GET_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 'KVM_VCPU_TSC', attr: 0 },
      code: 'invalid_argument',
      field: 'arg.group',
    },
    // vCPUs that do not exist
    { name: 'KVM_RUN on a vCPU that does not exist', ioctl: 'KVM_RUN', vcpu: 7, code: 'not_found', field: 'vcpu' },
    {
      name: 'a valid KVM_SET_DEVICE_ATTR on a vCPU that does not exist',
      ioctl: 'KVM_SET_DEVICE_ATTR',
      vcpu: 2,
      arg: { group: 0, attr: 0, value: 1 },
      code: 'not_found',
      field: 'vcpu',
    },
  ];

  it.each(cases)('$name → $code ($field)', ({ ioctl, arg, vcpu, code, field, profile }) => {
    const sim = busyVm(profile);
    if (vcpu !== undefined && vcpu < 2) sim.pause(vcpu);
    expectUsageError(sim, () => sim.ioctl(ioctl as string, arg, vcpu), code, field);
  });

  it('the unknown vCPU error lists the vCPUs that do exist', () => {
    const sim = busyVm();
    expect(expectUsageError(sim, () => sim.ioctl('KVM_RUN', undefined, 9), 'not_found', 'vcpu').message).toContain('0, 1');
  });
});

describe('bad guest operations throw KvmUsageError and change nothing', () => {
  const cases: { name: string; vcpu: number; op: string; msr?: unknown; value?: unknown; code: UsageErrorCode; field: string }[] = [
    { name: 'a vCPU that does not exist', vcpu: 4, op: 'rdtsc', code: 'not_found', field: 'vcpu' },
    { name: 'a vCPU that is not in KVM_RUN', vcpu: 1, op: 'rdtsc', code: 'invalid_state', field: 'vcpu' },
    { name: 'wrmsr on a vCPU that is not in KVM_RUN', vcpu: 1, op: 'wrmsr', msr: 'MSR_IA32_TSC', value: 1, code: 'invalid_state', field: 'vcpu' },
    { name: 'an unknown operation', vcpu: 0, op: 'rdtscp', code: 'invalid_argument', field: 'op' },
    { name: 'wrmsr of an unknown MSR name', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC_ADJUSTED', value: 1, code: 'invalid_argument', field: 'msr' },
    { name: 'rdmsr of an unknown MSR name', vcpu: 0, op: 'rdmsr', msr: 'IA32_TSC', code: 'invalid_argument', field: 'msr' },
    { name: 'wrmsr of a 65-bit value', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC', value: TWO64 + 5n, code: 'invalid_argument', field: 'value' },
    { name: 'wrmsr of a fractional value', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC_ADJUST', value: 0.5, code: 'invalid_argument', field: 'value' },
    { name: 'wrmsr without a value', vcpu: 0, op: 'wrmsr', msr: 'MSR_IA32_TSC_ADJUST', code: 'invalid_argument', field: 'value' },
  ];

  it.each(cases)('$name → $code ($field)', ({ vcpu, op, msr, value, code, field }) => {
    const sim = busyVm();
    expectUsageError(sim, () => sim.guest(vcpu, op, { msr, value }), code, field);
  });

  it('kvmclock read before the guest enabled kvmclock → invalid_state (op)', () => {
    const sim = new X86Sim();
    sim.ioctl('KVM_CREATE_VCPU', 0);
    sim.ioctl('KVM_RUN', undefined, 0);
    expectUsageError(sim, () => sim.guest(0, 'kvmclock'), 'invalid_state', 'op');
    expectUsageError(sim, () => sim.guest(0, 'wallclock'), 'invalid_state', 'op');
  });
});

describe('kernel refusals are results with an errno, not usage errors', () => {
  const cases: { name: string; ioctl: string; arg?: unknown; vcpu?: number; expected: unknown; profile?: string }[] = [
    { name: 'KVM_SET_CLOCK with a flag outside 0xE', ioctl: 'KVM_SET_CLOCK', arg: { clock: 0, flags: 0x10 }, expected: { ret: -1, errno: 'EINVAL' } },
    {
      name: 'KVM_SET_CLOCK with REALTIME on linux-5.15',
      ioctl: 'KVM_SET_CLOCK',
      arg: { clock: 0, flags: 4 },
      profile: 'linux-5.15',
      expected: { ret: -1, errno: 'EINVAL' },
    },
    {
      name: 'an attribute group KVM does not have (numeric)',
      ioctl: 'KVM_HAS_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 5, attr: 0 },
      expected: { ret: -1, errno: 'ENXIO' },
    },
    {
      name: 'an attribute KVM does not have (numeric)',
      ioctl: 'KVM_GET_DEVICE_ATTR',
      vcpu: 0,
      arg: { group: 0, attr: 9 },
      expected: { ret: -1, errno: 'ENXIO' },
    },
    { name: 'a VM ioctl on a vCPU fd', ioctl: 'KVM_GET_CLOCK', vcpu: 0, expected: { ret: -1, errno: 'EINVAL' } },
    { name: 'a vCPU ioctl on the VM fd', ioctl: 'KVM_RUN', expected: { ret: -1, errno: 'ENOTTY' } },
    {
      name: 'an MSR KVM does not handle (numeric): KVM_GET_MSRS stops at it',
      ioctl: 'KVM_GET_MSRS',
      vcpu: 0,
      arg: { indices: [0x1234] },
      expected: { ret: 0, out: { entries: [] } },
    },
    { name: 'a capability number KVM does not know', ioctl: 'KVM_CHECK_EXTENSION', arg: 9999, expected: { ret: 0 } },
    { name: 'a vCPU id that exists', ioctl: 'KVM_CREATE_VCPU', arg: 1, expected: { ret: -1, errno: 'EEXIST' } },
    { name: 'a vCPU id ≥ KVM_MAX_VCPU_IDS', ioctl: 'KVM_CREATE_VCPU', arg: 4096, expected: { ret: -1, errno: 'EINVAL' } },
    { name: 'KVM_SET_TSC_KHZ at max_guest_tsc_khz', ioctl: 'KVM_SET_TSC_KHZ', vcpu: 0, arg: 0x7fff_ffff, expected: { ret: -1, errno: 'EINVAL' } },
    { name: 'VM KVM_SET_TSC_KHZ after vCPUs exist', ioctl: 'KVM_SET_TSC_KHZ', arg: 1_000_000, expected: { ret: -1, errno: 'EINVAL' } },
    {
      name: 'KVM_SET_CLOCK_GUEST with tsc_shift 40 (an s8, but not a pvclock shift)',
      ioctl: 'KVM_SET_CLOCK_GUEST',
      vcpu: 0,
      profile: 'clock-cleanup-v6',
      arg: { tsc_timestamp: 0, system_time: 0, tsc_to_system_mul: 1, tsc_shift: 40 },
      expected: { ret: -1, errno: 'EINVAL' },
    },
  ];

  it.each(cases)('$name', ({ ioctl, arg, vcpu, expected, profile }) => {
    const sim = busyVm(profile);
    if (vcpu !== undefined) sim.pause(vcpu);
    expect(sim.ioctl(ioctl, arg, vcpu)).toEqual(expected);
  });

  it('a guest rdmsr of an MSR KVM does not handle (numeric) raises #GP in the guest', () => {
    const sim = busyVm();
    expect(sim.guest(0, 'rdmsr', { msr: 0x1234 })).toEqual({ fault: 'GP' });
    expect(sim.guest(0, 'wrmsr', { msr: 0x1234, value: 1 })).toEqual({ fault: 'GP' });
  });

  it('values that are in range pass: −2^63 and 2^64−1 as offsets, 2^32−1 kHz refused by the kernel, not the parser', () => {
    const sim = busyVm();
    sim.pause(0);
    expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { group: 0, attr: 0, value: -(1n << 63n) }, 0)).toEqual({ ret: 0 });
    expect(sim.vm.vcpus[0]!.l1TscOffset).toBe(1n << 63n);
    expect(sim.ioctl('KVM_SET_DEVICE_ATTR', { group: 0, attr: 0, value: '0xffffffffffffffff' }, 0)).toEqual({ ret: 0 });
    expect(sim.vm.vcpus[0]!.l1TscOffset).toBe(TWO64 - 1n);
    expect(sim.ioctl('KVM_SET_TSC_KHZ', 2 ** 32 - 1, 0)).toEqual({ ret: -1, errno: 'EINVAL' });
  });
});

// Regression pins for argument-parsing bugs fixed in kvm/.
describe('argument-parsing regressions', () => {
  // parseIoctlName() and namedNumber() test `name in table`, which is true for Object.prototype keys.
  it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty'])('ioctl name %s is unknown', (name) => {
    const sim = busyVm();
    expectUsageError(sim, () => sim.ioctl(name), 'invalid_argument', 'ioctl');
  });

  it('MSR name "valueOf" is unknown', () => {
    const sim = busyVm();
    expectUsageError(sim, () => sim.guest(0, 'rdmsr', { msr: 'valueOf' }), 'invalid_argument', 'msr');
  });

  it('capability name "constructor" is unknown', () => {
    const sim = busyVm();
    expectUsageError(sim, () => sim.ioctl('KVM_CHECK_EXTENSION', 'constructor'), 'invalid_argument', 'arg');
  });

  // namedNumber() range-checks JSON numbers (u32) but not numeric strings: MSR indices are u32.
  it('MSR index "0x100000010" (above u32) is out of range', () => {
    const sim = busyVm();
    sim.pause(0);
    expectUsageError(sim, () => sim.ioctl('KVM_GET_MSRS', { indices: ['0x100000010'] }, 0), 'invalid_argument', 'arg.indices.0');
  });
});
