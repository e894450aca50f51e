// Every vector computed by the kernel's own arithmetic must come out bit for bit.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { getTimeScale, hvclockToHz, pvclockReadCycles, pvclockScaleDelta, scaleTsc, tscScalingRatio, tscToleranceWindow } from '../../kvm/arith.js';

const here = dirname(fileURLToPath(import.meta.url));
// The vendored copy, plus the shared one (which may hold more vectors) and any named by the environment.
const files = [
  join(here, '../fixtures/kernel-arith.json'),
  join(here, '../../../shared/vectors/kernel-arith.json'),
  process.env.CLOCKLEDGER_VECTORS ?? '',
].filter((f) => f && existsSync(f));

type Vectors = Record<string, Record<string, string | number | boolean>[]>;
const B = (v: unknown) => BigInt(v as string);

describe.each(files)('kernel arithmetic vectors from %s', (file) => {
  const d = JSON.parse(readFileSync(file, 'utf8')) as Vectors;

  it('has every family', () => {
    for (const k of ['kvm_get_time_scale', 'pvclock_scale_delta', 'pvclock_read_cycles', 'tsc_scaling', 'hvclock_to_hz']) {
      expect(d[k]?.length ?? 0).toBeGreaterThan(0);
    }
  });

  it('kvm_get_time_scale', () => {
    for (const v of d.kvm_get_time_scale ?? []) {
      expect(getTimeScale(B(v.scaled_hz), B(v.base_hz)), JSON.stringify(v)).toEqual({ shift: v.shift, mul: B(v.mul) });
    }
  });

  it('pvclock_scale_delta', () => {
    for (const v of d.pvclock_scale_delta ?? []) {
      expect(pvclockScaleDelta(B(v.delta), B(v.mul), v.shift as number), JSON.stringify(v)).toBe(B(v.result));
    }
  });

  it('__pvclock_read_cycles', () => {
    for (const v of d.pvclock_read_cycles ?? []) {
      const p = { systemTime: B(v.system_time), tscTimestamp: B(v.tsc_timestamp), mul: B(v.mul), shift: v.shift as number };
      expect(pvclockReadCycles(p, B(v.tsc)), JSON.stringify(v)).toBe(B(v.result));
    }
  });

  it('kvm_set_tsc_khz: tolerance window, ratio, kvm_scale_tsc of a TSC and of the kHz', () => {
    for (const v of d.tsc_scaling ?? []) {
      const frac = v.frac_bits as number;
      const w = tscToleranceWindow(B(v.host_khz));
      expect(w, JSON.stringify(v)).toEqual({ lo: B(v.thresh_lo), hi: B(v.thresh_hi) });
      const useScaling = B(v.user_khz) < w.lo || B(v.user_khz) > w.hi;
      expect(useScaling).toBe(v.use_scaling);
      const ratio = useScaling ? tscScalingRatio(B(v.user_khz), B(v.host_khz), frac) : 1n << BigInt(frac);
      const maxRatio = frac === 48 ? (1n << 64n) - 1n : 0xff_ffff_ffffn;
      expect(!useScaling || (ratio !== 0n && ratio < maxRatio)).toBe(v.ok);
      if (!v.ok) continue;
      expect(ratio).toBe(B(v.ratio));
      expect(scaleTsc(B(v.host_tsc), ratio, frac)).toBe(B(v.scaled_tsc));
      expect(scaleTsc(B(v.host_khz), ratio, frac)).toBe(B(v.scaled_khz));
    }
  });

  it('hvclock_to_hz', () => {
    for (const v of d.hvclock_to_hz ?? []) {
      expect(hvclockToHz(B(v.mul), v.shift as number), JSON.stringify(v)).toBe(B(v.result));
    }
  });
});

describe('arithmetic edges', () => {
  it('the proposal worked example: 2.5 GHz guest on a 3 GHz VMX host loses 999 Hz in kHz scaling', () => {
    const ratio = tscScalingRatio(2_500_000n, 3_000_000n, 48);
    expect(scaleTsc(3_000_000n, ratio, 48) * 1000n).toBe(2_499_999_000n);
    expect(scaleTsc(3_000_000_000n, ratio, 48)).toBe(2_499_999_999n);
  });

  it('hvclock_to_hz returns 0 past a 64-bit shift and inverts the scale of round frequencies', () => {
    expect(hvclockToHz(0x8000_0000n, 63)).toBe(0n);
    expect(hvclockToHz(1n, -80)).toBe(0n);
    for (const hz of [1_000_000_000n, 1_500_000_000n, 3_000_000_000n, 100_000_000n]) {
      const s = getTimeScale(1_000_000_000n, hz);
      expect(hvclockToHz(s.mul, s.shift)).toBe(hz);
    }
  });

  it('pvclock reads wrap modulo 2^64', () => {
    const p = { systemTime: (1n << 64n) - 10n, tscTimestamp: 5n, mul: 1n << 31n, shift: 1 };
    // delta 20 cycles at 1 ns/cycle wraps the sum past 2^64
    expect(pvclockReadCycles(p, 25n)).toBe(10n);
    // a TSC below tsc_timestamp is a huge u64 delta, as in the kernel
    expect(pvclockReadCycles({ ...p, systemTime: 0n }, 4n)).toBe(pvclockScaleDelta((1n << 64n) - 1n, 1n << 31n, 1));
  });
});
