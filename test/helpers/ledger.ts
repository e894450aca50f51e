// Shared test fixtures: a fresh database per test, handlers bound to it, and the check every
// scenario ends with: the state that was live equals the state rebuilt from the log alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { handlers, type HandlerName } from '../../handlers/index.js';
import { storeFor } from '../../handlers/context.js';
import { toJson } from '../../machines/codec.js';
import { clearRebuildCache, liveState, rebuildAll } from '../../machines/rebuild.js';
import { openEventStore } from '../../store/sqlite-event-store.js';
import { auditMigration } from '../../machines/audit/audit.js';

export function tempDir(prefix = 'clockledger-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Ledger {
  db: string;
  dir: string;
  call(name: HandlerName, request: Record<string, unknown>): Promise<Record<string, any>>;
  /** every audit the migrate handler answered with */
  migrateAudits: { audit: Record<string, any>; thresholds?: Record<string, any> }[];
  /** call and insist on ok: true */
  ok(name: HandlerName, request: Record<string, unknown>): Promise<Record<string, any>>;
  cleanup(): void;
}

export function newLedger(): Ledger {
  const dir = tempDir();
  const db = join(dir, 'ledger.db');
  const migrateAudits: Ledger['migrateAudits'] = [];
  const call = async (name: HandlerName, request: Record<string, unknown>) => {
    const r = (await (handlers[name] as (r: unknown, c: unknown) => Promise<unknown>)(request, { db })) as Record<string, any>;
    if (name === 'migrate' && r.ok) migrateAudits.push({ audit: r.audit, thresholds: request.thresholds as Record<string, any> | undefined });
    return r;
  };
  return {
    db,
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
export function expectReplayEqualsLive(l: Ledger): void {
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
 * The audit each migrate call answered with (from the session it committed) equals the audit of
 * the log, read through a store of its own with nothing this process holds (the cached states are
 * dropped: later calls in the test rebuild from the log).
 */
export function expectMigrateAuditsFromLog(l: Ledger): void {
  if (!l.migrateAudits.length) return;
  clearRebuildCache();
  const store = openEventStore(l.db);
  try {
    for (const { audit, thresholds } of l.migrateAudits) {
      const t = thresholds && Object.fromEntries(Object.entries(thresholds).map(([k, v]) => [k, k === 'guest' ? v : BigInt(v)]));
      expect(audit, `audit of ${audit.migrationId}`).toEqual(toJson(auditMigration(store, audit.migrationId, t)));
    }
  } finally {
    store.close();
  }
}
