// A minimal driver for arm64 kernel-level tests: one host, one VM and a true-time axis (arm64 has
// no delayed clock works, so time just passes).
import { createHost, sampleHost, type HostSpec, type HostState } from '../../kvm/host.js';
import { getProfile, type KernelProfile } from '../../kvm/profiles.js';
import type { IoctlRequest, IoctlResult } from '../../kvm/ioctl.js';
import type { Arm64Ctx, Arm64Vcpu, Arm64Vm } from '../../kvm/arm64/state.js';
import { arm64Ioctl } from '../../kvm/arm64/ioctl.js';
import { kvmArchInitVm, kvmVcpuExitToUser } from '../../kvm/arm64/vm.js';
import { arm64Guest, type Arm64GuestResult } from '../../kvm/arm64/guest.js';

/** 25 MHz, a common CNTFRQ (e.g. Ampere Altra): one tick every 40 ns. */
export const CNTFRQ_25MHZ = 25_000_000n;

export class Arm64Sim {
  t = 0n;
  readonly host: HostState;
  readonly profile: KernelProfile;
  readonly vm: Arm64Vm;

  constructor(profile = 'linux-6.18', spec: Partial<HostSpec> = {}) {
    this.host = createHost({ id: 'h', arch: 'arm64', profile, cntfrqHz: CNTFRQ_25MHZ, ...spec });
    this.profile = getProfile(profile);
    this.vm = kvmArchInitVm(this.ctx());
  }

  ctx(at = this.t): Arm64Ctx {
    return { caps: { ecv: this.host.arm64!.ecv, cntfrqHz: this.host.counterHz }, sw: this.profile.arm64, hw: sampleHost(this.host, at) };
  }

  advance(ns: bigint): void {
    this.t += ns;
  }

  ioctl(ioctl: string, arg?: unknown, vcpu?: number): IoctlResult {
    return arm64Ioctl(this.ctx(), this.vm, { ioctl, arg, vcpu } as IoctlRequest);
  }

  guest(vcpu: number, op: string): Arm64GuestResult {
    return arm64Guest(this.ctx(), this.vm, { vcpu, op });
  }

  /** CNTPCT_EL0 of the host now */
  hostCounter(): bigint {
    return sampleHost(this.host, this.t).tsc;
  }

  vcpu(id: number): Arm64Vcpu {
    return this.vm.vcpus.find((v) => v.id === id)!;
  }

  pause(vcpu: number): void {
    kvmVcpuExitToUser(this.vcpu(vcpu));
  }

  /** KVM_GET_ONE_REG's value */
  getReg(vcpu: number, id: unknown): bigint {
    const r = this.ioctl('KVM_GET_ONE_REG', { id }, vcpu);
    if (r.ret !== 0) throw new Error(`KVM_GET_ONE_REG ${String(id)} failed: ${r.errno}`);
    return r.out!.value as bigint;
  }
}
