// Mistakes in how the emulated kernel is driven (a malformed argument, a vCPU that does not
// exist, a guest instruction on a vCPU that is not running) are thrown, never recorded: they
// are the caller's, not the kernel's. Kernel refusals are results with an errno instead.

export type UsageErrorCode = 'invalid_argument' | 'not_found' | 'invalid_state';

export class KvmUsageError extends Error {
  constructor(
    readonly code: UsageErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'KvmUsageError';
  }
}

export class InvalidArgumentError extends KvmUsageError {
  constructor(field: string, message: string) {
    super('invalid_argument', field, message);
    this.name = 'InvalidArgumentError';
  }
}
