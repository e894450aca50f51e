// The one base of every error a caller can script against: a stable code, a message, and
// optional details. Each layer names its own codes (kvm usage, store, domain, handler); the
// handlers turn any CodedError into { ok: false, error: { code, message, details } } unchanged.
export class CodedError<C extends string = string> extends Error {
  constructor(
    readonly code: C,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
