// The boot vCPU's clocks on one VM state, as closed-form integer functions of true time. Between two
// events of its VM nothing the guest reads changes but the host's counter, so each clock is the
// kernel's own arithmetic on that counter with the state's constants taken once: the same u64
// truncations, shifts and floors as the emulated kernel's calls (kvm/), without re-deriving the
// constants and re-checking the arguments at every read. machines/life reads tens of thousands of
// instants of a guest's life this way; its tests hold these reads equal to the emulated kernel's.
import { NSEC_PER_SEC } from '../../kvm/arith.js';
import { hostCounter, hostRealtimeNs, type HostState } from '../../kvm/host.js';
import { guestPvclockRead } from '../../kvm/x86/clock.js';
import { kvmReadL1Tsc } from '../../kvm/x86/tsc.js';
import { cIntArg, U64_MASK } from '../../kvm/u64.js';
import { catchupTickDue } from '../../kvm/x86/vm.js';
import { x86Ctx, type VmRecord } from '../vm/evolve.js';
import { guestClocksAt, guestCountersAt } from '../vm/view.js';

/** The guest's clocks at one instant, as its boot vCPU reads them. */
export interface Reading {
  counter: bigint;
  kvmclock: bigint | null;
  realtime: bigint;
}

const M = U64_MASK;

/** The boot vCPU's clocks at t through the emulated kernel (null: no vCPU, no counter). */
export function kernelRead(rec: VmRecord, host: HostState, t: bigint): Reading | null {
  const realtime = hostRealtimeNs(host, t);
  if (rec.arm64) {
    const c = guestCountersAt(rec, host, t)[0];
    return c ? { counter: c.cntvct, kvmclock: null, realtime } : null;
  }
  const vm = rec.x86;
  const v0 = vm?.vcpus[0];
  if (!vm || !v0) return null;
  // the boot vCPU read as the guest reads it (kvm_read_l1_tsc(), then its pvclock page); a VM in
  // software TSC catch-up is read through guestClocksAt, which takes its pending tick first
  if (catchupTickDue(vm, rec.lastTime, t) === null) {
    const hostTsc = hostCounter(host, t);
    const tsc = kvmReadL1Tsc(x86Ctx(rec, { t, tsc: hostTsc, rawNs: 0n, realNs: realtime }), v0, hostTsc);
    return { counter: tsc, kvmclock: v0.pvti ? guestPvclockRead(v0.pvti, tsc) : null, realtime };
  }
  const v = guestClocksAt(rec, host, t).vcpus[0];
  return v ? { counter: v.tsc, kvmclock: v.kvmclock, realtime } : null;
}

/**
 * kernelRead() on an x86 VM state (every read at an instant at or after the state's last event
 * and before the next), from what readsKey() takes of the state.
 */
export function stateReader(key: ReadsKey): (t: bigint) => Reading {
  const { host, pvti: p } = key;
  // hostCounter(): the counter at true time t
  const ic = host.initialCounter;
  const hz = host.actualCounterHz;
  // kvm_read_l1_tsc() → kvm_scale_tsc(): unchanged at the default ratio, else mul_u64_u64_shr(tsc, ratio, frac)
  const off = key.offset;
  const ratio = key.ratio;
  const frac = cIntArg(key.fracBits, 'u8', 'fracBits');
  const scaled = ratio !== 1n << frac;
  // __pvclock_read_cycles(): system_time + pvclock_scale_delta(tsc − tsc_timestamp)
  const mul = p ? cIntArg(p.mul, 'u32', 'mul') : 0n;
  const shift = p ? cIntArg(p.shift, 's8', 'shift') : 0n;
  const ts = p?.tscTimestamp ?? 0n;
  const st = p?.systemTime ?? 0n;
  // ktime_get_real_ns(): true time plus the host's realtime offset and its slew since its anchor (floored)
  const { anchorT, anchorOffsetNs, slewPpb } = host.realtime;
  // (mod 2^64 the unscaled guest TSC is ic + off + ticks, and tsc − tsc_timestamp is that less ts: one
  // sum each; (d × mul) >> 32 with d < 2^64 and mul < 2^32 is already below 2^64)
  const icOff = ic + off;
  const icOffTs = icOff - ts;
  const right = shift < 0n ? -shift : 0n;
  const slewing = slewPpb !== 0n;
  const realBase = anchorOffsetNs;
  return (t) => {
    const ticks = (t * hz) / NSEC_PER_SEC;
    let tsc: bigint;
    let d: bigint;
    if (scaled) {
      tsc = (off + ((((ic + ticks) & M) * ratio) >> frac)) & M;
      d = (tsc - ts) & M;
    } else {
      tsc = (icOff + ticks) & M;
      d = (icOffTs + ticks) & M;
    }
    const kvmclock = p ? (st + (((right ? d >> right : (d << shift) & M) * mul) >> 32n)) & M : null;
    let realtime = t + realBase;
    if (slewing) {
      const a = (t - anchorT) * slewPpb;
      const q = a / NSEC_PER_SEC;
      realtime += a % NSEC_PER_SEC !== 0n && a < 0n ? q - 1n : q;
    }
    return { counter: tsc, kvmclock, realtime };
  };
}

