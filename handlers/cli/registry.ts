// Finding a handler by name from the command line without loading more than the command needs:
// the use-case module that defines it is imported alone (the cold-start path of `clockledger
// invoke`). Everything here is derived from the registry (handlers/registry.ts, modules.ts).
import type { DefinedHandler } from '../define.js';
import { loadHandler, moduleOf } from '../modules.js';
import { HANDLER_NAMES } from '../registry.js';

/** For each handler, the import of the one module it is defined in. */
export const FAST_PATH: Readonly<Record<string, () => Promise<Record<string, unknown>>>> = Object.fromEntries(HANDLER_NAMES.map((n) => [n, () => moduleOf(n)]));

let loaded = false;

/** The handler called `name`, or undefined. */
export async function findHandler(name: string): Promise<DefinedHandler | undefined> {
  const h = await loadHandler(name);
  if (h) loaded = true;
  return h;
}

/** Close the stores this process opened (only if a handler ever ran). */
export async function closeOpenStores(): Promise<void> {
  if (!loaded) return;
  const { closeStores } = await import('../context.js');
  await closeStores();
}
