// A migration strategy: the ioctl sequence one VMM (or one documented procedure) uses to move
// a guest's clock, in its order and with its timing. The kernel model decides what the guest sees.
import type { Arch } from '../../../kvm/host.js';
import type { VmmPort } from '../port.js';

export interface Strategy<S = unknown, P = unknown> {
  name: string;
  arch: Arch;
  /** one paragraph: what the VMM does and what that costs the guest's clock */
  summary: string;
  /** options the strategy reads from params.options */
  options?: Record<string, string>;
  /** the source VMM stops the guest (and may read state at the stop) */
  pause(p: VmmPort): P;
  /** it reads the clock state out of the source kernel */
  save(p: VmmPort, atStop: P): S;
  /** the destination VMM creates the VM and writes the clock state */
  restore(p: VmmPort, saved: S): void;
  /** and lets the vCPUs run */
  resume(p: VmmPort, saved: S): void;
  /** after a refused step: the source VMM resumes the guest where it was */
  rollback(p: VmmPort, atStop: P | null, saved: S | null): void;
}
