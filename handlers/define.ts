// A handler: a plain async function of a JSON request and a context, returning a JSON response.
// Validation, idempotency (requestId), retries on conflict and error mapping live here once.
import { z } from 'zod';
import { toJson } from '../machines/codec.js';
import type { Session } from '../machines/session.js';
import type { EventStore, WrittenEvent } from '../store/types.js';
import { storeFor, type HandlerContext, type StoreAccess } from './context.js';
import { requestFingerprint } from './fingerprint.js';
import { toErrorBody, type ErrorBody } from './errors.js';
import { checkRequestBounds } from './limits.js';
import { REGISTRY, type HandlerName } from './registry.js';

export type HandlerResponse = ({ ok: true } & Record<string, unknown>) | { ok: false; error: ErrorBody };
export type Handler = (request: unknown, ctx?: HandlerContext) => Promise<HandlerResponse>;

/** Fields every request may carry. */
export const commonFields = {
  /** retrying a request with the same id returns the first response and records nothing again */
  requestId: z.string().min(1).max(200).optional(),
  /** ties the events of several invocations together in their metadata */
  correlationId: z.string().min(1).max(200).optional(),
};

export interface HandlerEnv {
  store: EventStore;
  name: string;
  requestId?: string;
  correlationId?: string;
  onProgress?: (position: number) => void;
  /** fork targets must lie in this directory */
  forkDir?: string;
  /** run a use case that records events: atomically, idempotently, retried on conflict (after a backoff) */
  write<T>(work: (s: Session) => T, respond: (value: T, written: WrittenEvent[]) => Record<string, unknown>): Promise<Record<string, unknown>>;
}

export interface HandlerDef<S extends z.ZodTypeAny> {
  /** its name in the registry (handlers/registry.ts), which gives its summary and access */
  name: HandlerName;
  schema: S;
  run: (req: z.output<S>, env: HandlerEnv) => Record<string, unknown> | Promise<Record<string, unknown>>;
}

export interface DefinedHandler extends Handler {
  handlerName: string;
  summary: string;
  schema: z.ZodTypeAny;
  access: StoreAccess;
}

export function defineHandler<S extends z.ZodTypeAny>(def: HandlerDef<S>): DefinedHandler {
  const { summary, access } = REGISTRY[def.name];
  const fn = async (request: unknown, ctx: HandlerContext = {}): Promise<HandlerResponse> => {
    try {
      checkRequestBounds(request);
      const req = def.schema.parse(request ?? {}) as z.output<S> & { requestId?: string; correlationId?: string };
      let store: EventStore | undefined;
      const env: HandlerEnv = {
        // opened on first use (handlers that never touch the log need no file)
        get store() {
          return (store ??= storeFor(ctx, access));
        },
        name: def.name,
        requestId: req.requestId,
        correlationId: req.correlationId,
        onProgress: ctx.onProgress,
        forkDir: ctx.forkDir,
        async write(work, respond) {
          const fingerprint = req.requestId === undefined ? undefined : requestFingerprint(def.name, req);
          const meta = { handler: def.name, requestId: req.requestId, correlationId: req.correlationId ?? req.requestId, fingerprint };
          // the session (and the machines behind it) is loaded by the first write, not by a read
          const { withSession } = await import('../machines/session.js');
          const r = await withSession(env.store, meta, work, (v, written) => ({ ok: true, ...respond(v, written) }));
          return r.response as Record<string, unknown>;
        },
      };
      const out = await def.run(req, env);
      return { ok: true, ...(toJson(out) as Record<string, unknown>) } as HandlerResponse;
    } catch (e) {
      return { ok: false, error: toErrorBody(e) };
    }
  };
  return Object.assign(fn, { handlerName: def.name, summary, schema: def.schema, access });
}

// ---- shared field schemas -------------------------------------------------------------------

export const idSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'ids are 1-128 letters, digits, dot, underscore, colon or dash');

/** A u64 as a decimal string or safe integer. */
export const u64Field = z.union([z.string().regex(/^[0-9]+$/, 'a non-negative decimal integer'), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.bigint().nonnegative()]).transform((v, ctx) => {
  const b = BigInt(v);
  if (b >= 1n << 64n) {
    ctx.addIssue({ code: 'custom', message: 'does not fit in 64 bits' });
    return z.NEVER;
  }
  return b;
});

/** An s64 as a decimal string or safe integer. */
export const s64Field = z.union([z.string().regex(/^-?[0-9]+$/, 'a decimal integer'), z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER), z.bigint()]).transform((v, ctx) => {
  const b = BigInt(v);
  if (b >= 1n << 63n || b < -(1n << 63n)) {
    ctx.addIssue({ code: 'custom', message: 'does not fit in a signed 64-bit integer' });
    return z.NEVER;
  }
  return b;
});
