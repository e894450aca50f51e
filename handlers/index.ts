// Every use case as a handler: async (request, context) → response, by name, in the order of the
// registry (handlers/registry.ts), which is the one list of them.
import type { DefinedHandler } from './define.js';
import { loadAll } from './modules.js';
import { HANDLER_NAMES, type HandlerName } from './registry.js';

export const handlers: Readonly<Record<HandlerName, DefinedHandler>> = await loadAll();

export { HANDLER_NAMES, type HandlerName };
export type { HandlerContext } from './context.js';
export type { HandlerResponse, Handler } from './define.js';
export { closeStores, DEFAULT_DB } from './context.js';
