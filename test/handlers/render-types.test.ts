// The command line's renderers are typed against the handlers' answers (ResponseOf, derived from
// each handler's run()): a renderer that cannot show its handler's answer, or reads a field the
// answer does not have, fails the build (npx tsc -p ., which checks the expectations below), and
// every command's renderer module loads.
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../handlers/cli/commands.js';
import type { OK_EXIT_CODES } from '../../handlers/cli/exit-codes.js';
import type { CliCommand } from '../../handlers/cli/spec.js';
import { HANDLER_NAMES } from '../../handlers/registry.js';
import type { ResponseOf } from '../../handlers/responses.js';

/** Never called: what the compiler must refuse (npx tsc -p . fails as soon as one of these compiles). */
// biome-ignore lint/suspicious/noExportsInTest: exported so that the compiler checks it without calling it
export function refusedByTheCompiler(migrate: ResponseOf<'migrate'>): unknown[] {
  // @ts-expect-error: the VM renderer cannot show createHost's answer (it has no vm)
  const wrongRenderer: CliCommand<'createHost'>['render'] = () => import('../../handlers/cli/render/vms.js').then((m) => m.renderVm);
  // @ts-expect-error: the audit report says trueElapsedNs
  const noSuchField = migrate.audit.trueElapsed;
  // @ts-expect-error: u64s arrive as decimal strings, not bigints
  const notABigint: bigint = migrate.audit.blackoutNs;
  // @ts-expect-error: the conformance exit rule reads conforms, which migrate's answer has not
  const wrongExitRule: NonNullable<(typeof OK_EXIT_CODES)['migrate']> = (r: ResponseOf<'conformance'>) => (r.conforms ? 0 : 4);
  return [wrongRenderer, noSuchField, notABigint, wrongExitRule];
}

describe('the renderers', () => {
  it('load, one per command of every handler', async () => {
    let n = 0;
    for (const name of HANDLER_NAMES) {
      for (const spec of COMMANDS[name]) {
        expect(typeof (await spec.render()), `${name}: ${spec.path.join(' ')}`).toBe('function');
        n++;
      }
    }
    expect(n).toBe(36);
  });
});
