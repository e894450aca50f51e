#!/usr/bin/env node
// clockledger: the command line. `clockledger --help` describes it. The common shapes of
// `clockledger invoke <handler> ...` (the scripting path) run without loading commander or the
// command tree; everything else goes through program.ts. Each command imports the handler code
// it needs only when it runs.
import { invokeCommand, parseFastInvoke } from './invoke.js';
import { runGuarded } from './run.js';

const argv = process.argv.slice(2);
const fast = parseFastInvoke(argv);
process.exitCode = fast ? await runGuarded(argv, () => invokeCommand(fast.name, fast)) : await (await import('./program.js')).main(argv);
