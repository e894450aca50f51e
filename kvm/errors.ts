// Mistakes in how the emulated kernel is driven (a malformed argument, a vCPU that does not
// exist, a guest instruction on a vCPU that is not running) are thrown, never recorded: they
// are the caller's, not the kernel's. Kernel refusals are results with an errno instead.

import { CodedError } from '../lib/coded-error.js';

export type UsageErrorCode = 'invalid_argument' | 'not_found' | 'invalid_state';

export class KvmUsageError extends CodedError<UsageErrorCode> {
  constructor(
    code: UsageErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(code, `${field}: ${message}`, { field });
  }
}

export class InvalidArgumentError extends KvmUsageError {
  constructor(field: string, message: string) {
    super('invalid_argument', field, message);
  }
}

/** The vCPU with this id (the fd a VMM would hold), or a not_found usage error listing the ones there are. */
export function requireVcpu<V extends { id: number }>(vcpus: readonly V[], id: number): V {
  const v = vcpus.find((x) => x.id === id);
  if (!v) throw new KvmUsageError('not_found', 'vcpu', `no vCPU ${id} in this VM (vCPUs: ${vcpus.map((x) => x.id).join(', ') || 'none'})`);
  return v;
}
