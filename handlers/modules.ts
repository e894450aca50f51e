// The handlers' code, loaded on demand: each use-case module is imported the first time one of its
// handlers is asked for, so a cold start (a Lambda invocation, `clockledger invoke`) loads the one
// module it needs. Which module defines which handler is the registry's (registry.ts).
import type { DefinedHandler } from './define.js';
import { HANDLER_NAMES, isHandlerName, REGISTRY, type HandlerName, type ModuleName } from './registry.js';

type Module = Record<string, unknown>;

/** The use-case modules, each imported on first use. */
export const MODULES: Readonly<Record<ModuleName, () => Promise<Module>>> = {
  hosts: () => import('./use-cases/hosts.js'),
  vms: () => import('./use-cases/vms.js'),
  events: () => import('./use-cases/events.js'),
  log: () => import('./use-cases/log.js'),
  migrations: () => import('./use-cases/migrations.js'),
  replay: () => import('./use-cases/replay.js'),
  demo: () => import('./use-cases/demo.js'),
  traces: () => import('./use-cases/traces.js'),
  export: () => import('./use-cases/export.js'),
  matrix: () => import('./use-cases/matrix.js'),
  life: () => import('./use-cases/life.js'),
  templates: () => import('./use-cases/templates.js'),
};

/** The module that defines a handler, imported (alone) on first use. */
export function moduleOf(name: HandlerName): Promise<Module> {
  return MODULES[REGISTRY[name].module]();
}

const isHandler = (v: unknown): v is DefinedHandler => typeof v === 'function' && typeof (v as DefinedHandler).handlerName === 'string';

/** The handler called `name`, its module alone imported; undefined for a name not in the registry. */
export async function loadHandler(name: string): Promise<DefinedHandler | undefined> {
  if (!isHandlerName(name)) return undefined;
  const h = (await moduleOf(name))[name];
  return isHandler(h) ? h : undefined;
}

/** Every handler, by name, in the registry's order (imports every module), each with its schema loaded. */
export async function loadAll(): Promise<Record<HandlerName, DefinedHandler>> {
  const all = await Promise.all(
    HANDLER_NAMES.map(async (n) => {
      const h = await loadHandler(n);
      await h?.loadSchema(); // a lazy handler's schema too, so `schema` is there to read
      return [n, h] as const;
    }),
  );
  return Object.fromEntries(all) as Record<HandlerName, DefinedHandler>;
}