/** What stateReader() takes from a state: two states that agree on it read the same at every instant. */
export interface ReadsKey {
  host: HostState;
  offset: bigint;
  ratio: bigint;
  fracBits: number;
  pvti: { mul: bigint; shift: number; tscTimestamp: bigint; systemTime: bigint } | null;
}

/**
 * The key of a state stateReader() reads, or null where the state needs the emulated kernel at each
 * read: arm64, or a vCPU in software TSC catch-up (its reads depend on the guest's ticks since the
 * last event).
 */
export function readsKey(rec: VmRecord, host: HostState): ReadsKey | null {
  const vm = rec.x86;
  const v0 = vm?.vcpus[0];
  const caps = rec.host.x86;
  if (!vm || !v0 || !caps || vm.vcpus.some((v) => v.running && v.tscAlwaysCatchup)) return null;
  const p = v0.pvti;
  return {
    host,
    offset: v0.l1TscOffset,
    ratio: v0.l1TscScalingRatio,
    fracBits: caps.fracBits,
    pvti: p ? { mul: p.mul, shift: p.shift, tscTimestamp: p.tscTimestamp, systemTime: p.systemTime } : null,
  };
}

export function sameReadsKey(a: ReadsKey, b: ReadsKey): boolean {
  if (a.host !== b.host || a.offset !== b.offset || a.ratio !== b.ratio || a.fracBits !== b.fracBits) return false;
  const p = a.pvti;
  const q = b.pvti;
  if (p === null || q === null) return p === q;
  return p.mul === q.mul && p.shift === q.shift && p.tscTimestamp === q.tscTimestamp && p.systemTime === q.systemTime;
}

/** 2^53: below it every integer a double holds is exact. */
const SAFE = 2 ** 53;

/**
 * ⌊(r0 + a × m) / d⌋ for non-negative safe integers a, r0 < d, with m and d at most 2^32, in doubles
 * and exact: a is split so that no product reaches 2^53 (−1: the result itself would not be safe).
 */
export function mulDivFloor(a: number, m: number, d: number, r0: number): number {
  const p = a * m;
  if (p < 2 ** 52) {
    // the product is exact (a double below 2^52 is not a rounded product of 2^53 or more), and so is r0 + p
    const n = r0 + p;
    let q = Math.floor(n / d);
    const r = n - q * d;
    if (r < 0) q -= 1;
    else if (r >= d) q += 1;
    return q;
  }
  let a1 = Math.floor(a / d);
  let a0 = a - a1 * d;
  if (a0 < 0) (a1 -= 1), (a0 += d);
  else if (a0 >= d) (a1 += 1), (a0 -= d);
  const high = a1 * m;
  if (high >= SAFE) return -1;
  // a0 < d ≤ 2^32: a0 = h × 2^16 + l, h × m < 2^48, l × m < 2^48
  const h = Math.floor(a0 / 65536);
  const l = a0 - h * 65536;
  const x = h * m;
  let xq = Math.floor(x / d);
  let xr = x - xq * d;
  if (xr < 0) (xq -= 1), (xr += d);
  else if (xr >= d) (xq += 1), (xr -= d);
  const rest = r0 + xr * 65536 + l * m;
  let rq = Math.floor(rest / d);
  const rr = rest - rq * d;
  if (rr < 0) rq -= 1;
  else if (rr >= d) rq += 1;
  const out = high + xq * 65536 + rq;
  return out < SAFE ? out : -1;
}

