// arm64 VMMs moving the guest's virtual and physical counters (KVM.md §10, VMM.md "arm64").
// KVM never rescales counters: CNTFRQ is the host's, so a move between hosts of different
// CNTFRQ changes the guest's counter rate unless the VMM refuses it.
import { hostCounter, hostRealtimeNs } from '../../../kvm/host.js';
import { u64 } from '../../../kvm/u64.js';
import { StepFailure, type VmmPort } from '../port.js';
import { resumeSource } from './common.js';
import type { Strategy } from './types.js';

const CNT = 'KVM_REG_ARM_TIMER_CNT';

function readCnt(p: VmmPort, step: string, vcpu: number): bigint {
  return BigInt(p.must(step, 'source', vcpu, 'KVM_GET_ONE_REG', { id: CNT }).out!.value as string);
}

function writeCnt(p: VmmPort, step: string, vcpu: number, value: bigint): void {
  p.must(step, 'destination', vcpu, 'KVM_SET_ONE_REG', { id: CNT, value: u64(value).toString() });
}

/** The destination's kernel has the VM-wide counter offset (6.4+). */
function hasCounterOffset(p: VmmPort): boolean {
  return p.ioctl('destination', null, 'KVM_CHECK_EXTENSION', 'KVM_CAP_COUNTER_OFFSET').ret > 0;
}

function ticksIn(ns: bigint, hz: bigint): bigint {
  return (ns * hz) / 1_000_000_000n;
}

interface QemuSaved {
  cnt: Map<number, bigint>;
}

export const qemuArm64: Strategy<QemuSaved, QemuSaved> = {
  name: 'qemu',
  arch: 'arm64',
  summary:
    'QEMU on arm64 (target/arm/kvm.c): by default (kvm-no-adjvtime=off) vm_stop reads every vCPU\'s KVM_REG_ARM_TIMER_CNT once and ' +
    'vm_start writes it back, so the virtual counter stands still while the VM is paused and drifts from the physical counter; ' +
    'with options.kvmNoAdjvtime nothing is written back and the counter jumps by the pause. A migration carries TIMER_CNT in the ' +
    'register list: the destination writes the saved value (per vCPU, the last write wins VM-wide), then again at start unless no-adjvtime.',
  options: { kvmNoAdjvtime: 'let the counter run through pauses (QEMU -cpu ...,kvm-no-adjvtime=on)' },
  pause(p) {
    p.pauseAll('source');
    const cnt = new Map<number, bigint>();
    if (p.params.options.kvmNoAdjvtime !== true) {
      // kvm_arm_get_virtual_time(): once per vCPU at stop, then marked dirty
      p.vcpuIds('source').forEach((id, i) => {
        p.spacing('read', i);
        cnt.set(id, readCnt(p, 'pause', id));
      });
    }
    return { cnt };
  },
  save(p, atStop) {
    if (p.inPlace) return atStop;
    // write_kvmstate_to_list(): without a pinned value the register list reads the counter now
    const cnt = new Map(atStop.cnt);
    p.vcpuIds('source').forEach((id, i) => {
      if (cnt.has(id)) return;
      p.spacing('read', i);
      cnt.set(id, readCnt(p, 'save', id));
    });
    return { cnt };
  },
  restore(p, saved) {
    if (p.inPlace) return;
    const ids = [...saved.cnt.keys()];
    p.createDestination(ids);
    // write_list_to_kvmstate() after the incoming state is loaded
    ids.forEach((id, i) => {
      p.spacing('write', i);
      writeCnt(p, 'restore', id, saved.cnt.get(id)!);
    });
  },
  resume(p, saved) {
    if (p.params.options.kvmNoAdjvtime !== true) {
      // kvm_arm_put_virtual_time() at vm_start: the dirty value once more, per vCPU
      [...saved.cnt.keys()].forEach((id, i) => {
        p.spacing('write', i);
        writeCnt(p, 'resume', id, saved.cnt.get(id)!);
      });
    }
    p.runAll('destination');
  },
  rollback(p, atStop) {
    p.discardDestination();
    if (atStop) for (const [id, v] of atStop.cnt) p.ioctl('source', id, 'KVM_SET_ONE_REG', { id: CNT, value: v.toString() });
    resumeSource(p);
  },
};

interface ChSaved {
  cnt: bigint;
  realtime: bigint;
  cntfrq: bigint;
  vcpus: number[];
}

