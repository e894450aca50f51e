// Pieces the VMM strategies share: reading and writing MSRs by value, QEMU's TSC-frequency
// negotiation, and the arithmetic VMMs do on saved clocks.
import { scaleTsc, tscScalingRatio, tscToleranceWindow } from '../../../kvm/arith.js';
import { KVM_CLOCK_HOST_TSC, KVM_CLOCK_REALTIME, KVM_CLOCK_TSC_STABLE, MSRS } from '../../../kvm/uapi.js';
import { u64 } from '../../../kvm/u64.js';
import type { Json } from '../../codec.js';
import { StepFailure, type IoctlOutcome, type Side, type VmmPort } from '../port.js';
import { vcpusOf } from '../../vm/evolve.js';

export interface ClockData {
  clock: bigint;
  flags: number;
  realtime: bigint;
  hostTsc: bigint;
}

export function clockOut(r: IoctlOutcome): ClockData {
  const o = r.out as Record<string, string | number>;
  return { clock: BigInt(o.clock!), flags: Number(o.flags), realtime: BigInt(o.realtime!), hostTsc: BigInt(o.host_tsc!) };
}

/**
 * KVM_GET_CLOCK for an offset procedure, which needs the (host_tsc, realtime) pair: the kernel gives
 * it only with a master clock on a TSC clocksource, and only from 5.16 (c68dc1b577ea); otherwise a
 * master clock shows as KVM_CLOCK_TSC_STABLE alone.
 */
export function clockWithHostTsc(p: VmmPort, step: string, side: Side): ClockData {
  const r = p.must(step, side, null, 'KVM_GET_CLOCK');
  const c = clockOut(r);
  const need = KVM_CLOCK_HOST_TSC | KVM_CLOCK_REALTIME;
  if ((c.flags & need) !== need) {
    const flags =
      c.flags & KVM_CLOCK_TSC_STABLE
        ? `flags ${c.flags} (KVM_CLOCK_TSC_STABLE: a master clock) without KVM_CLOCK_HOST_TSC|KVM_CLOCK_REALTIME, ` +
          'which the kernel reports only from Linux 5.16 and on a TSC clocksource'
        : `flags ${c.flags}, without KVM_CLOCK_HOST_TSC|KVM_CLOCK_REALTIME (no master clock)`;
    throw new StepFailure(step, `KVM_GET_CLOCK on the ${side} gave ${flags}: the offset procedure cannot pair the host TSC with realtime`, r.ref);
  }
  return c;
}

/** KVM_GET_MSRS of some indices on one vCPU, as a map index → value. */
/** One vCPU's state as a VMM saved it: its MSRs by index (plus what a strategy adds). */
export interface SavedVcpu {
  id: number;
  msrs: Map<number, bigint>;
}

/** What a VMM that keeps the TSC by value saves: every vCPU's MSRs, its kvmclock read and the TSC kHz. */
export interface SavedByValue<Clock> {
  vcpus: SavedVcpu[];
  clock: Clock;
  tscKhz: number;
}

/** What Firecracker and Cloud Hypervisor save: SavedByValue with KVM_GET_CLOCK's answer as it came. */
export type SavedClockByValue = SavedByValue<ClockData>;

/** The TSC and its deadline, the two MSRs every by-value strategy saves and writes back in its own order. */
export const { MSR_IA32_TSC: TSC, MSR_IA32_TSC_DEADLINE: DEADLINE } = MSRS;

export function getMsrs(p: VmmPort, step: string, side: Side, vcpu: number, indices: number[]): Map<number, bigint> {
  const r = p.must(step, side, vcpu, 'KVM_GET_MSRS', { indices });
  const m = new Map<number, bigint>();
  for (const e of (r.out!.entries as { index: number; data: string }[]) ?? []) m.set(e.index, BigInt(e.data));
  return m;
}

/** KVM_SET_MSRS of entries in the given order; every entry must be taken. */
export function setMsrs(p: VmmPort, step: string, side: Side, vcpu: number, entries: [number, bigint][]): IoctlOutcome {
  const r = p.ioctl(side, vcpu, 'KVM_SET_MSRS', { entries: entries.map(([index, data]) => ({ index, data: data.toString() })) });
  if (r.ret !== entries.length) throw new StepFailure(step, `KVM_SET_MSRS on vCPU ${vcpu} took ${r.ret} of ${entries.length} MSRs`, r.ref);
  return r;
}

export const KVMCLOCK_MSRS = [MSRS.MSR_KVM_SYSTEM_TIME_NEW, MSRS.MSR_KVM_WALL_CLOCK_NEW];

/** The kvmclock MSRs as saved (0 for one the source had not set), in KVMCLOCK_MSRS order. */
export const savedKvmclockMsrs = (msrs: ReadonlyMap<number, bigint>): [number, bigint][] => KVMCLOCK_MSRS.map((m) => [m, msrs.get(m) ?? 0n]);

