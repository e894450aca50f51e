/** A JSON object (not null, not an array): what a parsed request, argument or payload must be before its keys are read. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
