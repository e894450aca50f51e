// QEMU on arm64 (target/arm/kvm.c): the virtual counter saved at stop through KVM_REG_ARM_TIMER_CNT
// and written back at start, unless kvm-no-adjvtime.
import { CNT, readCnt, writeCnt } from './arm64-common.js';
import { resumeSource } from './common.js';
import type { Strategy } from './types.js';

interface QemuSaved {
  cnt: Map<number, bigint>;
}

export const qemuArm64: Strategy<QemuSaved, QemuSaved> = {
  name: 'qemu',
  arch: 'arm64',
  summary:
    "QEMU on arm64 (target/arm/kvm.c): by default (kvm-no-adjvtime=off) vm_stop reads every vCPU's KVM_REG_ARM_TIMER_CNT once and " +
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
