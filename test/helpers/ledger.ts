// Shared test fixtures: a fresh database per test, handlers bound to it, and the check every
// scenario ends with: the state that was live equals the state rebuilt from the log alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { handlers, type HandlerName } from '../../handlers/index.js';
import { storeFor } from '../../handlers/context.js';
import { toJson } from '../../machines/codec.js';
import { liveState, rebuildAll } from '../../machines/rebuild.js';

export function tempDir(prefix = 'clockledger-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Ledger {
  db: string;
  dir: string;
  call(name: HandlerName, request: Record<string, unknown>): Promise<Record<string, any>>;
  /** call and insist on ok: true */
  ok(name: HandlerName, request: Record<string, unknown>): Promise<Record<string, any>>;
  cleanup(): void;
}

export function newLedger(): Ledger {
  const dir = tempDir();
  const db = join(dir, 'ledger.db');
  const call = async (name: HandlerName, request: Record<string, unknown>) =>
    (await (handlers[name] as (r: unknown, c: unknown) => Promise<unknown>)(request, { db })) as Record<string, any>;
  return {
    db,
    dir,
    call,
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

/** Every stream rebuilt from the log alone (no cache, no snapshot) deep-equals the state that was live. */
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
}
