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
    const tsc = kvmReadL1Tsc(x86Ctx(rec, { t, tsc: hostCounter(host, t), rawNs: 0n, realNs: realtime }), v0, hostCounter(host, t));
    return { counter: tsc, kvmclock: v0.pvti ? guestPvclockRead(v0.pvti, tsc) : null, realtime };
  }
  const v = guestClocksAt(rec, host, t).vcpus[0];
  return v ? { counter: v.tsc, kvmclock: v.kvmclock, realtime } : null;
}

/**
 * kernelRead() on an x86 VM state (every read at an instant at or after the state's last
 * event and before the next), or null where the state needs the emulated kernel at each read: arm64,
 * or a vCPU in software TSC catch-up (its reads depend on the guest's ticks since the last event).
 */
export function stateReader(rec: VmRecord, host: HostState): ((t: bigint) => Reading) | null {
  const vm = rec.x86;
  const v0 = vm?.vcpus[0];
  const caps = rec.host.x86;
  if (!vm || !v0 || !caps || vm.vcpus.some((v) => v.running && v.tscAlwaysCatchup)) return null;
  // hostCounter(): the counter at true time t
  const ic = host.initialCounter;
  const hz = host.actualCounterHz;
  // kvm_read_l1_tsc() → kvm_scale_tsc(): unchanged at the default ratio, else mul_u64_u64_shr(tsc, ratio, frac)
  const off = v0.l1TscOffset;
  const ratio = v0.l1TscScalingRatio;
  const frac = cIntArg(caps.fracBits, 'u8', 'fracBits');
  const scaled = ratio !== 1n << frac;
  // __pvclock_read_cycles(): system_time + pvclock_scale_delta(tsc − tsc_timestamp)
  const p = v0.pvti;
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