export const cloudHypervisorArm64: Strategy<ChSaved, void> = {
  name: 'cloud-hypervisor',
  arch: 'arm64',
  summary:
    'Cloud Hypervisor on arm64: saves the boot vCPU\'s KVM_REG_ARM_TIMER_CNT with its own CLOCK_REALTIME; restore writes ' +
    'CNTVCT = saved + elapsed wall time × CNTFRQ, and refuses when the destination\'s CNTFRQ differs (KVM does not rescale ' +
    'counters). It writes vCPU 0 only where the VM-wide counter offset exists (6.4+), every vCPU otherwise.',
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    const vcpus = p.vcpuIds('source');
    // its CLOCK_REALTIME pairs with the counter as read (before the ioctl's own latency)
    const realtime = hostRealtimeNs(p.host('source'), p.now());
    return { cnt: readCnt(p, 'save', vcpus[0] ?? 0), realtime, cntfrq: p.host('source').counterHz, vcpus };
  },
  restore(p, saved) {
    const dstHz = p.host('destination').counterHz;
    if (dstHz !== saved.cntfrq) {
      throw new StepFailure('restore', `the destination's CNTFRQ (${dstHz} Hz) differs from the snapshot's (${saved.cntfrq} Hz): the guest counter would change rate`, null);
    }
    p.createDestination(saved.vcpus);
    const elapsed = hostRealtimeNs(p.host('destination'), p.now()) - saved.realtime;
    const value = saved.cnt + ticksIn(elapsed > 0n ? elapsed : 0n, saved.cntfrq);
    const targets = hasCounterOffset(p) ? saved.vcpus.slice(0, 1) : saved.vcpus;
    targets.forEach((id, i) => {
      p.spacing('write', i);
      writeCnt(p, 'restore', id, value);
    });
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};

interface OffsetSaved {
  /** the guest's virtual counter at the save, and the host counter it was read against */
  cnt: bigint;
  realtime: bigint;
  vcpus: number[];
}

/** The guest's virtual counter at the save, through the boot vCPU. */
function saveCounter(p: VmmPort): OffsetSaved {
  const vcpus = p.vcpuIds('source');
  const realtime = hostRealtimeNs(p.host('source'), p.now()); // the instant the counter is read at
  return { cnt: readCnt(p, 'save', vcpus[0] ?? 0), realtime, vcpus };
}

/** KVM_ARM_SET_COUNTER_OFFSET so the guest counter reads `target` now on the destination. */
function setCounterOffset(p: VmmPort, target: bigint): void {
  const host = hostCounter(p.host('destination'), p.now());
  p.must('restore', 'destination', null, 'KVM_ARM_SET_COUNTER_OFFSET', { counter_offset: u64(host - target).toString(), reserved: 0 });
}

export const crosvmArm64: Strategy<OffsetSaved, void> = {
  name: 'crosvm',
  arch: 'arm64',
  summary:
    'crosvm (Android virtio-pvclock): one VM-wide KVM_ARM_SET_COUNTER_OFFSET that grows by every suspended interval, so the ' +
    'guest counter excludes suspend (the suspended time goes to the guest\'s CLOCK_BOOTTIME separately); a restore sets the ' +
    'offset so the counter continues from its saved value.',
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    return saveCounter(p);
  },
  restore(p, saved) {
    p.createDestination(saved.vcpus);
    // the counter resumes where it stopped: the whole suspension is excluded
    setCounterOffset(p, saved.cnt);
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};

export const counterOffsetArm64: Strategy<OffsetSaved, void> = {
  name: 'counter-offset',
  arch: 'arm64',
  summary:
    'The offset procedure with KVM_ARM_SET_COUNTER_OFFSET (6.4+): the destination sets one VM-wide offset, for both counters, ' +
    'so the guest counter continues from its saved value plus the CLOCK_REALTIME that passed; no per-vCPU counter writes.',
  pause(p) {
    p.pauseAll('source');
  },
  save(p) {
    return saveCounter(p);
  },
  restore(p, saved) {
    if (p.host('destination').counterHz !== p.host('source').counterHz) {
      throw new StepFailure('restore', `the destination's CNTFRQ (${p.host('destination').counterHz} Hz) differs from the source's (${p.host('source').counterHz} Hz)`, null);
    }
    p.createDestination(saved.vcpus);
    const elapsed = hostRealtimeNs(p.host('destination'), p.now()) - saved.realtime;
    setCounterOffset(p, saved.cnt + ticksIn(elapsed > 0n ? elapsed : 0n, p.host('source').counterHz));
  },
  resume(p) {
    p.runAll('destination');
  },
  rollback(p) {
    resumeSource(p);
  },
};
