// The command-line part of docs/handlers.md: a handler's commands (handlers/cli/commands.ts), each
// with its arguments, options and their defaults, then its `invoke` line.
import { COMMANDS } from '../handlers/cli/commands.js';
import type { HandlerName } from '../handlers/registry.js';

/** prose outside code spans: <vmId> is not an HTML tag */
const prose = (s: string) => s.replace(/</g, '\\<');

/** The markdown list of the command lines that call a handler. */
export function cliCommandLines(name: HandlerName): string[] {
  const out = COMMANDS[name].flatMap((c) => {
    const usage = ['clockledger', ...c.path, ...(c.args ?? []).map((a) => a.name)].join(' ');
    return [
      `- \`${usage}\`${c.alias ? ` (also \`${c.alias}\`)` : ''}: ${prose(c.description)}`,
      ...(c.options ?? []).map((o) => {
        const given = `${o.required ? ' (required)' : ''}: ${prose(o.description)}${o.default !== undefined ? ` (default ${o.default})` : ''}`;
        return `  - \`${o.flags}\`${given}`;
      }),
    ];
  });
  return [...out, `- \`clockledger invoke ${name} --data '<request JSON>'\`: the request as JSON, the response as JSON`];
}
