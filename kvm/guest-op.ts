// What every architecture checks before the guest executes an operation on a vCPU: the vCPU
// exists, the operation is one its architecture knows, and the vCPU is in KVM_RUN (a guest
// instruction runs only there).
import { preview } from './args.js';
import { KvmUsageError, requireVcpu } from './errors.js';

/** The running vCPU `vcpuId` and the operation `op`, known to `arch` (its `ops`); a usage error otherwise. */
export function requireGuestOp<V extends { id: number; running: boolean }, Op extends string>(
  vcpus: readonly V[],
  vcpuId: number,
  op: string,
  arch: 'x86' | 'arm64',
  ops: readonly Op[],
): { vcpu: V; op: Op } {
  const vcpu = requireVcpu(vcpus, vcpuId);
  if (!(ops as readonly string[]).includes(op)) {
    throw new KvmUsageError('invalid_argument', 'op', `unknown ${arch} guest operation ${preview(op)} (known: ${ops.join(', ')})`);
  }
  if (!vcpu.running) throw new KvmUsageError('invalid_state', 'vcpu', `vCPU ${vcpu.id} is not in KVM_RUN: the guest cannot execute`);
  return { vcpu, op: op as Op };
}
