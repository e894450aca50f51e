// The kernel's clock arithmetic, bit for bit: arch/x86/kvm/x86.c, arch/x86/include/asm/pvclock.h
// and the hvclock_to_hz() of the clock-cleanup proposal. Every product that the kernel computes
// in 128 bits (mul_u64_u32_shr, mul_u64_u64_shr, mul_u64_u32_div) is exact here. u64 arguments
// are bigint; the kernel's narrower ones (u32 mul, s8 shift, u32 kHz, s32 ppm, u8 fraction bits)
// take a number or a bigint and are range-checked where they enter (cIntArg).
import { cIntArg, ctz, s64, u32, u64, U64_MASK } from './u64.js';

export const NSEC_PER_SEC = 1_000_000_000n;

/** A pvclock fixed-point factor: x_scaled = ((x << shift) * mul) >> 32 (shift < 0: right shift). */
export interface TimeScale {
  /** s8 in the kernel */
  shift: number;
  /** u32 in the kernel */
  mul: bigint;
}

/** kvm_get_time_scale(): the (shift, mul) pair converting base_hz units to scaled_hz units. */
export function getTimeScale(scaledHz: bigint, baseHz: bigint): TimeScale {
  let shift = 0;
  let tps64 = baseHz;
  let scaled64 = scaledHz;
  while (tps64 > scaled64 * 2n || (tps64 & 0xffff_ffff_0000_0000n) !== 0n) {
    tps64 >>= 1n;
    shift--;
  }
  let tps32 = u32(tps64);
  while (tps32 <= scaled64 || (scaled64 & 0xffff_ffff_0000_0000n) !== 0n) {
    if ((scaled64 & 0xffff_ffff_0000_0000n) !== 0n || (tps32 & 0x8000_0000n) !== 0n) scaled64 >>= 1n;
    else tps32 = u32(tps32 << 1n);
    shift++;
  }
  // div_frac(scaled64, tps32): (scaled64 << 32) / tps32, truncated to u32
  return { shift, mul: u32((scaled64 << 32n) / tps32) };
}

/**
 * arch/x86/include/asm/pvclock.h: pvclock_scale_delta(): ((delta << shift) * mul) >> 32, shift applied first
 * (bits lost); mul a u32, shift the s8 tsc_shift.
 */
export function pvclockScaleDelta(delta: bigint, mul: number | bigint, shift: number | bigint): bigint {
  const m = cIntArg(mul, 'u32', 'mul');
  const sh = cIntArg(shift, 's8', 'shift');
  let d = u64(delta);
  if (sh < 0n) d >>= -sh;
  else d = u64(d << sh);
  return u64((d * m) >> 32n);
}

/** The pvclock_vcpu_time_info fields that a read uses. */
export interface PvclockParams {
  systemTime: bigint;
  tscTimestamp: bigint;
  /** tsc_to_system_mul (u32) */
  mul: number | bigint;
  /** tsc_shift (s8) */
  shift: number | bigint;
}

/** __pvclock_read_cycles(): system_time + scale_delta(tsc - tsc_timestamp), mod 2^64. */
export function pvclockReadCycles(p: PvclockParams, tsc: bigint): bigint {
  const delta = u64(tsc - p.tscTimestamp);
  return u64(p.systemTime + pvclockScaleDelta(delta, p.mul, p.shift));
}

/**
 * arch/x86/kvm/x86.c: kvm_scale_tsc(): tsc unchanged at the default ratio, else mul_u64_u64_shr(tsc, ratio,
 * frac) (frac: the u8 kvm_caps.tsc_scaling_ratio_frac_bits).
 */
export function scaleTsc(tsc: bigint, ratio: bigint, fracBits: number | bigint): bigint {
  const frac = cIntArg(fracBits, 'u8', 'fracBits');
  if (ratio === 1n << frac) return tsc;
  return u64((u64(tsc) * ratio) >> frac);
}

/** arch/x86/kvm/x86.c: set_tsc_khz()'s ratio: mul_u64_u32_div(1 << frac, user_tsc_khz, tsc_khz), both u32. Validity is checked by the caller. */
export function tscScalingRatio(userKhz: number | bigint, hostKhz: number | bigint, fracBits: number | bigint): bigint {
  const user = cIntArg(userKhz, 'u32', 'userKhz');
  const host = cIntArg(hostKhz, 'u32', 'hostKhz');
  return u64(((1n << cIntArg(fracBits, 'u8', 'fracBits')) * user) / host);
}

/** arch/x86/kvm/x86.c: adjust_tsc_khz(u32 khz, s32 ppm) at -ppm and +ppm: the window inside which no scaling is applied. */
export function tscToleranceWindow(khz: number | bigint, ppm: number | bigint = 250n): { lo: bigint; hi: bigint } {
  const k = cIntArg(khz, 'u32', 'khz');
  const p = cIntArg(ppm, 's32', 'ppm');
  // (u64)khz * (1000000 + ppm) / 1000000, truncated to u32 as the kernel returns u32
  return {
    lo: u32((k * (1_000_000n - p)) / 1_000_000n),
    hi: u32((k * (1_000_000n + p)) / 1_000_000n),
  };
}

/** hvclock_to_hz() (clock-cleanup proposal, arch/x86/kvm/x86.c): the TSC frequency a pvclock (u32 mul, s8 shift) encodes. */
export function hvclockToHz(mul: number | bigint, shift: number | bigint): bigint {
  let tm = NSEC_PER_SEC << 34n;
  let m = cIntArg(mul, 'u32', 'mul');
  let sh = Number(cIntArg(shift, 's8', 'shift')) + 2;
  if (m === 0n) return 0n;
  const tz = ctz(m);
  m >>= BigInt(tz);
  sh += tz;
  tm /= m;
  if (sh >= 64 || sh <= -64) return 0n;
  if (sh > 0) return tm >> BigInt(sh);
  return u64(tm << BigInt(-sh));
}

/** nsec_to_cycles()/the ns→cycles direction of pvclock_scale_delta for a vCPU's virtual rate. */
export function nsecToCycles(ns: bigint, scale: TimeScale): bigint {
  return pvclockScaleDelta(ns, scale.mul, scale.shift);
}

export { s64, u64, U64_MASK };
