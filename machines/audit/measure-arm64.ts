// The arm64 measurement: each vCPU's virtual counter (CNTVCT, in the report's vcpus[]) and physical
// counter (CNTPCT) across the stop, CNTVCT − CNTPCT, the host counter's real rate against CNTFRQ,
// and the physical counter's traps on a host without FEAT_ECV.
import { physCounterTrapped } from '../../kvm/arm64/timer.js';
import { sampleHost } from '../../kvm/host.js';
import { s64 } from '../../kvm/u64.js';
import { arm64Ctx } from '../vm/evolve.js';
import { guestCountersAt, type CounterView } from '../vm/view.js';
import type { AuditFrame } from './frame.js';
import { ppbAsMsPerDay } from '../../lib/units.js';
import { spread } from './magnitudes.js';
import { counterAdvances, highest, lowest, NO_CITATIONS, type Measurement } from './measure.js';
import type { AuditThresholds } from './thresholds.js';

const TRACE_IGNORED_WRITE = 'clockledger_arm_counter_write_ignored';

export function measureArm64(f: AuditFrame, th: AuditThresholds): Measurement {
  const { before, after, stopTime, elapsedNs } = f;
  const hz = before.rec.host.counterHz;
  const c0 = guestCountersAt(before.rec, before.host, stopTime);
  const c1 = after ? guestCountersAt(after.rec, after.host, after.time) : c0;
  const virt = (c: CounterView[]) => c.map((v) => ({ vcpu: v.vcpu, value: v.cntvct }));
  const phys = (c: CounterView[]) => c.map((v) => ({ vcpu: v.vcpu, value: v.cntpct }));
  const vcpus = counterAdvances(virt(c0), virt(c1), hz, elapsedNs);
  const physical = counterAdvances(phys(c0), phys(c1), hz, elapsedNs).map((p) => ({
    vcpu: p.vcpu,
    before: p.tscBefore,
    after: p.tscAfter,
    advance: p.tscAdvance,
    errorTicks: p.tscErrorCycles,
    errorNs: p.tscErrorNs,
  }));
  const vmp = { before: c0[0] ? s64(c0[0].cntvct - c0[0].cntpct) : 0n, after: c1[0] ? s64(c1[0].cntvct - c1[0].cntpct) : 0n };
  const ignored = f.vmEvents
    .filter((e) => ((e.data as { trace?: { tp: string }[] }).trace ?? []).some((t) => t.tp === TRACE_IGNORED_WRITE))
    .map((e) => e.position);

  const side = after ?? before;
  const dstVm = side.rec.arm64!;
  // the guest's CNTPCT reads during the migration that trapped (the verification reads included)
  const trapped = f.vmEvents.filter((e) => e.type === 'GuestExecuted' && (e.data as { result?: { trapped?: boolean } }).result?.trapped === true).length;
  const ctx = arm64Ctx(side.rec, sampleHost(side.host, side.time));
  const trapping = dstVm.vcpus.some((v) => physCounterTrapped(ctx, dstVm, v));
  const driftPpb = ((side.host.actualCounterHz - hz) * 1_000_000_000n) / hz;

  return {
    arch: 'arm64',
    counter: { one: 'virtual counter', many: 'virtual counters', unit: 'ticks' },
    guestTscKhz: Number(hz / 1000n),
    vcpus,
    kvmclock: { before: null, after: null, advanceNs: null, errorNs: null },
    kvmclockMinusTscStepNs: null,
    skewCycles: { before: spread(c0.map((v) => v.cntvct)), after: spread(c1.map((v) => v.cntvct)) },
    masterClock: { before: false, after: false },
    pvclock: null,
    tscFrequency: { nominalHz: hz, actualHz: side.host.actualCounterHz, driftPpb, msPerDay: ppbAsMsPerDay(driftPpb) },
    arm64: {
      cntfrqHz: hz,
      physical,
      virtualMinusPhysical: vmp,
      trappedPhysReads: trapped,
      physTrapping: trapping,
      trapCostNs: th.trapCostNs,
      trapOverheadNs: BigInt(trapped) * th.trapCostNs,
      ignoredCounterWrites: ignored.length,
    },
    highestBefore: highest(c0.map((v) => v.cntvct)),
    lowestAfter: after ? lowest(c1.map((v) => v.cntvct)) : null,
    cites: {
      ...NO_CITATIONS,
      counterWrites: f.ioctls((d) => d.ioctl === 'KVM_SET_ONE_REG' || d.ioctl === 'KVM_ARM_SET_COUNTER_OFFSET' || d.ioctl === 'KVM_SET_DEVICE_ATTR'),
      ignoredWrites: ignored,
    },
  };
}
