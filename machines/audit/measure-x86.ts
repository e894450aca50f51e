// The x86 measurement: each vCPU's TSC and the boot vCPU's kvmclock across the stop, the vCPU skew,
// the master clock, and the rates the guest's TSC and kvmclock really run at.
import { hvclockToHz, scaleTsc } from '../../kvm/arith.js';
import type { HostState } from '../../kvm/host.js';
import { s64 } from '../../kvm/u64.js';
import type { IoctlIssuedData } from '../vm/events.js';
import type { VmRecord } from '../vm/evolve.js';
import { guestClocksAt } from '../vm/view.js';
import type { AuditFrame } from './frame.js';
import { ppbAsMsPerDay } from '../../lib/units.js';
import { spread } from './magnitudes.js';
import { counterAdvances, highest, lowest, NO_CITATIONS, setsMsr, type Measurement } from './measure.js';

/** Whether an ioctl wrote a guest TSC: a host IA32_TSC write (by number or name) or a KVM_VCPU_TSC_OFFSET. */
function writesTsc(d: IoctlIssuedData): boolean {
  if (d.ioctl === 'KVM_SET_MSRS') return setsMsr(d.arg, ['MSR_IA32_TSC']);
  if (d.ioctl === 'KVM_SET_DEVICE_ATTR') {
    const attr = (d.arg as { attr?: unknown } | null)?.attr;
    return attr === 0 || attr === 'KVM_VCPU_TSC_OFFSET' || attr === '0';
  }
  return false;
}

/** The rate the guest TSC ticks at between two clock updates: the host counter's actual Hz through the vCPU's ratio. */
export function guestTscTickHz(rec: VmRecord, host: HostState): bigint {
  const v = rec.x86?.vcpus[0];
  if (!v || !host.x86) return 0n;
  return scaleTsc(host.actualCounterHz, v.l1TscScalingRatio, host.x86.fracBits);
}

/**
 * The guest TSC's real rate on a host, over many ticks. A vCPU in software catch-up
 * (tsc_always_catchup) is pulled to compute_guest_tsc() at every tick's exit: without a master
 * clock to compute_guest_tsc(now), its virtual rate on the host's raw clock; with one to
 * compute_guest_tsc(master_kernel_ns), the same target every time, so it keeps the host's rate.
 */
export function guestTscHz(rec: VmRecord, host: HostState): bigint {
  const v = rec.x86?.vcpus[0];
  if (!v || !host.x86) return 0n;
  if (v.tscAlwaysCatchup) {
    if (rec.x86!.useMasterClock) return guestTscTickHz(rec, host);
    const virtualHz = BigInt(v.virtualTscKhz) * 1000n;
    // raw_ns follows the host TSC's real rate when it is the clocksource
    return host.counterClocksource ? (virtualHz * host.actualCounterHz) / host.counterHz : virtualHz;
  }
  if (v.tscCatchup) return BigInt(v.virtualTscKhz) * 1000n;
  return guestTscTickHz(rec, host);
}

/**
 * kvmclock's drift (ppb) for a pvclock encoding pvHz: it runs at the guest TSC's rate between
 * page updates over pvHz. Under catch-up that is the host's rate, not the caught-up one: every
 * tick's kvm_guest_time_update() rebases the page on the host clock (or, with the master clock,
 * the TSC is not caught up past the reference point), so kvmclock keeps the host's time.
 */
export function pvclockDriftPpb(rec: VmRecord, host: HostState, pvHz: bigint): bigint {
  const v = rec.x86?.vcpus[0];
  const hz = v?.tscAlwaysCatchup ? guestTscTickHz(rec, host) : guestTscHz(rec, host);
  return ((hz - pvHz) * 1_000_000_000n) / pvHz;
}

export function measureX86(f: AuditFrame): Measurement {
  const { before, after, stopTime, elapsedNs } = f;
  const khz = before.rec.x86?.vcpus[0]?.virtualTscKhz ?? 0;
  const nominalHz = BigInt(khz) * 1000n;
  const g0 = guestClocksAt(before.rec, before.host, stopTime);
  const g1 = after ? guestClocksAt(after.rec, after.host, after.time) : null;
  const tscs = (g: typeof g0) => g.vcpus.map((v) => ({ vcpu: v.vcpu, value: v.tsc }));
  const vcpus = counterAdvances(tscs(g0), g1 && tscs(g1), nominalHz, elapsedNs);

  // kvmclock as the boot vCPU's guest reads it through its pvclock page; a guest that never
  // enabled kvmclock does not use it, so nothing is judged about it
  const kvmBefore = g0.vcpus[0]?.kvmclock ?? null;
  const kvmAfter = g1 ? (g1.vcpus[0]?.kvmclock ?? null) : null;
  const kvmAdvance = kvmBefore !== null && kvmAfter !== null ? s64(kvmAfter - kvmBefore) : null;
  const kvmError = kvmAdvance !== null ? kvmAdvance - elapsedNs : null;
  const step = kvmError !== null && vcpus[0] ? kvmError - vcpus[0].tscErrorNs : null;
  const skewBefore = spread(g0.vcpus.map((v) => v.tsc));

  // Rates: the guest TSC's real rate against its nominal one, and kvmclock's pvclock rate against the TSC's.
  const side = after ?? before;
  const tscHz = guestTscHz(side.rec, side.host);
  const tscDriftPpb = nominalHz ? ((tscHz - nominalHz) * 1_000_000_000n) / nominalHz : 0n;
  const page = side.rec.x86?.vcpus[0]?.pvti;
  const pvHz = page ? hvclockToHz(page.mul, page.shift) : null;
  // kvmclock runs fast when the pvclock encodes a lower frequency than the TSC really has
  const pvDriftPpb = pvHz && tscHz ? pvclockDriftPpb(side.rec, side.host, pvHz) : null;

  return {
    arch: 'x86',
    counter: { one: 'TSC', many: 'guest TSCs', unit: 'cycles' },
    guestTscKhz: khz,
    vcpus,
    kvmclock: { before: kvmBefore, after: kvmAfter, advanceNs: kvmAdvance, errorNs: kvmError },
    kvmclockMinusTscStepNs: step,
    skewCycles: { before: skewBefore, after: g1 ? spread(g1.vcpus.map((v) => v.tsc)) : skewBefore },
    masterClock: { before: before.rec.x86?.useMasterClock ?? false, after: after?.rec.x86?.useMasterClock ?? false },
    pvclock: page ? { frequencyHz: pvHz, guestTscHz: tscHz, driftPpb: pvDriftPpb, msPerDay: pvDriftPpb !== null ? ppbAsMsPerDay(pvDriftPpb) : null } : null,
    tscFrequency: { nominalHz, actualHz: tscHz, driftPpb: tscDriftPpb, msPerDay: ppbAsMsPerDay(tscDriftPpb) },
    highestBefore: highest(g0.vcpus.map((v) => v.tsc)),
    lowestAfter: g1 ? lowest(g1.vcpus.map((v) => v.tsc)) : null,
    cites: {
      ...NO_CITATIONS,
      counterWrites: f.ioctls((d) => d.ioctl === 'KVM_SET_TSC_KHZ' || writesTsc(d)),
      readsAfterResume: f.vmEvents.filter((e) => e.type === 'GuestExecuted' && after && e.time >= after.time).map((e) => e.position),
      kvmclockWrites: f.ioctls((d) => d.ioctl === 'KVM_SET_CLOCK' || d.ioctl === 'KVM_SET_CLOCK_GUEST'),
      kvmclockCtrl: f.ioctls((d) => d.ioctl === 'KVM_KVMCLOCK_CTRL'),
    },
  };
}