/** A VM state's reads as offsets from its reading at `base`, in doubles (every read between its events). */
export interface StateDeltas {
  base: bigint;
  at: Reading;
  /**
   * The counter's and kvm-clock's advance at base + u (ns, u ≥ 0) into `out`, exact; false where a
   * value would leave the doubles' exact range or wrap its u64 (read the state in bigint then).
   * CLOCK_REALTIME advances by u: a state has them only while its host's realtime does not slew.
   */
  deltas(u: number, out: { counter: number; kvmclock: number }): boolean;
}

/** A state's pvclock in doubles: pvclock_scale_delta() of tsc − tsc_timestamp, split at the base. */
interface PvclockD {
  mul: number;
  shift: number;
  /** shift < 0: 2^−shift, the delta's low bits at the base (below it); shift ≥ 0: 2^shift */
  k: number;
  dl: number;
  /** (x × mul) mod 2^32 of the base's shifted delta x */
  plo: number;
  /** how far tsc − tsc_timestamp, and kvm-clock, may advance from the base before they wrap */
  roomD: number;
  roomK: number;
}

/**
 * stateReader()'s reads from `base` on in doubles: for an unscaled guest TSC on a host counting at
 * most 2^32 Hz whose CLOCK_REALTIME does not slew (null otherwise). The same floors: the host's
 * ticks ⌊t × hz / 10^9⌋, pvclock_scale_delta()'s shift and ⌊x × mul / 2^32⌋, each split at the base.
 */
export function stateDeltas(key: ReadsKey, base: bigint, read: (t: bigint) => Reading = stateReader(key)): StateDeltas | null {
  const { host } = key;
  if (host.realtime.slewPpb !== 0n || key.ratio !== 1n << BigInt(key.fracBits)) return null;
  const hzB = host.actualCounterHz;
  if (hzB <= 0n || hzB > 1n << 32n || base < 0n) return null;
  const at = read(base);
  const room = (x: bigint) => (x < 0n ? -1 : x >= BigInt(SAFE) ? Infinity : Number(x));
  // the guest TSC and tsc − tsc_timestamp at the base, and how far each may advance before it wraps
  const roomC = room(M - at.counter);
  const p = key.pvti;
  let pv: PvclockD | null = null;
  if (p) {
    const mul = Number(cIntArg(p.mul, 'u32', 'mul'));
    const shift = Number(cIntArg(p.shift, 's8', 'shift'));
    const d = (at.counter - p.tscTimestamp) & M;
    const roomD = shift < 0 ? room(M - d) : room((M >> BigInt(shift)) - d);
    const k = 2 ** (shift < 0 ? -shift : shift);
    const dl = shift < 0 ? Number(d & (BigInt(k) - 1n)) : 0;
    const x = shift < 0 ? d >> BigInt(-shift) : d << BigInt(shift);
    const pr = x * BigInt(mul);
    // kvm-clock at the base is system_time + ⌊x × mul / 2^32⌋: its room before it wraps
    const roomK = room(M - (p.systemTime + (pr >> 32n)));
    if (roomD < 0 || roomK < 0) return null;
    pv = { mul, shift, k, dl, plo: Number(pr & 0xffff_ffffn), roomD, roomK };
  }
  if (roomC < 0) return null;
  return new Deltas(base, at, Number(hzB), Number((base * hzB) % NSEC_PER_SEC), roomC, pv);
}

class Deltas implements StateDeltas {
  constructor(
    readonly base: bigint,
    readonly at: Reading,
    /** the host's counter rate, and (base × hz) mod 10^9: the ticks' fraction carried into each advance */
    readonly hz: number,
    readonly rb: number,
    /** how far the guest TSC may advance from the base before it wraps */
    readonly roomC: number,
    readonly pv: PvclockD | null,
  ) {}

