// The ioctl arguments replay parses again for every recorded event go through a zod-free check
// first; anything it does not plainly accept goes to the schema. Either way the outcome must be
// the schema's: the same value, or the same refusal (code, field, message).
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { parseArg, type ArgParser } from '../../kvm/args.js';
import { capSchema, deviceAttrSchema, parseCap, parseDeviceAttr, parseVcpuId, vcpuIdSchema } from '../../kvm/ioctl.js';
import { clockDataSchema, getMsrsSchema, khzSchema, parseClockData, parseGetMsrs, parseKhz } from '../../kvm/x86/ioctl.js';

const U64S: unknown[] = [
  '0',
  '7',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999',
  '100000000000000000000',
  '007',
  ' 5',
  '5 ',
  '-1',
  '-9223372036854775808',
  '-9223372036854775809',
  '0x10',
  '0xffffffffffffffff',
  '1e3',
  '',
  '+1',
  0,
  5,
  -1,
  -0,
  1.5,
  2 ** 53,
  2 ** 53 - 1,
  NaN,
  Infinity,
  0n,
  5n,
  -1n,
  (1n << 64n) - 1n,
  1n << 64n,
  null,
  undefined,
  {},
  [],
  true,
];
const NAMES: unknown[] = [
  0,
  1,
  0xffff_ffff,
  0x1_0000_0000,
  -1,
  -0,
  1.5,
  NaN,
  'KVM_VCPU_TSC_CTRL',
  'KVM_VCPU_TSC_OFFSET',
  'KVM_ARM_VCPU_TIMER_CTRL',
  ' KVM_VCPU_TSC_CTRL',
  '16',
  '0x10',
  'nope',
  '__proto__',
  'toString',
  'constructor',
  '',
  null,
  undefined,
  1n,
  {},
];
const MSRS: unknown[] = [0x10, 'MSR_IA32_TSC', 'IA32_TSC', 'MSR_KVM_SYSTEM_TIME_NEW', ' MSR_IA32_TSC', '0x10', 'hasOwnProperty', -1, 2 ** 32, 1.5, null, '16'];

/** What a parse ends in: the value, or the error's class, code, field and message. */
function outcome(f: () => unknown): unknown {
  try {
    return { value: f() };
  } catch (e) {
    const x = e as Error & { code?: string; field?: string };
    return { error: [x.constructor.name, x.code, x.field, x.message] };
  }
}

function expectSame<T extends z.ZodTypeAny>(schema: T, parse: ArgParser<z.output<T>>, inputs: unknown[]): void {
  for (const v of inputs)
    expect(
      outcome(() => parse(v, 'arg')),
      JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)),
    ).toEqual(outcome(() => parseArg(schema, v, 'arg')));
}

describe('argument parsers with a plain path', () => {
  it('struct kvm_device_attr: every group, attr and value as the schema parses them', () => {
    const inputs: unknown[] = [null, undefined, 5, 'x', [], [0, 0], { group: 0 }, { attr: 0 }, {}];
    for (const group of NAMES) for (const attr of [0, 1, 'KVM_VCPU_TSC_OFFSET', 'x', null, 2 ** 32]) inputs.push({ group, attr });
    for (const value of U64S) inputs.push({ group: 0, attr: 0, value }, { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET', value, extra: 1 });
    expectSame(deviceAttrSchema, parseDeviceAttr, inputs);
    // the plain path gives what the schema gives
    expect(parseDeviceAttr({ group: 'KVM_VCPU_TSC_CTRL', attr: 0, value: '18446744073709551615', x: 1 }, 'arg')).toEqual({
      group: 0,
      attr: 0,
      value: 18446744073709551615n,
    });
  });

  it('struct kvm_clock_data: defaults, every u64 field and flags as the schema parses them', () => {
    const inputs: unknown[] = [null, undefined, 0, '1', [], {}, { clock: '1' }];
    for (const v of U64S) inputs.push({ clock: v }, { realtime: v, clock: '5' }, { host_tsc: v }, { clock: '1', flags: v });
    for (const flags of [0, 2, 2 ** 32 - 1, 2 ** 32, -1, 1.5, '2', null]) inputs.push({ clock: '1', flags });
    expectSame(clockDataSchema, parseClockData, inputs);
    expect(parseClockData({ clock: '163084171712' }, 'arg')).toEqual({ clock: 163084171712n, flags: 0, realtime: 0n, host_tsc: 0n });
  });

  it('KVM_GET_MSRS indices, the TSC frequency, a capability and a vCPU id as their schemas parse them', () => {
    const lists: unknown[] = [null, undefined, {}, { indices: null }, { indices: 'MSR_IA32_TSC' }, { indices: [] }];
    for (const m of MSRS) lists.push({ indices: [m] }, { indices: [0x10, m, 'MSR_IA32_TSC'] });
    expectSame(getMsrsSchema, parseGetMsrs, lists);
    const numbers: unknown[] = [0, 1, 2_000_000, 2 ** 32 - 1, 2 ** 32, -1, -0, 1.5, NaN, Infinity, '2000000', 1n, null, undefined];
    expectSame(khzSchema, parseKhz, numbers);
    expectSame(vcpuIdSchema, parseVcpuId, [...numbers, 4096, 2 ** 53]);
    expectSame(capSchema, parseCap, [...numbers, 'KVM_CAP_TSC_CONTROL', ' KVM_CAP_TSC_CONTROL', 'KVM_CAP_NOPE', '0x10', 'valueOf']);
  });
});
