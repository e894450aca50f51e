// Pieces the arm64 strategies share (KVM.md §10, VMM.md "arm64"): the guest's virtual counter read
// and written through KVM_REG_ARM_TIMER_CNT, and the VM-wide KVM_ARM_SET_COUNTER_OFFSET (6.4+).
// KVM never rescales counters: CNTFRQ is the host's, so a move between hosts of different CNTFRQ
// changes the guest's counter rate unless the VMM refuses it.
import { hostCounter, hostRealtimeNs } from '../../../kvm/host.js';
import { u64 } from '../../../kvm/u64.js';
import type { VmmPort } from '../port.js';

export const CNT = 'KVM_REG_ARM_TIMER_CNT';

export function readCnt(p: VmmPort, step: string, vcpu: number): bigint {
  return BigInt(p.must(step, 'source', vcpu, 'KVM_GET_ONE_REG', { id: CNT }).out!.value as string);
}

export function writeCnt(p: VmmPort, step: string, vcpu: number, value: bigint): void {
  p.must(step, 'destination', vcpu, 'KVM_SET_ONE_REG', { id: CNT, value: u64(value).toString() });
}

/** The destination's kernel has the VM-wide counter offset (6.4+). */
export function hasCounterOffset(p: VmmPort): boolean {
  return p.ioctl('destination', null, 'KVM_CHECK_EXTENSION', 'KVM_CAP_COUNTER_OFFSET').ret > 0;
}

export function ticksIn(ns: bigint, hz: bigint): bigint {
  return (ns * hz) / 1_000_000_000n;
}

export interface OffsetSaved {
  /** the guest's virtual counter at the save, and the host counter it was read against */
  cnt: bigint;
  realtime: bigint;
  vcpus: number[];
}

/** The guest's virtual counter at the save, through the boot vCPU. */
export function saveCounter(p: VmmPort): OffsetSaved {
  const vcpus = p.vcpuIds('source');
  const realtime = hostRealtimeNs(p.host('source'), p.now()); // the instant the counter is read at
  return { cnt: readCnt(p, 'save', vcpus[0] ?? 0), realtime, vcpus };
}

/** KVM_ARM_SET_COUNTER_OFFSET so the guest counter reads `target` now on the destination. */
export function setCounterOffset(p: VmmPort, target: bigint): void {
  const host = hostCounter(p.host('destination'), p.now());
  p.must('restore', 'destination', null, 'KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: u64(host - target).toString(), reserved: 0 });
}
