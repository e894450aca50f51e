// A minimal driver for kernel-level tests: one host, one VM, a true-time axis and the delayed
// works firing at their due instants, with no event log in between.
import { createHost, sampleHost, type HostSpec, type HostState } from '../../kvm/host.js';
import { resolveProfile, type KernelProfile } from '../../kvm/profiles.js';
import type { IoctlRequest, IoctlResult } from '../../kvm/ioctl.js';
import type { X86Ctx, X86Vm } from '../../kvm/x86/state.js';
import { x86Guest, type GuestRequest, type GuestResult } from '../../kvm/x86/guest.js';
import { x86Ioctl } from '../../kvm/x86/ioctl.js';
import { dueTimer, kvmArchInitVm, kvmVcpuExitToUser, runTimer } from '../../kvm/x86/vm.js';

export class X86Sim {
  t = 0n;
  readonly host: HostState;
  readonly profile: KernelProfile;
  readonly vm: X86Vm;

  constructor(spec: Partial<HostSpec> = {}, profile = 'linux-6.18') {
    this.host = createHost({ id: 'h', arch: 'x86', profile, tscKhz: 2_000_000, ...spec });
    this.profile = resolveProfile(profile);
    this.vm = kvmArchInitVm(this.ctx());
  }

  ctx(at = this.t): X86Ctx {
    return { caps: this.host.x86!, sw: this.profile.x86, hw: sampleHost(this.host, at), tscClocksource: this.host.counterClocksource };
  }

  /** Let true time pass, running the delayed works that fall due on the way. */
  advance(ns: bigint): void {
    const end = this.t + ns;
    for (;;) {
      const next = [this.vm.kvmclockUpdateWorkAt, this.vm.kvmclockSyncWorkAt].filter((x): x is bigint => x !== null && x <= end);
      if (!next.length) break;
      const at = next.reduce((a, b) => (a < b ? a : b));
      this.t = at > this.t ? at : this.t;
      const timer = dueTimer(this.vm, this.t)!;
      runTimer(this.ctx(), this.vm, timer);
    }
    this.t = end;
  }

  ioctl(ioctl: string, arg?: unknown, vcpu?: number): IoctlResult {
    return x86Ioctl(this.ctx(), this.vm, { ioctl, arg, vcpu } as IoctlRequest);
  }

  guest(vcpu: number, op: string, extra: Partial<GuestRequest> = {}): GuestResult {
    return x86Guest(this.ctx(), this.vm, { vcpu, op, ...extra });
  }

  hostTsc(): bigint {
    return sampleHost(this.host, this.t).tsc;
  }

  pause(vcpu: number): void {
    kvmVcpuExitToUser(this.vm.vcpus.find((v) => v.id === vcpu)!);
  }
}
