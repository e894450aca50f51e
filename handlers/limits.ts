// The bounds every request is held to before anything parses or records it, in one place (the
// docs/guide.md's "Limits" lists them). A request beyond one is invalid_request, with details.field
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
/** Keys of any one object in a request (migrate.options has its own, smaller bound). */
export const MAX_OBJECT_KEYS = 4096;
/** Array fields whose every element costs real work (profile specs, strategy names): their length. */
export const MAX_LIST_ITEMS = 64;
/** migrate.options: entries, and the length of a string value. */
export const MAX_OPTIONS = 32;
export const MAX_OPTION_LENGTH = 256;

/**
 * An answer's JSON under the Lambda adapter (handlers/lambda.ts), as the runtime posts it: AWS
 * Lambda's synchronous invocation payload limit, 6 MB for the request and for the response (AWS
 * Lambda Developer Guide, "Lambda quotas"; API reference, Invoke: "For synchronous invocations, the
 * maximum payload size is 6 MB"). The runtime refuses a larger response with "Exceeded maximum
 * allowed payload size (6291556 bytes)"; 6 MiB stays within it. CLOCKLEDGER_MAX_RESPONSE_BYTES
 * sets another bound (a gateway in front that allows less; a runtime without the limit).
 */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

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

/** A request that cannot be read: a getter or a Proxy trap threw while it was copied. */
export class UnreadableRequestError extends CodedError<'invalid_request'> {
  constructor(field: string, reason: string) {
    super('invalid_request', `${field}: cannot be read (${reason}): give plain JSON values`, { field, unreadable: true });
  }
}

/** What a thrown value says, read without trusting it (it may itself be a Proxy that throws). */
function thrownText(e: unknown): string {
  try {
    if (e instanceof Error) return preview(String(e.message));
    return typeof e === 'string' ? preview(e) : `threw ${e === null ? 'null' : typeof e}`;
  } catch {
    return 'threw a value that cannot be read either';
  }
}

/**
 * The request as plain data: a copy of it (parsed JSON, or the objects a script passes) made by
 * reading each property once, so that nothing after it meets a getter or a Proxy (one that
 * throws, or answers differently each time it is asked), refused as invalid_request, naming where,
 * if it cannot be read. Arrays are copied as arrays, every other object as a plain object of its
 * own enumerable string keys (an object's "__proto__" key stays an own key); strings, numbers,
 * booleans, bigints, null and undefined as they are. On the way it refuses a request beyond
 * MAX_DEPTH, with a string or key beyond its length, an object with more than MAX_OBJECT_KEYS
 * keys, or whose JSON would exceed MAX_REQUEST_BYTES. Iterative, linear in the request up to the
 * first bound crossed, and it never converts a value.
 */
export function boundedRequest(request: unknown): unknown {
  const root: { v: unknown } = { v: undefined };
  // each entry: a value, its depth, the path to it, and where its copy goes
  const stack: { v: unknown; depth: number; path: (string | number)[]; into: Record<string | number, unknown>; key: string | number }[] = [
    { v: request, depth: 0, path: [], into: root as Record<string, unknown>, key: 'v' },
  ];
  let bytes = 0;
  let crossed: RequestBoundsError | undefined;
  const bound = (e: RequestBoundsError) => (crossed = e);
  const count = (n: number) => {
    bytes += n;
    if (bytes > MAX_REQUEST_BYTES) {
      throw bound(refuse([], `more than the ${MAX_REQUEST_BYTES} bytes of JSON a request may take`, 'MAX_REQUEST_BYTES', MAX_REQUEST_BYTES));
    }
  };
  const put = (into: Record<string | number, unknown>, key: string | number, value: unknown) => {
    if (key === '__proto__') Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
    else into[key] = value;
  };
  while (stack.length) {
    const { v, depth, path, into, key } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > MAX_STRING_LENGTH) {
        throw refuse(
          path,
          `a string of ${v.length} characters is longer than the ${MAX_STRING_LENGTH} allowed (${preview(v)})`,
          'MAX_STRING_LENGTH',
          MAX_STRING_LENGTH,
        );
      }
      count(v.length + 2);
      put(into, key, v);
    } else if (typeof v === 'bigint') {
      // a bigint is written as its decimal digits: bound them without converting
      if (v >= 1n << 16384n || v <= -(1n << 16384n)) {
        throw refuse(path, `an integer wider than ${MAX_STRING_LENGTH} digits`, 'MAX_STRING_LENGTH', MAX_STRING_LENGTH);
      }
      count(24);
      put(into, key, v);
    } else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_DEPTH) throw refuse(path, `nested deeper than ${MAX_DEPTH} levels`, 'MAX_DEPTH', MAX_DEPTH);
      let entries: [string | number, unknown][];
      let copy: Record<string | number, unknown>;
      // where a read that throws is reported: the container, or the element being read
      let at: string | number | undefined;
      try {
        if (Array.isArray(v)) {
          const length = v.length;
          // counted before anything is allocated for it (a Proxy may claim any length)
          count(2 + (Number.isSafeInteger(length) && length >= 0 ? length : MAX_REQUEST_BYTES + 1));
          copy = new Array(length) as unknown as Record<number, unknown>;
          entries = [];
          for (let i = 0; i < length; i++) {
            at = i;
            entries.push([i, v[i]]);
          }
        } else {
          const keys = Object.keys(v);
          count(2 + keys.length);
          if (keys.length > MAX_OBJECT_KEYS) {
            throw bound(refuse(path, `an object of ${keys.length} keys has more than the ${MAX_OBJECT_KEYS} allowed`, 'MAX_OBJECT_KEYS', MAX_OBJECT_KEYS));
          }
          copy = {};
          entries = [];
          for (const k of keys) {
            if (k.length > MAX_KEY_LENGTH) {
              const message = `a key of ${k.length} characters is longer than the ${MAX_KEY_LENGTH} allowed (${preview(k)})`;
              throw bound(refuse(path, message, 'MAX_KEY_LENGTH', MAX_KEY_LENGTH));
            }
            count(k.length + 3);
            at = k;
            entries.push([k, (v as Record<string, unknown>)[k]]);
          }
        }
      } catch (e) {
        // (a bound of ours is recognised by identity: instanceof would ask a thrown Proxy its prototype)
        if (e === crossed) throw e;
        throw new UnreadableRequestError(fieldOf(at === undefined ? path : [...path, at]), thrownText(e));
      }
      put(into, key, copy);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, x] = entries[i]!;
        stack.push({ v: x, depth: depth + 1, path: [...path, k], into: copy, key: k });
      }
    } else {
      count(8);
      put(into, key, v);
    }
  }
  return root.v;
}

/** Refuse a request beyond a bound (boundedRequest without keeping the copy). */
export function checkRequestBounds(request: unknown): void {
  boundedRequest(request);
}
