// What the guest's time sources have corrected of CLOCK_REALTIME, as a function of time.
import { NSEC_PER_SEC } from '../../kvm/arith.js';

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

/** (drift × 10^9) / dt, truncated as bigint division is: in doubles while the product is exact. */
export function freqPpb(drift: bigint, dt: bigint): bigint {
  if (drift > -4_000_000n && drift < 4_000_000n && dt < 1n << 52n) {
    // |drift × 10^9| < 2^52: the quotient's double is within one of the truncation, the remainder says which
    const p = Number(drift) * 1e9;
    const d = Number(dt);
    let q = Math.trunc(p / d);
    const r = p - q * d;
    if (p >= 0 ? r < 0 : r > 0) q += p >= 0 ? -1 : 1;
    else if (p >= 0 ? r >= d : r <= -d) q += p >= 0 ? 1 : -1;
    return BigInt(q);
  }
  return (drift * NSEC_PER_SEC) / dt;
}
