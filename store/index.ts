export * from './types.js';
export * from './errors.js';
export { openEventStore, openLedgerForReading, streamCategory, type OpenOptions } from './sqlite-event-store.js';
export { migrate, latestSchemaVersion, loadMigrations } from './migrate.js';
export { canonicalJson, chainHash, GENESIS_HASH } from './canonical.js';
