// The bounds every request is held to before anything parses or records it, in one place (the
// README's "Limits" lists them). A request beyond one is invalid_request, with details.field
// naming where, and messages quote at most MAX_ECHO_CHARS characters of any value.
// (No imports beyond these: the CLI reads its input with these bounds before loading a handler.)
import { CodedError } from '../lib/coded-error.js';
import { MAX_ECHO_CHARS, preview } from '../kvm/echo.js';

export { MAX_ECHO_CHARS, preview };

/** A request's JSON text (CLI --data or stdin, a Lambda body), checked before JSON.parse. */
export const MAX_REQUEST_BYTES = 1 << 20;
/** Any string in a request (ids, profile specs, paths, decimal integers). */
export const MAX_STRING_LENGTH = 4096;
/** Any object key in a request (field names, option names). */
export const MAX_KEY_LENGTH = MAX_ECHO_CHARS;
/** Objects and arrays inside one another; the deepest request (an ioctl argument) needs 4. */
export const MAX_DEPTH = 32;
/** Reading the log: event data nested deeper (recorded before requests were bounded) is shown as its JSON text. */
export const MAX_SHOWN_DEPTH = 1000;
/** migrate.options: entries, and the length of a string value. */
export const MAX_OPTIONS = 32;
export const MAX_OPTION_LENGTH = 256;

/** A request beyond a bound: invalid_request, details.field saying where and details.limit which. */
export class RequestBoundsError extends CodedError<'invalid_request'> {
  constructor(
    message: string,
    override readonly details: { field: string; limit: string; max: number } & Record<string, unknown>,
  ) {
    super('invalid_request', message, details);
  }
}

/** The request-too-large error, for raw JSON text refused before it is parsed. */
export function requestTooLarge(bytes: number, source: string): RequestBoundsError {
  return new RequestBoundsError(`(request): ${bytes} bytes of JSON is more than the ${MAX_REQUEST_BYTES} allowed (in ${source})`, {
    field: '(request)',
    limit: 'MAX_REQUEST_BYTES',
    max: MAX_REQUEST_BYTES,
    bytes,
    source,
  });
}

const fieldOf = (path: (string | number)[]) => (path.length ? path.join('.') : '(request)');

function refuse(path: (string | number)[], message: string, limit: string, max: number): RequestBoundsError {
  const field = fieldOf(path);
  return new RequestBoundsError(`${field}: ${message}`, { field, limit, max });
}

/**
 * Refuse a request (parsed JSON, or the objects a script passes) beyond MAX_DEPTH, with a string
 * or key beyond its length, or whose JSON would exceed MAX_REQUEST_BYTES. Iterative, linear in
 * the request up to the first bound crossed, and it never converts a value.
 */
export function checkRequestBounds(request: unknown): void {
  // each entry: a value, its depth, and the path to it (built only for containers)
  const stack: { v: unknown; depth: number; path: (string | number)[] }[] = [{ v: request, depth: 0, path: [] }];
  let bytes = 0;
  const count = (n: number) => {
    bytes += n;
    if (bytes > MAX_REQUEST_BYTES) {
      throw refuse([], `more than the ${MAX_REQUEST_BYTES} bytes of JSON a request may take`, 'MAX_REQUEST_BYTES', MAX_REQUEST_BYTES);
    }
  };
  while (stack.length) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > MAX_STRING_LENGTH) {
        throw refuse(path, `a string of ${v.length} characters is longer than the ${MAX_STRING_LENGTH} allowed (${preview(v)})`, 'MAX_STRING_LENGTH', MAX_STRING_LENGTH);
      }
      count(v.length + 2);
    } else if (typeof v === 'bigint') {
      // a bigint is written as its decimal digits: bound them without converting
      if (v >= 1n << 16384n || v <= -(1n << 16384n)) {
        throw refuse(path, `an integer wider than ${MAX_STRING_LENGTH} digits`, 'MAX_STRING_LENGTH', MAX_STRING_LENGTH);
      }
      count(24);
    } else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_DEPTH) throw refuse(path, `nested deeper than ${MAX_DEPTH} levels`, 'MAX_DEPTH', MAX_DEPTH);
      if (Array.isArray(v)) {
        count(2 + v.length);
        for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], depth: depth + 1, path: [...path, i] });
      } else {
        const keys = Object.keys(v);
        count(2 + keys.length);
        for (let i = keys.length - 1; i >= 0; i--) {
          const k = keys[i]!;
          if (k.length > MAX_KEY_LENGTH) {
            throw refuse(path, `a key of ${k.length} characters is longer than the ${MAX_KEY_LENGTH} allowed (${preview(k)})`, 'MAX_KEY_LENGTH', MAX_KEY_LENGTH);
          }
          count(k.length + 3);
          stack.push({ v: (v as Record<string, unknown>)[k], depth: depth + 1, path: [...path, k] });
        }
      }
    } else {
      count(8);
    }
  }
}
