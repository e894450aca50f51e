// The handler registry is the one list of handlers: the package's handlers object, the Lambda
// exports, the CLI's cold-start path and its help are all derived from it.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FAST_PATH } from '../../handlers/cli/registry.js';
import { ERROR_CODES } from '../../handlers/error-codes.js';
import { handlers, HANDLER_NAMES } from '../../handlers/index.js';

const root = join(import.meta.dirname, '..', '..');
const hooks = pathToFileURL(join(import.meta.dirname, 'fixtures', 'use-case-imports.mjs')).href;

/** The use-case modules a fresh node process imports to run `args` (with the reporting hooks). */
function useCasesImported(args: string[]): string[] {
  const register = `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(hooks)})`;
  const r = spawnSync(process.execPath, ['--import', register, ...args], { encoding: 'utf8', cwd: tmpdir() });
  return [...new Set([...r.stderr.matchAll(/^imported (\S+)$/gm)].map((m) => m[1]!))].sort();
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

describe('the handler registry', () => {
  it('gives every handler a cold-start path to its own module', async () => {
    expect(Object.keys(FAST_PATH).sort()).toEqual([...HANDLER_NAMES].sort());
    expect(HANDLER_NAMES).toHaveLength(35);
    for (const name of HANDLER_NAMES) expect((await FAST_PATH[name]!())[name], name).toBe(handlers[name]);
  });

  it("imports only the invoked handler's module, from the CLI and from Lambda", () => {
    const db = join(tmpdir(), 'clockledger-registry-none.db');
    expect(useCasesImported([join(root, 'dist/handlers/cli/main.js'), 'invoke', 'bisect', '--db', db, '--data', '{}'])).toEqual(['replay.js']);
    expect(useCasesImported([join(root, 'dist/handlers/cli/main.js'), 'invoke', 'verify', '--db', db])).toEqual(['log.js']);
    expect(useCasesImported([join(root, 'dist/handlers/cli/main.js'), 'invoke', 'exportTrace', '--db', db, '--data', '{"id":"m1"}'])).toEqual(['export.js']);
    const lambda = pathToFileURL(join(root, 'dist/handlers/lambda.js')).href;
    expect(
      useCasesImported(['--input-type=module', '-e', `const l = await import(${JSON.stringify(lambda)}); await l.handler({ handler: 'strategies' })`]),
    ).toEqual(['migrations.js']);
  });

  it('names the default database once', () => {
    const files = ['handlers', 'machines', 'store', 'index.ts'].flatMap((d) => (d.endsWith('.ts') ? [join(root, d)] : sources(join(root, d))));
    const holders = files.filter((f) => readFileSync(f, 'utf8').includes("'./clockledger.db'")).map((f) => f.slice(root.length + 1));
    expect(holders).toEqual(['handlers/context.ts']);
  });

  it('lists every error code in `clockledger --help`, not_a_ledger included', () => {
    const help = spawnSync(process.execPath, [join(root, 'dist/handlers/cli/main.js'), '--help'], { encoding: 'utf8' }).stdout;
    const listed = /Error codes: ([^.]*)\./
      .exec(help)![1]!
      .split(/,\s*/)
      .map((s) => s.trim());
    expect(listed).toEqual([...ERROR_CODES]);
    expect(listed).toContain('not_a_ledger');
    // the contract's codes: scripts match on them, so none may go or change its name
    const contract = 'conflict corrupt internal invalid_argument invalid_request invalid_state invalid_trace io not_a_ledger not_found'.split(' ');
    expect([...ERROR_CODES].sort()).toEqual([...contract, 'response_too_large', 'schema_too_new', 'unknown_handler']);
  });
});
