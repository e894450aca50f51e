// The host model: the clocksource (mult, shift) Linux registers for the TSC, and the
// CLOCK_MONOTONIC_RAW it yields, which drifts from pvclock's rounding of the same TSC.
import { describe, expect, it } from 'vitest';
import { clocksCalcMultShift, counterClocksourceMultShift, createHost, hostRawBootNs, hostRealtimeNs, setRealtimeSlew, stepRealtime } from '../../kvm/host.js';

describe('clocksource mult/shift (clocks_calc_mult_shift for tsc_khz, scale 1000, 600 s)', () => {
  it('3 GHz: maxsec·from = 1.8e12 needs 9 bits, so mult < 2^23: shift 24, mult ⌊(1e6·2^24 + 1.5e6)/3e6⌋', () => {
    expect(counterClocksourceMultShift('x86', 3_000_000_000n)).toEqual({ mult: 5_592_405n, shift: 24 });
    expect(clocksCalcMultShift(3_000_000n, 1_000_000n, 600_000n)).toEqual({ mult: 5_592_405n, shift: 24 });
  });

  it('raw_boot_ns after 3e9 cycles is (3e9 · 5592405) >> 24 = 999,999,940 ns: 60 ns/s behind true time', () => {
    const h = createHost({ id: 'h', arch: 'x86', profile: 'linux-6.18', tscKhz: 3_000_000 });
    expect(hostRawBootNs(h, 1_000_000_000n)).toBe(999_999_940n);
    // an HPET clocksource is exact
    const hpet = createHost({ id: 'p', arch: 'x86', profile: 'linux-6.18', tscKhz: 3_000_000, clocksource: 'hpet' });
    expect(hostRawBootNs(hpet, 1_000_000_000n)).toBe(1_000_000_000n);
  });
});

describe('CLOCK_REALTIME', () => {
  it('steps and slews from the instant they happen', () => {
    const h = createHost({ id: 'h', arch: 'x86', profile: 'linux-6.18', tscKhz: 3_000_000, realtimeOffsetNs: 1_000n });
    stepRealtime(h, 10n, -500n);
    expect(hostRealtimeNs(h, 10n)).toBe(510n);
    setRealtimeSlew(h, 1_000_000_000n, 100_000n); // +100 ppm from t = 1 s
    expect(hostRealtimeNs(h, 2_000_000_000n)).toBe(2_000_000_000n + 500n + 100_000n);
  });
});
