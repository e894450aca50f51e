// The stable error codes of { ok: false, error: { code } }, as a list (for help texts, docs and
// status tables) and as a type. Nothing imported here, so the CLI's help costs nothing extra.
export const ERROR_CODES = [
  'invalid_request',
  'invalid_argument',
  'not_found',
  'invalid_state',
  'conflict',
  'schema_too_new',
  'corrupt',
  'not_a_ledger',
  'io',
  'invalid_trace',
  'unknown_handler',
  'response_too_large',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];
