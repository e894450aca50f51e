// Every use case as a handler: async (request, context) → response.
import type { DefinedHandler } from './define.js';
import { adjustRealtime, advanceTime, createHost, listHosts } from './use-cases/hosts.js';
import { events, fork, stateAt, verify } from './use-cases/log.js';
import { audit, migrate, strategies } from './use-cases/migrations.js';
import { bisect, diff, replay } from './use-cases/replay.js';
import { demo } from './use-cases/demo.js';
import { createVm, destroyVm, guest, ioctl, listVms, pauseVcpu, runVcpu } from './use-cases/vms.js';

export const handlers = {
  createHost,
  advanceTime,
  adjustRealtime,
  listHosts,
  createVm,
  destroyVm,
  listVms,
  ioctl,
  runVcpu,
  pauseVcpu,
  guest,
  events,
  stateAt,
  verify,
  fork,
  migrate,
  audit,
  strategies,
  replay,
  diff,
  bisect,
  demo,
} satisfies Record<string, DefinedHandler>;

export type HandlerName = keyof typeof handlers;
export const HANDLER_NAMES = Object.keys(handlers) as HandlerName[];

export type { HandlerContext } from './context.js';
export type { HandlerResponse, Handler } from './define.js';
export { closeStores, DEFAULT_DB } from './context.js';