/** Each vCPU's kvmclock MSRs written back on the destination, as the documented procedures do. */
export function restoreKvmclockMsrs(p: VmmPort, vcpus: readonly { id: number; msrs: ReadonlyMap<number, bigint> }[]): void {
  for (const v of vcpus) setMsrs(p, 'restore', 'destination', v.id, savedKvmclockMsrs(v.msrs));
}

/**
 * IA32_TSC_DEADLINE among a source vCPU's saved MSRs when its guest has a deadline set. QEMU, Cloud
 * Hypervisor and Firecracker save and restore it on every vCPU; a zero deadline's read and write
 * change no state (kvm_set_lapic_tscdeadline_msr() with 0 arms nothing on a new vCPU), so the model
 * leaves them out of the log, as it leaves out the MSRs that do not keep time.
 */
export function deadlineIfSet(p: VmmPort, vcpu: number): number[] {
  const v = p.vm('source').x86?.vcpus.find((x) => x.id === vcpu);
  return v && v.tscDeadline !== 0n ? [MSRS.MSR_IA32_TSC_DEADLINE] : [];
}

/**
 * QEMU's kvm_arch_set_tsc_khz(): try KVM_SET_TSC_KHZ when the host can scale or the rate is within
 * 250 ppm; a failure is fatal only if the vCPU's rate is not already the one wanted, and (`fatal`
 * false) not even then: QEMU's incoming migration ignores the error, printing "warning: TSC
 * frequency mismatch ...", unless tsc-frequency was set explicitly (kvm_arch_put_registers()).
 */
export function qemuSetTscKhz(p: VmmPort, step: string, vcpu: number, khz: number, fatal = true): void {
  const cur = p.ioctl('destination', vcpu, 'KVM_GET_TSC_KHZ').ret;
  const scaling = p.ioctl('destination', null, 'KVM_CHECK_EXTENSION', 'KVM_CAP_TSC_CONTROL').ret > 0;
  const { lo, hi } = tscToleranceWindow(BigInt(cur));
  const within = cur > 0 && BigInt(khz) >= lo && BigInt(khz) <= hi;
  const r = scaling || within ? p.ioctl('destination', vcpu, 'KVM_SET_TSC_KHZ', khz) : null;
  if (!r || r.ret < 0) {
    const now = p.ioctl('destination', vcpu, 'KVM_GET_TSC_KHZ').ret;
    if (fatal && (now <= 0 || now !== khz)) {
      throw new StepFailure(step, `TSC frequency mismatch between VM (${khz} kHz) and host (${now} kHz), and TSC scaling unavailable`, r?.ref ?? null);
    }
  }
}

/** The scaling ratio a kernel would use for a guest rate on a host (what KVM_VCPU_TSC_SCALE reports). */
export function expectedRatio(p: VmmPort, side: Side, guestKhz: number): { ratio: bigint; frac: number } {
  const caps = p.host(side).x86!;
  const frac = caps.fracBits;
  const { lo, hi } = tscToleranceWindow(BigInt(caps.tscKhz));
  const k = BigInt(guestKhz);
  const ratio = caps.tscScaling && (k < lo || k > hi) ? tscScalingRatio(k, BigInt(caps.tscKhz), frac) : 1n << BigInt(frac);
  return { ratio, frac };
}

/** A vCPU's scaling ratio: KVM_VCPU_TSC_SCALE where the kernel has it, else what the kernel would compute. */
export function vcpuRatio(p: VmmPort, side: Side, vcpu: number, guestKhz: number): { ratio: bigint; frac: number } {
  const r = p.ioctl(side, vcpu, 'KVM_GET_DEVICE_ATTR', { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_SCALE' });
  if (r.ret === 0) return { ratio: BigInt(r.out!.tsc_ratio as string), frac: Number(r.out!.tsc_frac_bits) };
  return expectedRatio(p, side, guestKhz);
}

export function scaled(tsc: bigint, r: { ratio: bigint; frac: number }): bigint {
  return scaleTsc(tsc, r.ratio, r.frac);
}

/** ns × kHz / 1e6: cycles of a kHz clock in a (signed) number of nanoseconds, truncated toward zero. */
export function cyclesIn(ns: bigint, khz: number): bigint {
  return (ns * BigInt(khz)) / 1_000_000n;
}

export function readOffset(p: VmmPort, step: string, side: Side, vcpu: number): bigint {
  const r = p.must(step, side, vcpu, 'KVM_GET_DEVICE_ATTR', { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET' });
  return BigInt(r.out!.value as string);
}

export function writeOffset(p: VmmPort, step: string, vcpu: number, offset: bigint): void {
  p.must(step, 'destination', vcpu, 'KVM_SET_DEVICE_ATTR', { group: 'KVM_VCPU_TSC_CTRL', attr: 'KVM_VCPU_TSC_OFFSET', value: u64(offset).toString() });
}

/** Resume the source after a refused step: tear down the destination, re-enter KVM_RUN. */
export function resumeSource(p: VmmPort): void {
  p.discardDestination();
  for (const v of vcpusOf(p.vm('source'))) if (!v.running) p.ioctl('source', v.id, 'KVM_RUN');
}

export type { Json };
