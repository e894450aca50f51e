// Shared test fixtures: a fresh database per test, handlers bound to it, and the check every
// scenario ends with: the state that was live equals the state rebuilt from the log alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { handlers, type HandlerName } from '../../handlers/index.js';
import { logFor, storeFor } from '../../handlers/context.js';
import { toJson } from '../../machines/codec.js';
import { clearRebuildCache, liveState, rebuildAll, rebuildStream } from '../../machines/rebuild.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { auditMigration } from '../../machines/audit/audit.js';
import { openPgEventStore } from '../../store/postgres-event-store.js';
import { ReadView } from '../../store/read-view.js';
import type { EventStore } from '../../store/types.js';
import { pgLocation } from '../store/engines.js';

/** The engines a scenario runs on (describe.each(ENGINE_NAMES)). */
export const ENGINE_NAMES = ['sqlite', 'postgres'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export function tempDir(prefix = 'clockledger-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Ledger {
  engine: EngineName;
  /** a file path (SQLite) or a postgres:// URL with a schema of its own */
  db: string;
  /** a location on the same engine where no ledger is yet (a fork target, another log) */
  fresh(): string;
  /** the log as the handlers read it (the SQLite store, or the PostgreSQL log caught up) */
  store(): Promise<EventStore>;
  dir: string;
  /** (untyped: a test reads any field of any handler's answer; the CLI's renderers take them as they come) */
  call(name: HandlerName, request: Record<string, unknown>): Promise<any>;
  /** every audit the migrate handler answered with */
  migrateAudits: { audit: Record<string, any>; thresholds?: Record<string, any> }[];
  /** call and insist on ok: true */
  ok(name: HandlerName, request: Record<string, unknown>): Promise<any>;
  cleanup(): void;
}

export function newLedger(engine: EngineName = 'sqlite'): Ledger {
  const dir = tempDir();
  const db = engine === 'sqlite' ? join(dir, 'ledger.db') : pgLocation();
  let forks = 0;
  const migrateAudits: Ledger['migrateAudits'] = [];
  const call = async (name: HandlerName, request: Record<string, unknown>) => {
    const r = (await (handlers[name] as (r: unknown, c: unknown) => Promise<unknown>)(request, { db })) as Record<string, any>;
    if (name === 'migrate' && r.ok) migrateAudits.push({ audit: r.audit, thresholds: request.thresholds as Record<string, any> | undefined });
    return r;
  };
  return {
    engine,
    db,
    fresh: () => (engine === 'sqlite' ? join(dir, `other-${++forks}.db`) : pgLocation()),
    store: () => logFor({ db }),
    dir,
    call,
    migrateAudits,
    async ok(name, request) {
      const r = await call(name, request);
      if (!r.ok) throw new Error(`${name} failed: ${JSON.stringify(r.error)}`);
      return r;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Every stream rebuilt from the log alone (no cache, no snapshot) deep-equals the state that was
 * live, and every audit the migrate handler gave (from its session) is the log's audit.
 */
export function expectReplayEqualsLive(l: Ledger): void | Promise<void> {
  if (l.engine === 'postgres') return expectPgLogRebuilds(l);
  const store = storeFor({ db: l.db });
  const rebuilt = rebuildAll(store);
  expect(rebuilt.size).toBeGreaterThan(0);
  for (const [streamId, r] of rebuilt) {
    const live = liveState(store, streamId);
    expect(live, `live state of ${streamId}`).toBeDefined();
    expect(live!.version, streamId).toBe(r.version);
    expect(toJson(r.state), streamId).toEqual(toJson(live!.state));
  }
  expectMigrateAuditsFromLog(l);
}

/**
 * PostgreSQL: writes decide from states loaded per request (no live state held for the process).
 * The log read by a fresh store and view (nothing this process holds) rebuilds, in one pass, the
 * state each stream rebuilds to on its own, and every migrate answer is the log's audit.
 */
async function expectPgLogRebuilds(l: Ledger): Promise<void> {
  clearRebuildCache();
  const s = await openPgEventStore(l.db, { readonly: true });
  try {
    const view = await new ReadView(s).catchUp();
    const rebuilt = rebuildAll(view);
    expect(rebuilt.size).toBeGreaterThan(0);
    expect([...rebuilt.keys()].sort()).toEqual([...view.streams()].sort());
    for (const [streamId, r] of rebuilt) {
      expect(r.version, streamId).toBe(view.streamVersion(streamId));
      clearRebuildCache();
      expect(toJson(rebuildStream(view, streamId).state), streamId).toEqual(toJson(r.state));
    }
    for (const { audit, thresholds } of l.migrateAudits) {
      const t = thresholds && Object.fromEntries(Object.entries(thresholds).map(([k, v]) => [k, BigInt(v)]));
      expect(audit, `audit of ${audit.migrationId}`).toEqual(toJson(auditMigration(view, audit.migrationId, t)));
    }
  } finally {
    await s.close();
  }
}

/**
 * The audit each migrate call answered with (from the session it committed) equals the audit of
 * the log, read through a store of its own with nothing this process holds (the cached states are
 * dropped: later calls in the test rebuild from the log).
 */
/** A request's guest settings as the handler hands them on: its ns and ppb values as bigints (the schema's u64 fields). */
function guestBigints(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, /(Ns|Ppb)$/.test(k) ? BigInt(x as string) : guestBigints(x)]));
}

export function expectMigrateAuditsFromLog(l: Ledger): void | Promise<void> {
  if (!l.migrateAudits.length) return;
  if (l.engine === 'postgres') return expectPgLogRebuilds(l);
  clearRebuildCache();
  const store = openEventStore(l.db);
  try {
    for (const { audit, thresholds } of l.migrateAudits) {
      const t = thresholds && Object.fromEntries(Object.entries(thresholds).map(([k, v]) => [k, k === 'guest' ? guestBigints(v) : BigInt(v)]));
      expect(audit, `audit of ${audit.migrationId}`).toEqual(toJson(auditMigration(store, audit.migrationId, t)));
    }
  } finally {
    store.close();
  }
}
