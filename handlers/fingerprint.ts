// What a request asked, as a hash stored with its request id: a retry of the same request gets the
// stored answer, the same id with a different request is refused.
import { hash } from 'node:crypto';
import { toSortedJson } from '../machines/codec.js';

/** sha256 of the handler name and the parsed request (canonical JSON) without its requestId. */
export function requestFingerprint(handler: string, req: Record<string, unknown>): string {
  const { requestId: _id, ...rest } = req;
  return hash('sha256', `${handler}\n${JSON.stringify(toSortedJson(rest))}`, 'hex');
}
