// Finding a handler by name without loading more than the command needs: the use-case module
// that defines a handler is imported alone (the cold-start path of `clockledger invoke`), and
// anything else (handlers added later: replay, diff, bisect, demo, ...) comes from the registry
// in handlers/index.ts. A test checks that every fast-path function IS the registry's.
import type { DefinedHandler } from '../define.js';

type Module = Record<string, unknown>;

const hosts = () => import('../use-cases/hosts.js') as Promise<Module>;
const vms = () => import('../use-cases/vms.js') as Promise<Module>;
const log = () => import('../use-cases/log.js') as Promise<Module>;
const migrations = () => import('../use-cases/migrations.js') as Promise<Module>;

/** The module each of today's handlers is defined in. */
export const FAST_PATH: Readonly<Record<string, () => Promise<Module>>> = {
  createHost: hosts,
  advanceTime: hosts,
  adjustRealtime: hosts,
  listHosts: hosts,
  createVm: vms,
  destroyVm: vms,
  listVms: vms,
  ioctl: vms,
  runVcpu: vms,
  pauseVcpu: vms,
  guest: vms,
  events: log,
  stateAt: log,
  verify: log,
  fork: log,
  migrate: migrations,
  audit: migrations,
  strategies: migrations,
};

let loaded = false;

/** The whole registry (handlers/index.ts). */
export async function loadRegistry(): Promise<Record<string, DefinedHandler>> {
  const m = await import('../index.js');
  loaded = true;
  return m.handlers as unknown as Record<string, DefinedHandler>;
}

const isHandler = (v: unknown): v is DefinedHandler => typeof v === 'function' && typeof (v as DefinedHandler).handlerName === 'string';

/** The handler called `name`, or undefined. */
export async function findHandler(name: string): Promise<DefinedHandler | undefined> {
  const fast = Object.hasOwn(FAST_PATH, name) ? FAST_PATH[name] : undefined;
  if (fast) {
    const m = await fast();
    loaded = true;
    const h = m[name];
    if (isHandler(h)) return h;
  }
  const registry = await loadRegistry();
  if (!Object.hasOwn(registry, name)) return undefined;
  const h = registry[name];
  return isHandler(h) ? h : undefined;
}

/** Close the stores this process opened (only if a handler ever ran). */
export async function closeOpenStores(): Promise<void> {
  if (!loaded) return;
  const { closeStores } = await import('../context.js');
  closeStores();
}
