// The cold start of `clockledger invoke events`: the compiled CLI, in a fresh process whose module
// resolution refuses zod, xstate and immer, still answers a plain request; a bad one loads the
// zod schema and gets the same error as ever. The quick request check agrees with the schema.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { quickEventsRequest } from '../../handlers/use-cases/events.js';
import { eventsSchema } from '../../handlers/use-cases/events-schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(root, 'dist/handlers/cli/main.js');

// a module resolve hook that fails the import of the heavy packages
const HOOKS =
  `export async function resolve(s, c, next) { if (/^(zod|xstate|immer)(\\/|$)/.test(s)) ` + `throw new Error('cold path loaded ' + s); return next(s, c); }`;
const REGISTER = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}));`;

function coldInvoke(db: string, data: string, refuseHeavy: boolean) {
  const pre = refuseHeavy ? ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`] : [];
  const r = spawnSync(process.execPath, [...pre, MAIN, 'invoke', 'events', '--db', db, '--data', data], { encoding: 'utf8' });
  return { status: r.status, json: JSON.parse(r.stdout) as Record<string, any>, stderr: r.stderr };
}

let dir: string;
let db: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'clockledger-cold-'));
  db = join(dir, 'l.db');
  expect((await handlers.createHost({ hostId: 'h1', tscKhz: 2_500_000 }, { db })).ok).toBe(true);
  expect((await handlers.createVm({ vmId: 'vm1', hostId: 'h1', vcpus: 1 }, { db })).ok).toBe(true);
  closeStores();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('clockledger invoke events, cold', () => {
  it('answers a plain request without loading zod, xstate or immer', () => {
    const r = coldInvoke(db, '{"limit":2,"from":2,"streamId":"vm-vm1"}', true);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.json.ok).toBe(true);
    expect(r.json.events.map((e: { position: number; version: number }) => [e.position, e.version])).toEqual([
      [2, 1],
      [3, 2],
    ]);
  });

  it('gives a bad request the schema error, as before', () => {
    const r = coldInvoke(db, '{"limit":0}', false);
    expect(r.status).toBe(1);
    expect(r.json.error).toEqual({
      code: 'invalid_request',
      message: 'limit: Too small: expected number to be >=1',
      details: { field: 'limit', issues: [{ path: 'limit', message: 'Too small: expected number to be >=1' }], issueCount: 1 },
    });
    expect(coldInvoke(db, '{"limit":10,"bogus":1}', false).json.error.code).toBe('invalid_request');
  });
});

describe('quickEventsRequest', () => {
  const cases: unknown[] = [
    {},
    { limit: 1 },
    { limit: 100_000 },
    { limit: 100_001 },
    { limit: 0 },
    { limit: 1.5 },
    { limit: '5' },
    { limit: null },
    { from: 1, to: 3 },
    { from: 0 },
    { to: -1 },
    { from: Number.NaN },
    { streamId: '' },
    { streamId: 'vm-a' },
    { streamId: 5 },
    { requestId: 'r' },
    { requestId: '' },
    { requestId: 'x'.repeat(200) },
    { requestId: 'x'.repeat(201) },
    { correlationId: 'c', limit: 3 },
    { extra: 1 },
    [],
    'events',
    7,
    { last: 5 },
    { last: 0 },
    { last: 100_001 },
    { last: 5, limit: 5 },
    { last: 2, from: 3, streamId: 'vm-a' },
  ];
  it.each(cases.map((c) => [JSON.stringify(c), c]))('agrees with the schema on %s', (_s, c) => {
    const quick = quickEventsRequest(c);
    const full = eventsSchema.safeParse(c);
    if (quick !== undefined) expect(full).toEqual({ success: true, data: quick });
    // the quick check declines only what the schema refuses, so no valid request pays for zod
    else expect(full.success).toBe(false);
  });
});
