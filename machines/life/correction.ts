// What the guest's time sources have corrected of CLOCK_REALTIME, as a function of time.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { mulDivFloor } from './state-read.js';

/**
 * The time sources' corrections as a function of time: C(t) = base − slew done − frequency
 * compensation since `at`, the slew done being at most what is left of it. Changed in place at each
 * update (one per poll over a life of weeks).
 */
export class Correction {
  base = 0n;
  /** what the running slew still has to remove (signed), and its rate (ppb) */
  slewLeft = 0n;
  slewPpb = 0n;
  /** the frequency error the client estimated and compensates (ppb: the clock runs this much fast) */
  freqPpb = 0n;
  /** frozen: the guest is stopped (nothing accrues) */
  frozen = false;
  constructor(public at: bigint) {}

  /** the slew done over dt since `at` (signed as what is left) */
  private slewDone(dt: bigint): bigint {
    const left = this.slewLeft;
    if (left === 0n) return 0n;
    const d = (this.slewPpb * dt) / NSEC_PER_SEC;
    return left > 0n ? (left < d ? left : d) : -left < d ? left : -d;
  }

  valueAt(t: bigint): bigint {
    if (this.frozen || t <= this.at) return this.base;
    const dt = t - this.at;
    return this.base - this.slewDone(dt) - (this.freqPpb === 0n ? 0n : (this.freqPpb * dt) / NSEC_PER_SEC);
  }

  /** rebased at t (its slew's remainder kept) */
  rebase(t: bigint): void {
    if (this.frozen || t <= this.at) return;
    const dt = t - this.at;
    const done = this.slewDone(dt);
    this.base = this.base - done - (this.freqPpb === 0n ? 0n : (this.freqPpb * dt) / NSEC_PER_SEC);
    this.slewLeft -= done;
    this.at = t;
  }
}

/**
 * (drift × 10^9) / dt truncated toward zero, as bigint division is, for integers drift and dt > 0 in
 * doubles: NaN where the product would leave the doubles' exact range (|drift| ≥ 4 × 10^6, dt ≥ 2^52).
 */
export function freqPpbD(drift: number, dt: number): number {
  if (!(drift > -4_000_000 && drift < 4_000_000 && dt < 2 ** 52)) return Number.NaN;
  // |drift × 10^9| < 2^52: the quotient's double is within one of the truncation, the remainder says which
  const p = drift * 1e9;
  let q = Math.trunc(p / dt);
  const r = p - q * dt;
  if (p >= 0 ? r < 0 : r > 0) q += p >= 0 ? -1 : 1;
  else if (p >= 0 ? r >= dt : r <= -dt) q += p >= 0 ? 1 : -1;
  // (0, never −0: a zero estimate reads as none)
  return q + 0;
}

/** (drift × 10^9) / dt, truncated as bigint division is: in doubles while the product is exact. */
export function freqPpb(drift: bigint, dt: bigint): bigint {
  const q = drift > -4_000_000n && drift < 4_000_000n && dt < 1n << 52n ? freqPpbD(Number(drift), Number(dt)) : Number.NaN;
  return Number.isNaN(q) ? (drift * NSEC_PER_SEC) / dt : BigInt(q);
}

/** Below this magnitude a sum of a handful of integers is exact in doubles (a sum of eight is below 2^53). */
export const SMALL = 2 ** 50;
const U32 = 2 ** 32;

/**
 * A Correction in doubles, its instants as offsets (ns) from an origin, while it runs (not frozen)
 * and every value is an integer a double holds exactly: its base and slew below SMALL, its rates
 * at most 2^32 ppb. Each product is floored exactly (mulDivFloor()); an operation whose result
 * would leave that range fails (NaN, false) and changes nothing: the caller goes back to the
 * Correction (writeTo()) and its bigints.
 */
export class CorrectionD {
  private constructor(
    public base: number,
    public slewLeft: number,
    public slewPpb: number,
    public freqPpb: number,
    public at: number,
  ) {}

  /** c in doubles from `origin` (null: frozen, or a value beyond them) */
  static of(c: Correction, origin: bigint): CorrectionD | null {
    if (c.frozen) return null;
    const small = (x: bigint) => x > -SMALL_B && x < SMALL_B;
    const rate = (x: bigint) => x >= -U32_B && x <= U32_B;
    const at = c.at - origin;
    if (!small(c.base) || !small(c.slewLeft) || c.slewPpb < 0n || !rate(c.slewPpb) || !rate(c.freqPpb) || !small(at)) return null;
    return new CorrectionD(Number(c.base), Number(c.slewLeft), Number(c.slewPpb), Number(c.freqPpb), Number(at));
  }

  /** back into c (its instants from `origin`) */
  writeTo(c: Correction, origin: bigint): void {
    c.base = BigInt(this.base);
    c.slewLeft = BigInt(this.slewLeft);
    c.slewPpb = BigInt(this.slewPpb);
    c.freqPpb = BigInt(this.freqPpb);
    c.at = origin + BigInt(this.at);
  }

  /** Correction.slewDone() (NaN: beyond the doubles) */
  private slewDone(dt: number): number {
    const left = this.slewLeft;
    if (left === 0) return 0;
    // a slew plainly done by dt (its product twice what is left: no rounding of the doubles' reaches that): all of it
    if (this.slewPpb * dt >= 2 * ((left < 0 ? -left : left) + 1) * 1e9) return left;
    const d = mulDivFloor(dt, this.slewPpb, 1e9, 0);
    if (d < 0) return Number.NaN;
    return left > 0 ? (left < d ? left : d) : -left < d ? left : -d;
  }

  /** the frequency compensation over dt: (freqPpb × dt) / 10^9 truncated toward zero (NaN: beyond the doubles) */
  private freqDone(dt: number): number {
    const f = this.freqPpb;
    if (f === 0) return 0;
    const q = mulDivFloor(dt, f < 0 ? -f : f, 1e9, 0);
    return q < 0 ? Number.NaN : f < 0 ? -q : q;
  }

  /** Correction.valueAt() at offset o (NaN: beyond the doubles) */
  valueAt(o: number): number {
    if (o <= this.at) return this.base;
    const dt = o - this.at;
    const v = this.base - this.slewDone(dt) - this.freqDone(dt);
    return v > -SMALL && v < SMALL ? v : Number.NaN;
  }

  /** Correction.rebase() at offset o (false: beyond the doubles, nothing changed) */
  rebase(o: number): boolean {
    if (o <= this.at) return true;
    const dt = o - this.at;
    const done = this.slewDone(dt);
    const base = this.base - done - this.freqDone(dt);
    if (!(base > -SMALL && base < SMALL)) return false;
    this.base = base;
    this.slewLeft -= done;
    this.at = o;
    return true;
  }
}

const SMALL_B = BigInt(SMALL);
const U32_B = BigInt(U32);
