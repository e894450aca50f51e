// What the guest reads on a running vCPU: its virtual counter CNTVCT_EL0 (CNTVOFF applied by the
// hardware), its physical counter CNTPCT_EL0 (offset by CNTPOFF with ECV, else trapped and
// emulated when there is an offset), and CNTFRQ_EL0 (the host's, never virtualised).
import { requireGuestOp } from '../guest-op.js';
import type { Arm64Ctx, Arm64Vm } from './state.js';
import { guestReadCntpct, guestReadCntvct } from './timer.js';

export const ARM64_GUEST_OPS = ['cntvct', 'cntpct', 'cntfrq'] as const;
export type Arm64GuestOp = (typeof ARM64_GUEST_OPS)[number];

export interface Arm64GuestRequest {
  vcpu: number;
  op: string;
}

/** What the guest observed; `trapped` (cntpct only): the read exited to KVM to be emulated. */
export interface Arm64GuestResult {
  value: bigint;
  trapped?: boolean;
}

/** One guest counter read on a running vCPU. */
export function arm64Guest(ctx: Arm64Ctx, vm: Arm64Vm, req: Arm64GuestRequest): Arm64GuestResult {
  const { vcpu, op } = requireGuestOp(vm.vcpus, req.vcpu, req.op, 'arm64', ARM64_GUEST_OPS);
  switch (op) {
    case 'cntvct':
      return { value: guestReadCntvct(ctx, vm, vcpu) };
    case 'cntpct':
      return guestReadCntpct(ctx, vm, vcpu);
    case 'cntfrq':
      // Programmed by firmware and read straight from the hardware: KVM never rescales the counter.
      return { value: ctx.caps.cntfrqHz };
  }
}
