// The session's public names: the unit of work and its use cases, the store seam, the retry loop.
export { DomainError } from './errors.js';
export { Session } from './session.js';
export { UnitOfWork, type EventRef, type Loaded, type SessionMeta } from './unit-of-work.js';
export { Scheduler, MAX_TIME, wakeAtOf, wakeNeed } from './scheduler.js';
export {
  NeedsStreams,
  positionOf,
  describeNeed,
  type AsyncLogPort,
  type LoadingReader,
  type LogPort,
  type Need,
  type StreamReader,
  type SyncLogPort,
  type UnitCommit,
} from './port.js';
export { logTime, readerOf, sqlitePort } from './sqlite-port.js';
export { DEFAULT_RETRY, retryDelayMs, type RetryPolicy } from './retry.js';
export { withSession } from './with-session.js';
export { asyncLogPort, type AsyncLogEngine } from './async-port.js';