  deltas(u: number, out: { counter: number; kvmclock: number }): boolean {
    if (u >= SAFE / 2) return false;
    const dc = mulDivFloor(u, this.hz, 1e9, this.rb);
    if (dc < 0 || dc > this.roomC) return false;
    out.counter = dc;
    const p = this.pv;
    if (p) {
      if (dc > p.roomD) return false;
      const dx = p.shift < 0 ? Math.floor((p.dl + dc) / p.k) : dc * p.k;
      if (dx >= SAFE / 2) return false;
      const dk = mulDivFloor(dx, p.mul, 2 ** 32, p.plo);
      if (dk < 0 || dk > p.roomK) return false;
      out.kvmclock = dk;
    }
    return true;
  }
}

const E9 = 1_000_000_000n;
const U32 = 2 ** 32;

/**
 * A state's advance (its StateDeltas) at u, u + s, u + 2s, … for a fixed step s (a timeline's
 * samples, an NTP client's polls), each from the one before by the step's quotient and remainder
 * rather than by a product and a division: the host's ticks advance by ⌊s × hz / 10^9⌋, one more
 * when their fraction carries; the shifted pvclock delta by those over 2^−shift as its low bits
 * carry; kvm-clock by ⌊Δx × mul / 2^32⌋ as its low 32 bits carry (mul_u64_u32_shr()'s arithmetic,
 * incremental); and the TSC's ns since the life's first reading, ⌊(cr + counter × 10^9) / hz0⌋, by
 * ⌊Δc × 10^9 / hz0⌋ as theirs carry. The same values as deltas() and its floors to the ns, and the
 * same refusals (a wrap, the doubles' range). Any other u is computed afresh, in bigint (its
 * remainders are more than deltas() keeps).
 */
export class DeltaSteps {
  /** the advance at the last u given: the guest TSC's, kvm-clock's, and the TSC's in ns at hz0 */
  counter = 0;
  kvmclock = 0;
  ns = 0;
  private d: Deltas | null = null;
  private cr = 0;
  private s = 0;
  private u = 0;
  /** the remainders: of the ticks (mod 10^9), of the shifted delta (mod 2^−shift), of kvm-clock's product (mod 2^32), of the ns (mod hz0) */
  private rc = 0;
  private xr = 0;
  private dx = 0;
  private kr = 0;
  private mr = 0;
  /** the step's: ticks ⌊s × hz / 10^9⌋ and the remainder; the ns of q and q + 1 ticks, and their remainders */
  private q = 0;
  private r = 0;
  private mq0 = 0;
  private mr0 = 0;
  private mq1 = 0;
  private mr1 = 0;
  /** the state the step's constants are of */
  private stepOf: Deltas | null = null;
  /** Δx × mul by 2^32 for the two Δx a step gives (−1: not yet) */
  private kx0 = -1;
  private kq0 = 0;
  private kr0 = 0;
  private kx1 = -1;
  private kq1 = 0;
  private kr1 = 0;

  /** (hz0: the rate the TSC's ns are counted at, at most 2^32) */
  constructor(private readonly hz0: number) {}

  /**
   * The advance of `d` at u into counter, kvmclock and ns (cr: ((the counter at d's base − the
   * life's first) × 10^9) mod hz0); false where deltas() refuses, or the ns would leave the doubles.
   */
  at(d: StateDeltas, u: number, s: number, cr: number): boolean {
    if (d === this.d && s === this.s && cr === this.cr && u === this.u + s && this.step()) {
      this.u = u;
      return true;
    }
    return this.reset(d as Deltas, u, s, cr);
  }

  private fail(): boolean {
    this.d = null;
    return false;
  }

