// Running a use case as one unit of work: decided, committed, and decided again from scratch
// when another writer got in first (after a backoff that blocks nothing) or, on an asynchronous
// log, when the decision read something not loaded yet (after loading it).
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError } from '../../store/errors.js';
import type { EventStore, WrittenEvent } from '../../store/types.js';
import { toJson } from '../codec.js';
import { LEDGER_STREAM, type LedgerState } from '../ledger/ledger.js';
import { DomainError } from './errors.js';
import { NeedsStreams, type AsyncLogPort, type LogPort, type Need } from './port.js';
import { DEFAULT_RETRY, retryDelayMs, type RetryPolicy } from './retry.js';
import { WAKE_AHEAD, wakeNeed } from './scheduler.js';
import { Session } from './session.js';
import { logTime, sqlitePort } from './sqlite-port.js';
import type { SessionMeta } from './unit-of-work.js';

type Work<T> = (s: Session) => T;
type Respond<T> = (value: T, written: WrittenEvent[]) => unknown;

/** Restarts for missing reads one request may take (each loads something new: a guard against a loop). */
const MAX_LOADS = 10_000;

/**
 * Run a use case in a session, retrying from scratch (after a backoff) when another writer got
 * in first. On an asynchronous log, `prefetch` names what the work will read besides the ledger,
 * the log's last event and the VMs due soon (loaded anyway); what it does not name is loaded
 * when a decision asks for it (see port.ts).
 */
export async function withSession<T>(
  log: EventStore | LogPort,
  meta: SessionMeta,
  work: Work<T>,
  respond: Respond<T>,
  retry: RetryPolicy = DEFAULT_RETRY,
  prefetch: readonly Need[] = [],
): Promise<{ response: unknown; duplicate: boolean }> {
  const port = 'mode' in log ? log : sqlitePort(log);
  if (port.mode === 'async') return withAsyncSession(port, meta, work, respond, retry, prefetch);
  if (meta.requestId !== undefined) {
    const prior = port.findRequest(meta.requestId, meta.fingerprint);
    if (prior) return { response: prior.response, duplicate: true };
  }
  for (let i = 1; ; i++) {
    const s = new Session(port, meta);
    const value = work(s);
    try {
      const r = s.commit((written) => toJson(respond(value, written)));
      return { response: r.response, duplicate: r.duplicate };
    } catch (e) {
      // Someone appended to a stream we read: decide again from the new state, after a pause
      // that lets other work of this process run meanwhile.
      await sleep(retryDelayMs(giveUpOrRetry(e, i, retry), retry));
    }
  }
}

/** The retry number after a failed commit, or the error to give up with. */
function giveUpOrRetry(e: unknown, attempt: number, retry: RetryPolicy): number {
  if (!(e instanceof ConflictError)) throw e;
  if (attempt >= retry.attempts) throw new DomainError('conflict', `${e.message} (given up after ${attempt} attempts)`, { ...e.details, attempts: attempt });
  return attempt;
}

async function withAsyncSession<T>(port: AsyncLogPort, meta: SessionMeta, work: Work<T>, respond: Respond<T>, retry: RetryPolicy, prefetch: readonly Need[]) {
  const reader = port.open();
  // the stored answer, the ledger, the last event, the wake index ahead of it and what the work names: one read where the engine can
  const request = meta.requestId === undefined ? undefined : { requestId: meta.requestId, fingerprint: meta.fingerprint };
  const prior = await reader.begin([{ kind: 'stream', streamId: LEDGER_STREAM }, { kind: 'head' }, ...prefetch], request, WAKE_AHEAD);
  if (prior) return { response: prior.response, duplicate: true };
  // (loaded already, unless the ledger's clock is ahead of its last event)
  await reader.load([wakeNeed(logTime(reader, (reader.readStream(LEDGER_STREAM).state as LedgerState | null)?.now ?? 0n))]);
  for (let i = 1, loads = 0; ; ) {
    const s = new Session(reader, meta);
    let value: T;
    let needs: readonly Need[] = [];
    try {
      value = work(s);
    } catch (e) {
      if (e instanceof NeedsStreams) needs = e.needs;
      else if (!reader.missing.length) throw e;
    }
    // A decision that read what was not loaded (even one that caught the signal) is thrown away.
    // (a signal's needs are noted in the reader as well, unless another reader raised it)
    if (reader.missing.length) needs = reader.missing;
    if (needs.length) {
      if (++loads > MAX_LOADS) throw new Error(`gave up loading what the decision reads after ${MAX_LOADS} loads`);
      await reader.load(needs);
      continue;
    }
    try {
      const unit = s.prepareCommit((written) => toJson(respond(value!, written)));
      const r = await port.commit(unit);
      s.committed(r);
      reader.noteRead();
      return { response: r.response, duplicate: r.duplicate };
    } catch (e) {
      await sleep(retryDelayMs(giveUpOrRetry(e, i++, retry), retry));
      await reader.refresh();
    }
  }
}
