// The kernel model's public shape: both architectures' kernel functions under their kernel names,
// told apart by namespace; the plumbing they share in kvm/ioctl.ts; the earlier flat names kept.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as kvm from '../../kvm/index.js';
import { Arm64Sim } from './arm64-sim.js';
import { X86Sim } from './sim.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../kvm');

describe('kvm/index.ts', () => {
  it('kvm_arch_init_vm() is x86.kvmArchInitVm and arm64.kvmArchInitVm, each building its own VM', () => {
    const a = new Arm64Sim();
    const arm = kvm.arm64.kvmArchInitVm(a.ctx());
    expect(arm).toEqual({ arch: 'arm64', voffset: 0n, poffset: 0n, counterOffsetUsed: false, timerOffsetEnabled: false, vcpus: [] });
    const x = new X86Sim();
    const vm = kvm.x86.kvmArchInitVm(x.ctx());
    expect(vm.arch).toBe('x86');
    expect(vm.vcpus).toEqual([]);
    expect(kvm.arm64.KVM_MAX_VCPUS).toBe(512);
    expect(kvm.x86.KVM_MAX_VCPUS).toBe(1024);
  });

  it('the arm64 KVM_CHECK_EXTENSION and vCPU creation answer through the shared router', () => {
    const a = new Arm64Sim('linux-6.18');
    expect(a.ioctl('KVM_CHECK_EXTENSION', 'KVM_CAP_COUNTER_OFFSET')).toEqual({ ret: 1 });
    expect(a.ioctl('KVM_CREATE_VCPU', 512)).toEqual({ ret: -1, errno: 'EINVAL' }); // id ≥ KVM_MAX_VCPU_IDS
    expect(kvm.arm64.kvmVmIoctlCheckExtension(a.ctx(), kvm.CAPS.KVM_CAP_TSC_CONTROL)).toBe(0);
  });

  it('exposes each architecture’s kernel functions only under its namespace, not as prefixed flat names', () => {
    const flat = kvm as unknown as Record<string, unknown>;
    for (const name of ['arm64InitVm', 'arm64CheckExtension', 'ARM64_KVM_MAX_VCPUS', 'kvmArchInitVm', 'x86Ioctl']) expect(flat[name]).toBeUndefined();
    expect(kvm.arm64.KVM_MAX_VCPUS).toBe(512);
    expect(kvm.x86.kvmArchInitVm).not.toBe(kvm.arm64.kvmArchInitVm);
    expect(kvm.parseIoctlName('KVM_GET_CLOCK')).toBe('KVM_GET_CLOCK');
  });

  it('no arm64 module imports from kvm/x86', () => {
    const dir = join(root, 'arm64');
    const offenders = readdirSync(dir).filter((f) => /from '\.\.\/x86\//.test(readFileSync(join(dir, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
