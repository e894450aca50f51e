// A handler: a plain async function of a JSON request and a context, returning a JSON response.
// Validation, idempotency (requestId), retries on conflict and error mapping live here once.
import type { z } from 'zod';
import { toJson } from '../machines/codec.js';
import { CODE_VERSION } from '../machines/version.js';
import type { Session } from '../machines/session.js';
import type { AsyncEventStore } from '../store/async-types.js';
import type { PgEventStore } from '../store/postgres-event-store.js';
import type { EventStore, WrittenEvent } from '../store/types.js';
import type { JsonOf } from '../lib/json-of.js';
import { asyncLogFor, DEFAULT_DB, engineOf, logFor, pgStoreFor, storeFor, type HandlerContext, type StoreAccess } from './context.js';
import { requestFingerprint } from './fingerprint.js';
import { HandlerError, toErrorBody, type ErrorBody } from './errors.js';
import { boundedRequest, UnreadableRequestError } from './limits.js';
import { REGISTRY, type HandlerName } from './registry.js';

export type HandlerResponse = ({ ok: true } & Record<string, unknown>) | { ok: false; error: ErrorBody };
export type Handler = (request: unknown, ctx?: HandlerContext) => Promise<HandlerResponse>;

/** The answer of a handler that completed: ok, and what its run() returned, as JSON (u64s as decimal strings). */
export type OkResponse<Out> = { ok: true } & JsonOf<Out>;
/** The answer of a handler that refused the request. */
export type ErrorResponse = { ok: false; error: ErrorBody };
/** What a run() returns: the fields of the answer (ok is added), bigints and all. */
type Out = object;

export interface HandlerEnv {
  /** the SQLite store (a PostgreSQL ledger is read through log()) */
  store: EventStore;
  /** the database file the context names (undefined when the context passes an open store) */
  db?: string;
  /** the log to read, synchronously: the SQLite store, or the PostgreSQL ledger caught up to its head */
  log(): Promise<EventStore>;
  /** the log as an asynchronous store, on its own engine (verify, fork) */
  asyncLog(): Promise<AsyncEventStore>;
  /** the engine the log is on */
  engine: 'sqlite' | 'postgres';
  /** the context the handler was called with (to call other handlers on the same log) */
  context: HandlerContext;
  name: string;
  requestId?: string;
  correlationId?: string;
  onProgress?: (position: number) => void;
  /** every path a request names, and every file a handler makes, must lie in this directory (the Lambda adapter sets it) */
  forkDir?: string;
  /**
   * Run a use case that records events: atomically, idempotently, retried on conflict (after a
   * backoff). Answers what `respond` makes of the work's value, as JSON (as it is stored, so that
   * a retried request answers the same).
   */
  write<T, R extends Out>(work: (s: Session) => T, respond: (value: T, written: WrittenEvent[]) => R): Promise<JsonOf<R>>;
}

export interface HandlerDef<S extends z.ZodTypeAny, O extends Out> {
  /** its name in the registry (handlers/registry.ts), which gives its summary and access */
  name: HandlerName;
  schema: S;
  /** the work; what it returns is the answer (as JSON, with ok: true), and gives the handler's response type */
  run: (req: z.output<S>, env: HandlerEnv) => O | Promise<O>;
}

/**
 * A handler on the cold-start path: its zod schema lives in a module of its own, imported only
 * when a request fails the quick check (the schema then gives the error, the same as ever) or
 * when someone asks for the schema (docs).
 */
export interface LazyHandlerDef<R, O extends Out> {
  name: HandlerName;
  /** the request as the schema parses it when it is plainly valid; undefined: let the schema decide */
  quickParse: (request: unknown) => R | undefined;
  loadSchema: () => Promise<z.ZodTypeAny>;
  run: (req: R, env: HandlerEnv) => O | Promise<O>;
}

/**
 * A handler as defineHandler makes it: an async function of a request (and a context) answering
 * { ok: true, ...what its run() returned } or { ok: false, error }. `O` is what run() returns
 * (ResponseOf in handlers/responses.ts names a handler's answer by its name).
 */
