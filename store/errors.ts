// Typed store errors with stable codes (the handlers pass the code through to users).

export type StoreErrorCode = 'conflict' | 'schema_too_new' | 'corrupt' | 'invalid_request' | 'io';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** The stream was not at the version the writer expected: someone else appended first. */
export class ConflictError extends StoreError {
  constructor(
    readonly streamId: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super('conflict', `stream ${streamId} is at version ${actual}, expected ${expected}`, { streamId, expected, actual });
    this.name = 'ConflictError';
  }
}
