// clockledger: the package root.
export { handlers, closeStores, HANDLER_NAMES, type HandlerName, type HandlerContext, type HandlerResponse } from './handlers/index.js';
export {
  getTimeScale,
  pvclockScaleDelta,
  pvclockReadCycles,
  scaleTsc,
  tscScalingRatio,
  tscToleranceWindow,
  hvclockToHz,
  NSEC_PER_SEC,
} from './kvm/arith.js';
export { PROFILES, PROFILE_NAMES, getProfile, resolveProfile, type KernelProfile } from './kvm/profiles.js';
export * as kvm from './kvm/index.js';
export { openEventStore, openLedgerForReading, type EventStore } from './store/index.js';