export interface DefinedHandler<O extends Out = Record<string, unknown>> {
  (request: unknown, ctx?: HandlerContext): Promise<OkResponse<O> | ErrorResponse>;
  handlerName: string;
  summary: string;
  /** its request schema; of a lazy handler, once loadSchema() has run (loadAll() runs it for every handler) */
  schema: z.ZodTypeAny;
  loadSchema(): Promise<z.ZodTypeAny>;
  access: StoreAccess;
}

type Parsed = Record<string, unknown> & { requestId?: string; correlationId?: string };

// The session (and the machines behind it) is loaded by the first write, not by a read; once
// loaded, later writes reuse the module rather than asking the loader to resolve it again.
let sessionModule: Promise<typeof import('../machines/session.js')> | undefined;
let asyncPortModule: Promise<typeof import('../machines/session/async-port.js')> | undefined;
let backfillModule: Promise<typeof import('../machines/snapshot-backfill.js')> | undefined;
type Run = (req: any, env: HandlerEnv) => Out | Promise<Out>;

export function defineHandler<S extends z.ZodTypeAny, O extends Out>(def: HandlerDef<S, O>): DefinedHandler<O>;
export function defineHandler<R, O extends Out>(def: LazyHandlerDef<R, O>): DefinedHandler<O>;
export function defineHandler(def: HandlerDef<z.ZodTypeAny, Out> | LazyHandlerDef<unknown, Out>): DefinedHandler<Out> {
  if ('schema' in def) {
    const schema = def.schema;
    return build(def.name, (request) => schema.parse(request) as Parsed, def.run, { schema, loadSchema: async () => schema });
  }
  let schema: z.ZodTypeAny | undefined;
  const loadSchema = async () => (schema ??= await def.loadSchema());
  const parse = async (request: unknown): Promise<Parsed> => (def.quickParse(request) as Parsed | undefined) ?? ((await loadSchema()).parse(request) as Parsed);
  return build(def.name, parse, def.run, {
    get schema(): z.ZodTypeAny {
      if (!schema) throw new Error(`the schema of ${def.name} is not loaded yet: await loadSchema() first`);
      return schema;
    },
    loadSchema,
  });
}

/**
 * The context as plain data, each field read once (a script may pass any object): db a string,
 * onProgress a function, forkDir a string; an open store is kept as given. A context that cannot
 * be read, or a field of the wrong kind, is invalid_request.
 */
function contextOf(given: HandlerContext | undefined): HandlerContext {
  if (given === undefined || given === null) return {};
  if (typeof given !== 'object') {
    throw new HandlerError('invalid_request', `(context): expected an object { db?, store?, onProgress? }, not ${typeof given}`, { field: '(context)' });
  }
  const read: Record<string, unknown> = {};
  for (const k of ['db', 'store', 'onProgress', 'forkDir'] as const) {
    try {
      read[k] = given[k];
    } catch {
      throw new UnreadableRequestError(`(context).${k}`, 'a getter or Proxy of it threw');
    }
  }
  const kinds = { db: 'string', store: 'object', onProgress: 'function', forkDir: 'string' } as const;
  const ctx: Record<string, unknown> = {};
  for (const [k, kind] of Object.entries(kinds)) {
    const v = read[k];
    if (v === undefined) continue;
    if (typeof v !== kind || v === null) {
      const expected = k === 'store' ? 'an open EventStore' : `a ${kind}`;
      throw new HandlerError('invalid_request', `(context).${k}: expected ${expected}, not ${v === null ? 'null' : typeof v}`, { field: `(context).${k}` });
    }
    ctx[k] = v;
  }
  return ctx as HandlerContext;
}

/**
 * Reads that touch a few streams: on PostgreSQL they read through a view scoped to what they ask
 * (store/scoped-view.ts: a stream's latest snapshot and the events after it), not a copy of the log.
 */