  /** the advance at u computed afresh (bigint), and the step's constants */
  private reset(d: Deltas, u: number, s: number, cr: number): boolean {
    this.d = null;
    if (!(u >= 0 && u < SAFE / 2)) return false;
    const hz = BigInt(d.hz);
    const n = BigInt(d.rb) + BigInt(u) * hz;
    const dc = n / E9;
    if (dc > d.roomC) return false;
    const p = d.pv;
    let dk = 0n;
    if (p) {
      if (dc > p.roomD) return false;
      let dx: bigint;
      if (p.shift < 0) {
        const x = BigInt(p.dl) + dc;
        dx = x / BigInt(p.k);
        this.xr = Number(x % BigInt(p.k));
      } else dx = dc * BigInt(p.k);
      if (dx >= SAFE / 2) return false;
      const k = BigInt(p.plo) + dx * BigInt(p.mul);
      dk = k >> 32n;
      if (dk > p.roomK || dk >= SAFE) return false;
      this.dx = Number(dx);
      this.kr = Number(k & 0xffff_ffffn);
    }
    const hz0 = BigInt(this.hz0);
    const m = BigInt(cr) + dc * E9;
    const ns = m / hz0;
    if (ns >= SAFE) return false;
    this.counter = Number(dc);
    this.kvmclock = Number(dk);
    this.ns = Number(ns);
    this.rc = Number(n % E9);
    this.mr = Number(m % hz0);
    // the step's constants (once per state and step)
    const sh = BigInt(s) * hz;
    const q = sh / E9;
    if (!(s > 0 && q < 2n ** 52n)) return true;
    if (d !== this.stepOf || s !== this.s) {
      this.stepOf = d;
      this.q = Number(q);
      this.r = Number(sh % E9);
      this.mq0 = Number((q * E9) / hz0);
      this.mr0 = Number((q * E9) % hz0);
      this.mq1 = Number(((q + 1n) * E9) / hz0);
      this.mr1 = Number(((q + 1n) * E9) % hz0);
      this.kx0 = -1;
      this.kx1 = -1;
    }
    this.d = d;
    this.s = s;
    this.cr = cr;
    this.u = u;
    return true;
  }

  /** the advance one step on from the last (false: refused; nothing kept) */
  private step(): boolean {
    const d = this.d!;
    let rc = this.rc + this.r;
    let dcInc = this.q;
    if (rc >= 1e9) (rc -= 1e9), (dcInc += 1);
    const dc = this.counter + dcInc;
    if (dc > d.roomC) return this.fail();
    const p = d.pv;
    if (p) {
      if (dc > p.roomD) return this.fail();
      let dxInc: number;
      let xr = this.xr;
      if (p.shift < 0) {
        const x = xr + dcInc;
        dxInc = Math.floor(x / p.k);
        xr = x - dxInc * p.k;
      } else dxInc = dcInc * p.k;
      const dx = this.dx + dxInc;
      if (dx >= SAFE / 2) return this.fail();
      // Δx × mul by 2^32: one of two values a step gives, each worked out once in bigint
      let kq: number;
      let krr: number;
      if (dxInc === this.kx0) (kq = this.kq0), (krr = this.kr0);
      else if (dxInc === this.kx1) (kq = this.kq1), (krr = this.kr1);
      else {
        const prod = BigInt(dxInc) * BigInt(p.mul);
        kq = Number(prod >> 32n);
        krr = Number(prod & 0xffff_ffffn);
        if (this.kx0 < 0) (this.kx0 = dxInc), (this.kq0 = kq), (this.kr0 = krr);
        else (this.kx1 = dxInc), (this.kq1 = kq), (this.kr1 = krr);
      }
      let kr = this.kr + krr;
      let dk = this.kvmclock + kq;
      if (kr >= U32) (kr -= U32), (dk += 1);
      if (dk > p.roomK || dk >= SAFE) return this.fail();
      this.xr = xr;
      this.dx = dx;
      this.kr = kr;
      this.kvmclock = dk;
    }
    let mr = this.mr + (dcInc === this.q ? this.mr0 : this.mr1);
    let ns = this.ns + (dcInc === this.q ? this.mq0 : this.mq1);
    if (mr >= this.hz0) (mr -= this.hz0), (ns += 1);
    if (ns >= SAFE) return this.fail();
    this.rc = rc;
    this.counter = dc;
    this.mr = mr;
    this.ns = ns;
    return true;
  }
}
