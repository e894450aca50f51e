// The kernel's u32/s8/s32/u8 arguments of the exported arithmetic take a number or a bigint, with
// the same result either way; values the C type cannot hold are refused, naming the argument.
import { describe, expect, it } from 'vitest';
import { getTimeScale, hvclockToHz, pvclockReadCycles, pvclockScaleDelta, scaleTsc, tscScalingRatio, tscToleranceWindow } from '../../kvm/arith.js';
import { InvalidArgumentError } from '../../kvm/errors.js';

// Widened so the test can pass numbers where the signatures used to demand bigint.
type Loose = (...args: unknown[]) => unknown;
const call = (f: unknown, ...args: unknown[]) => (f as Loose)(...args);

/** The InvalidArgumentError a call throws, or null. */
function refusal(f: () => unknown): { code: string; field: string; message: string } | null {
  try {
    f();
    return null;
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    return { code: e.code, field: e.field, message: e.message };
  }
}

describe('numbers where the kernel has u32/s8/int', () => {
  it('pvclockScaleDelta: mul 2^31 halves, shift 1 doubles first (1e6 → 500000 → 1000000)', () => {
    expect(call(pvclockScaleDelta, 1_000_000n, 0x8000_0000, 0)).toBe(500_000n);
    expect(call(pvclockScaleDelta, 1_000_000n, 0x8000_0000, 1)).toBe(1_000_000n);
    expect(call(pvclockScaleDelta, 1_000_000n, 0x8000_0000, -1n)).toBe(250_000n);
    expect(call(pvclockScaleDelta, 1_000_000n, 0x8000_0000n, 1)).toBe(pvclockScaleDelta(1_000_000n, 0x8000_0000n, 1));
  });

  it('pvclockReadCycles takes the page fields as numbers too', () => {
    const page = { systemTime: 1_000n, tscTimestamp: 100n, mul: 0x8000_0000, shift: 0 };
    expect(call(pvclockReadCycles, page, 300n)).toBe(1_100n); // 1000 + (300 − 100) / 2
  });

  it('hvclockToHz: mul 2^31, shift 0 is a 2 GHz TSC, whether mul is a number or a bigint', () => {
    expect(call(hvclockToHz, 0x8000_0000, 0)).toBe(2_000_000_000n);
    expect(hvclockToHz(0x8000_0000n, 0)).toBe(2_000_000_000n);
    const s = getTimeScale(1_000_000_000n, 3_000_000_000n);
    expect(call(hvclockToHz, Number(s.mul), BigInt(s.shift))).toBe(hvclockToHz(s.mul, s.shift));
  });

  it('tscToleranceWindow: 2.6 GHz ± 250 ppm is 2599350 to 2600650 kHz', () => {
    expect(call(tscToleranceWindow, 2_600_000, 250)).toEqual({ lo: 2_599_350n, hi: 2_600_650n });
    expect(call(tscToleranceWindow, 2_600_000)).toEqual(tscToleranceWindow(2_600_000n, 250n));
    expect(call(tscToleranceWindow, 2_600_000n, -250)).toEqual({ lo: 2_600_650n, hi: 2_599_350n });
  });

  it('tscScalingRatio and scaleTsc: a 2 GHz guest on a 3 GHz host with 48 fraction bits', () => {
    // (2^48 × 2000000) / 3000000 = 187649984473770.67, truncated
    expect(call(tscScalingRatio, 2_000_000, 3_000_000, 48)).toBe(187_649_984_473_770n);
    expect(call(tscScalingRatio, 2_000_000, 3_000_000n, 48n)).toBe(tscScalingRatio(2_000_000n, 3_000_000n, 48));
    // 3e9 host cycles → 2e9 guest cycles, less the ratio's truncation
    expect(call(scaleTsc, 3_000_000_000n, 187_649_984_473_770n, 48n)).toBe(1_999_999_999n);
    expect(call(scaleTsc, 3_000_000_000n, 187_649_984_473_770n, 48n)).toBe(scaleTsc(3_000_000_000n, 187_649_984_473_770n, 48));
  });
});

describe('values the C type cannot hold are refused, naming the argument', () => {
  const cases: [string, () => unknown, string, RegExp][] = [
    ['mul 2^32', () => call(pvclockScaleDelta, 1n, 2 ** 32, 0), 'mul', /4294967296 is out of range for u32 \(0 to 4294967295\)/],
    ['mul −1', () => call(pvclockScaleDelta, 1n, -1n, 0), 'mul', /-1 is out of range for u32/],
    ['shift 128', () => call(pvclockScaleDelta, 1n, 1, 128), 'shift', /128 is out of range for s8 \(-128 to 127\)/],
    ['shift 1.5', () => call(pvclockScaleDelta, 1n, 1, 1.5), 'shift', /1.5 is not an integer/],
    ['hvclock mul NaN', () => call(hvclockToHz, Number.NaN, 0), 'mul', /NaN is not an integer/],
    ['khz −1', () => call(tscToleranceWindow, -1, 250), 'khz', /out of range for u32/],
    ['ppm 2^31', () => call(tscToleranceWindow, 1000, 2 ** 31), 'ppm', /2147483648 is out of range for s32/],
    ['userKhz 2^32', () => call(tscScalingRatio, 2 ** 32, 1, 48), 'userKhz', /out of range for u32/],
    ['fracBits 256', () => call(scaleTsc, 1n, 1n, 256), 'fracBits', /256 is out of range for u8 \(0 to 255\)/],
    ['mul a string', () => call(pvclockScaleDelta, 1n, '5', 0), 'mul', /'5' is not an integer/],
  ];
  it.each(cases)('%s', (_name, f, field, message) => {
    const r = refusal(f);
    expect(r).not.toBeNull();
    expect(r!.code).toBe('invalid_argument');
    expect(r!.field).toBe(field);
    expect(r!.message).toMatch(message);
  });
});