const SCOPED_READS: ReadonlySet<string> = new Set(['stateAt', 'audit', 'listVms', 'listHosts']);

/** A handler's run; a scoped read on PostgreSQL reads only what it asks (the full view if it wants the whole log). */
async function runRead(
  name: HandlerName,
  access: StoreAccess,
  engine: 'sqlite' | 'postgres',
  ctx: HandlerContext,
  req: Parsed,
  env: HandlerEnv,
  run: Run,
): Promise<unknown> {
  if (engine !== 'postgres' || access !== 'read' || !SCOPED_READS.has(name)) return run(req, env);
  const { ScopedView, runScoped } = await import('../store/scoped-view.js');
  const store = await pgStoreFor(ctx.db!, access);
  // (each stream's first question loads what a rebuild of it reads: the snapshots of this code)
  const view = new ScopedView(store, CODE_VERSION);
  const scopedEnv = Object.assign(Object.create(env) as HandlerEnv, { log: () => Promise.resolve(view) });
  // every statement of the read in one snapshot of the database: the answer cannot straddle two commits
  const r = await store.inOneSnapshot(() => runScoped(view, async () => run(req, scopedEnv)));
  return r ? r.value : run(req, env);
}

function build(
  name: HandlerName,
  parse: (request: unknown) => Parsed | Promise<Parsed>,
  run: Run,
  schemaOf: Pick<DefinedHandler, 'schema' | 'loadSchema'>,
): DefinedHandler<Out> {
  const { summary, access } = REGISTRY[name];
  const fn = async (request: unknown, given?: HandlerContext): Promise<HandlerResponse> => {
    try {
      // plain copies, read once: no getter or Proxy of the caller's is met after this
      const ctx = contextOf(given);
      const req = await parse(boundedRequest(request) ?? {});
      let store: EventStore | undefined;
      const engine = engineOf(ctx);
      const env: HandlerEnv = {
        // opened on first use (handlers that never touch the log need no file)
        get store() {
          return (store ??= storeFor(ctx, access));
        },
        db: ctx.store ? undefined : (ctx.db ?? DEFAULT_DB),
        log: () => (engine === 'sqlite' ? Promise.resolve(env.store) : logFor(ctx, access)),
        asyncLog: () => asyncLogFor(ctx, access),
        engine,
        context: ctx,
        name,
        requestId: req.requestId,
        correlationId: req.correlationId,
        onProgress: ctx.onProgress,
        forkDir: ctx.forkDir,
        async write(work, respond) {
          const fingerprint = req.requestId === undefined ? undefined : requestFingerprint(name, req);
          const meta = { handler: name, requestId: req.requestId, correlationId: req.correlationId ?? req.requestId, fingerprint };
          const { withSession } = await (sessionModule ??= import('../machines/session.js'));
          const engineStore = engine === 'sqlite' ? env.store : await pgStoreFor(ctx.db!, access);
          // (a ledger without its writer's snapshots gets them before its first write here)
          await (await (backfillModule ??= import('../machines/snapshot-backfill.js'))).ensureSnapshots(engineStore, engine);
          const log =
            engine === 'sqlite'
              ? env.store
              : (await (asyncPortModule ??= import('../machines/session/async-port.js'))).asyncLogPort(engineStore as PgEventStore);
          const r = await withSession(log, meta, work, (v, written) => ({ ok: true, ...respond(v, written) }));
          return r.response as JsonOf<ReturnType<typeof respond>>;
        },
      };
      const out = await runRead(name, access, engine, ctx, req, env, run);
      return { ok: true, ...(toJson(out) as Record<string, unknown>) } as OkResponse<Out>;
    } catch (e) {
      return { ok: false, error: toErrorBody(e) } satisfies ErrorResponse;
    }
  };
  return Object.defineProperties(Object.assign(fn, { handlerName: name, summary, access, loadSchema: schemaOf.loadSchema }), {
    schema: Object.getOwnPropertyDescriptor(schemaOf, 'schema')!,
  }) as DefinedHandler<Out>;
}
