// docs/handlers.md is generated from the registry and the handlers' schemas: it is up to date,
// and it documents every handler, every request field and every command-line option.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { COMMANDS } from '../../handlers/cli/commands.js';
import { handlers, HANDLER_NAMES } from '../../handlers/index.js';
import { cliCommandLines } from '../../scripts/cli-docs.js';
import { handlersDocs } from '../../scripts/handlers-docs.js';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'handlers.md'), 'utf8');

/** The text of a handler's section (from its heading to the next). */
const section = (name: string) => doc.split(`\n## ${name}\n`)[1]!.split('\n## ')[0]!;

describe('docs/handlers.md', () => {
  it('is what `npm run docs` generates now', async () => {
    expect(doc).toBe(await handlersDocs(cliCommandLines));
  });

  it('has a section for every handler, with each request field and command-line option', () => {
    expect([...doc.matchAll(/^## (\w+)$/gm)].map((m) => m[1])).toEqual(HANDLER_NAMES);
    for (const name of HANDLER_NAMES) {
      const text = section(name);
      const fields = Object.keys((z.toJSONSchema(handlers[name].schema, { io: 'input', unrepresentable: 'any' }) as { properties?: object }).properties ?? {});
      for (const f of fields.filter((f) => f !== 'requestId' && f !== 'correlationId')) expect(text, `${name}.${f}`).toContain(`| \`${f}\` |`);
      for (const c of COMMANDS[name]) for (const o of c.options ?? []) expect(text, `${name} ${o.flags}`).toContain(`\`${o.flags}\``);
      expect(text).toContain(`clockledger invoke ${name}`);
      // the response's fields, from a real answer of the scripted run
      expect(text, name).toMatch(/\nResponse \(the fields of an answer from a scripted run\): `ok` \(boolean\), `\w+`/);
    }
  });

  it('gives the types, defaults and bounds of the schemas', () => {
    expect(section('migrate')).toContain('| `blackoutNs` | u64 (decimal string or safe integer) | yes |  |  |');
    expect(section('createHost')).toContain('| `arch` | "x86" \\| "arm64" |  | `"x86"` |  |');
    expect(section('events')).toContain('| `limit` | integer |  | `1000` | ≥ 1, ≤ 100000 |');
    expect(section('adjustRealtime')).toContain('| `stepNs` | s64 (decimal string or safe integer) |');
  });
});
