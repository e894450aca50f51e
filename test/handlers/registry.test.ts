// The handler registry is the one list of handlers: the package's handlers object, the Lambda
// exports, the CLI's cold-start path and its help are all derived from it.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST_PATH } from '../../handlers/cli/registry.js';
import { handlers, HANDLER_NAMES } from '../../handlers/index.js';

const root = join(import.meta.dirname, '..', '..');

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
    expect(HANDLER_NAMES).toHaveLength(22);
    for (const name of HANDLER_NAMES) expect((await FAST_PATH[name]!())[name], name).toBe(handlers[name]);
  });

  it('names the default database once', () => {
    const files = ['handlers', 'machines', 'store', 'index.ts'].flatMap((d) => (d.endsWith('.ts') ? [join(root, d)] : sources(join(root, d))));
    const holders = files.filter((f) => readFileSync(f, 'utf8').includes("'./clockledger.db'")).map((f) => f.slice(root.length + 1));
    expect(holders).toEqual(['handlers/registry.ts']);
  });

  it('lists every error code in `clockledger --help`, not_a_ledger included', () => {
    const help = spawnSync(process.execPath, [join(root, 'dist/handlers/cli/main.js'), '--help'], { encoding: 'utf8' }).stdout;
    const listed = /Error codes: ([^.]*)\./.exec(help)![1]!.split(/,\s*/).map((s) => s.trim());
    expect(listed).toEqual(['invalid_request', 'invalid_argument', 'not_found', 'invalid_state', 'conflict', 'schema_too_new', 'corrupt', 'not_a_ledger', 'io', 'unknown_handler', 'internal']);
  });
});
