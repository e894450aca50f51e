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
  const hz = Number(hzB);
  const at = read(base);
  const room = (x: bigint) => (x < 0n ? -1 : x >= BigInt(SAFE) ? Infinity : Number(x));
  const ticks = base * hzB;
  const rb = Number(ticks % NSEC_PER_SEC);
  // the guest TSC and tsc − tsc_timestamp at the base, and how far each may advance before it wraps
  const roomC = room(M - at.counter);
  const p = key.pvti;
  let step: ((dc: number) => number) | null = null;
  if (p) {
    const mul = Number(cIntArg(p.mul, 'u32', 'mul'));
    const shift = Number(cIntArg(p.shift, 's8', 'shift'));
    const d = (at.counter - p.tscTimestamp) & M;
    const roomD = shift < 0 ? room(M - d) : room((M >> BigInt(shift)) - d);
    const k = shift < 0 ? 2 ** -shift : 0;
    const dl = shift < 0 ? Number(d & (BigInt(k) - 1n)) : 0;
    const x = shift < 0 ? d >> BigInt(-shift) : d << BigInt(shift);
    const pr = x * BigInt(mul);
    const plo = Number(pr & 0xffff_ffffn);
    // kvm-clock at the base is system_time + ⌊x × mul / 2^32⌋: its room before it wraps
    const roomK = room(M - (p.systemTime + (pr >> 32n)));
    if (roomD < 0 || roomK < 0) return null;
    const scale = shift < 0 ? 0 : 2 ** shift;
    step = (dc) => {
      if (dc > roomD) return -1;
      const dx = shift < 0 ? Math.floor((dl + dc) / k) : dc * scale;
      if (dx >= SAFE / 2) return -1;
      const dk = mulDivFloor(dx, mul, 2 ** 32, plo);
      return dk > roomK ? -1 : dk;
    };
  }
  if (roomC < 0) return null;
  return {
    base,
    at,
    deltas(u, out) {
      if (u >= SAFE / 2) return false;
      const dc = mulDivFloor(u, hz, 1e9, rb);
      if (dc < 0 || dc > roomC) return false;
      out.counter = dc;
      if (step) {
        const dk = step(dc);
        if (dk < 0) return false;
        out.kvmclock = dk;
      }
      return true;
    },
  };
}
