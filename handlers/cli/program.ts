// The `clockledger` command tree (commander), built from the command specs (commands.ts) in the
// registry's order (handlers/registry.ts): every subcommand is a thin wrapper over one handler. Handler code is
// imported only when a command runs, and the human renderings only when a command prints for people.
import { readFileSync, writeFileSync } from 'node:fs';
import { Argument, Command, Option } from 'commander';
import { wrapWords } from '../../lib/wrap.js';
import { ERROR_CODES } from '../error-codes.js';
import type { HandlerResponse } from '../define.js';
import type { ResponseOf } from '../responses.js';
import { HANDLER_NAMES, REGISTRY, type HandlerName } from '../registry.js';
import { COMMANDS, GROUPS } from './commands.js';
import type { CliCommand, CliValues, ValueKind } from './spec.js';
import { CliRefusal, collectOption, parseDuration, parseGuestValue, parseIntArg, parseJsonArg, parseNameOrNumber, parseU64Arg, UsageError } from './io.js';
import { callHandler, defaultDb, EXIT_HANDLER_ERROR, logSize, reportUsageError, runGuarded, setExitCode, writeError, writeJson, writeOut } from './run.js';

interface Opts {
  db: string;
  json?: boolean;
  pretty?: boolean;
  [k: string]: unknown;
}

const EXIT_CODES = `
Exit codes (scripts can rely on them):
  0  the handler completed (ok: true)
  1  the handler refused the request (ok: false): the error is printed on stderr as
     "error [code]: message", and the JSON response on stdout (always for invoke, else with --json);
     \`verify\` also exits 1 when the hash chain is broken
  2  usage error: unknown command, option or handler (code unknown_handler), malformed JSON
     (code invalid_request, "malformed JSON: ..."), a bad option value (e.g. a duration without unit)
  3  migrate (or invoke migrate): the migration ran and failed (status "failed": a step was
     refused and the source VM resumed); the report is printed as for a completed one
  4  conformance (or invoke conformance): the check ran and the model does not conform to the
     trace (conforms: false); the comparison is printed as for a conforming one

${wrapWords(`Error codes: ${ERROR_CODES.join(', ')}.`, 88, { firstIndent: '', indent: '  ' }).join('\n')}

Environment:
  CLOCKLEDGER_DB          the database (file or postgres:// URL) when --db is not given (default ./clockledger.db)
  CLOCKLEDGER_NO_PROGRESS never draw progress bars
  CLOCKLEDGER_DEBUG       print stack traces of internal errors`;

const DESCRIPTION = [
  'clockledger emulates the Linux KVM guest clock interfaces (the x86 TSC, its offset and scaling, kvmclock, the arm64 ' +
    "counter offsets) to the kernel's arithmetic, records every ioctl and guest clock read in a SQLite event log, and " +
    "audits live migrations: what a VMM's sequence of KVM_GET/SET_CLOCK, MSR and TSC ioctls did to the guest's time.",
  '',
  'Values are exact: TSC values, offsets and ns are decimal strings (u64/s64). Time is one simulated true-time axis in ns since the ledger began; ' +
    'nothing reads the wall clock. Durations need a unit: 300ms, 1.5s, 20us, 300ns, 2m, 1h (a bare number other than 0 is refused; JSON requests take ns).',
  '',
  'Every subcommand is a thin wrapper over one handler (clockledger handlers); ' +
    '`clockledger invoke <handler>` calls any of them with a JSON request, for scripts.',
].join('\n');

const EXAMPLES = `
Examples:
  $ clockledger hosts create src --tsc-khz 2500000
  $ clockledger hosts create dst --tsc-khz 2600000 --kernel linux-5.15
  $ clockledger vms create vm1 --host src --vcpus 2
  $ clockledger run vm1
  $ clockledger guest vm1 wrmsr --vcpu 0 --msr MSR_KVM_SYSTEM_TIME_NEW --value 4097
  $ clockledger time advance 1s
  $ clockledger guest vm1 kvmclock --vcpu 0
  $ clockledger migrate vm1 --to dst --strategy qemu --blackout 300ms
  $ clockledger audit
  $ clockledger log --stream vm-vm1 --limit 20
  $ clockledger invoke ioctl --data '{"vmId":"vm1","ioctl":"KVM_GET_CLOCK"}'
  $ echo '{"limit":5}' | clockledger invoke events --db other.db`;

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ clockledger ${l}`).join('\n')}`;
}

function readVersion(): string {
  // dist/handlers/cli/program.js and handlers/cli/program.ts sit at different depths
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'clockledger' && p.version) return p.version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
}

/** Register an action: options merged with the globals, usage errors reported (exit 2). */
function action(cmd: Command, fn: (o: Opts, args: string[], cmd: Command) => Promise<void>): Command {
  return cmd.action(async (...params: unknown[]) => {
    const c = params[params.length - 1] as Command;
    const o = c.optsWithGlobals() as Opts;
    o.db = typeof o.db === 'string' ? o.db : defaultDb();
    try {
      await fn(o, c.processedArgs as string[], c);
    } catch (e) {
      if (e instanceof UsageError) reportUsageError(e, o);
      else throw e;
    }
  });
}

const withJson = (cmd: Command) => cmd.option('--json', "print the handler's JSON response verbatim");

/** How each kind of value is read from the command line (`name` is the option or argument). */
const PARSE: Record<ValueKind, (name: string) => (text: string, previous: unknown) => unknown> = {
  int: (name) => (v) => parseIntArg(v, name),
  u64: (name) => (v) => parseU64Arg(v, name),
  number: (name) => (v) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new UsageError('invalid_request', `${name}: '${v}' is not a number`, { field: name });
    return n;
  },
  duration: (name) => (v) => parseDuration(v, name),
  'signed-duration': (name) => (v) => parseDuration(v, name, true),
  'epoch-ns': (name) => (v) => parseDuration(v, name, true, true),
  list: () => (v) =>
    v
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  'key-value': () => (v, previous) => collectOption(v, previous as Record<string, string | number | boolean> | undefined),
  json: (name) => (v) => parseJsonArg(v, name),
  'name-or-number': () => (v) => parseNameOrNumber(v),
  'guest-value': () => (v) => parseGuestValue(v),
};

/** Only the fields that were given. */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const LONG_WORK = 5_000;
const sizeIfLarge = async (db: string) => {
  const n = await logSize(db);
  return n >= LONG_WORK ? n : 0;
};

/** The command a spec's path names under `program`, its parents created (as groups) on the way. */
function commandAt(program: Command, path: readonly string[]): Command {
  let parent = program;
  for (const name of path.slice(0, -1)) {
    parent = parent.commands.find((c) => c.name() === name) ?? parent.command(name).description(GROUPS[name] ?? '');
  }
  return parent.command(path[path.length - 1]!);
}

/** A handler's commands (commands.ts), each a commander command calling it. */
function addCommands<N extends HandlerName>(program: Command, name: N): void {
  for (const spec of COMMANDS[name]) addCommand(program, name, spec);
}

/** One command spec (commands.ts) as a commander command calling its handler. */
function addCommand<N extends HandlerName>(program: Command, name: N, spec: CliCommand<N>): void {
  const cmd = commandAt(program, spec.path).description(spec.description);
  if (spec.alias) cmd.alias(spec.alias);
  const fields: string[] = [];
  for (const a of spec.args ?? []) {
    const arg = new Argument(a.name, a.description);
    const bare = a.name.slice(1, -1);
    if (a.value) arg.argParser(PARSE[a.value](bare));
    cmd.addArgument(arg);
    fields.push(a.field ?? bare);
  }
  const options = (spec.options ?? []).map((s) => {
    const opt = new Option(s.flags, s.description);
    if (s.choices) opt.choices(s.choices);
    if (s.default !== undefined) opt.default(s.default);
    if (s.required) opt.makeOptionMandatory();
    if (s.value) opt.argParser(PARSE[s.value](opt.long!));
    cmd.addOption(opt);
    return { opt, field: s.field };
  });
  if (spec.examples) cmd.addHelpText('after', examples(...spec.examples));
  withJson(cmd);
  action(cmd, async (o, args) => {
    const values: CliValues = {};
    for (const [i, f] of fields.entries()) values[f] = args[i];
    for (const { opt, field } of options) {
      const key = opt.attributeName();
      // a --no-x flag is sent only when given (as false)
      values[field ?? key] = opt.negate && o[key] === true ? undefined : o[key];
    }
    let request: Record<string, unknown>;
    try {
      if (spec.request) request = await spec.request(values, o.db);
      else request = Object.fromEntries(Object.entries(values).filter(([k]) => !options.some((x) => x.field === null && x.opt.attributeName() === k)));
    } catch (e) {
      if (!(e instanceof CliRefusal)) throw e;
      const error = { code: e.code, message: e.message, details: e.details };
      if (o.json) writeJson({ ok: false, error }, o);
      writeError(error);
      setExitCode(EXIT_HANDLER_ERROR);
      return;
    }
    const outFile = spec.outFile && typeof values[spec.outFile.field] === 'string' ? (values[spec.outFile.field] as string) : undefined;
    // (the renderer's module is imported only to print for people; with --out, what was written is printed)
    const rendering = o.json ? undefined : outFile ? (await import('./render/written.js')).renderWritten : await spec.render();
    await callHandler(name, defined(request), {
      db: o.db,
      json: !!o.json,
      pretty: !!o.pretty,
      render: rendering,
      // a file's content on stdout (export, report --html) is printed as the file holds it
      renderRaw: !outFile && spec.raw === true,
      onOk: outFile ? (r) => writeOutFile(r as ResponseOf<N>, outFile, spec.outFile!) : undefined,
      progress: spec.progress && {
        label: spec.progress.label,
        unit: spec.progress.unit,
        total: spec.progress.sized ? sizeIfLarge : spec.progress.count ? () => spec.progress!.count!(request) : undefined,
      },
      okExitCode: spec.okExitCode,
    });
  });
}

/** An ok response's text written to its --out file; what is printed instead (a write that fails: an io error). */
function writeOutFile<N extends HandlerName>(r: ResponseOf<N>, file: string, spec: NonNullable<CliCommand<N>['outFile']>): HandlerResponse {
  const text = spec.text(r);
  try {
    writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`);
  } catch (e) {
    return { ok: false, error: { code: 'io', message: `--out: cannot write ${file}: ${(e as Error).message}`, details: { field: 'out' } } };
  }
  return { ok: true, ...(spec.summary ? spec.summary(r) : {}), out: file, bytes: Buffer.byteLength(text) + (text.endsWith('\n') ? 0 : 1) };
}

export function buildProgram(): Command {
  const program = new Command('clockledger');
  program
    .description(DESCRIPTION)
    .version(readVersion(), '-V, --version')
    .option('--db <file|url>', 'the event log: a SQLite file or a postgres:// URL (?schema=name); default $CLOCKLEDGER_DB, else ./clockledger.db')
    .option('--pretty', 'indent JSON output')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'error [usage]: ')) })
    .exitOverride()
    .addHelpText('after', `${EXAMPLES}\n${EXIT_CODES}`);

  // ---- invoke: the scripting interface -------------------------------------------------------
  action(
    program
      .command('invoke')
      .description('call any handler with a JSON request (from --data or stdin) and print its JSON response on stdout')
      .argument('<handler>', 'handler name (clockledger handlers lists them)')
      .option('--data <json>', 'the request JSON (default: stdin when it is not a terminal, else {})')
      .addHelpText(
        'after',
        `${examples(
          `invoke createHost --data '{"hostId":"h1","tscKhz":2500000}'`,
          `invoke events --data '{"streamId":"vm-vm1","limit":10}' --pretty`,
          `echo '{"vmId":"vm1","ioctl":"KVM_GET_CLOCK"}' | clockledger invoke ioctl --db ledger.db`,
        )}\n${EXIT_CODES}`,
      ),
    async (o, [name]) => {
      const { invokeCommand } = await import('./invoke.js');
      await invokeCommand(name!, { db: o.db, data: typeof o.data === 'string' ? o.data : undefined, pretty: !!o.pretty });
    },
  );

  // ---- every handler's commands, in the registry's order ------------------------------------------
  for (const name of HANDLER_NAMES) addCommands(program, name);

  // ---- what there is ---------------------------------------------------------------------------
  action(withJson(program.command('handlers').description('the handlers (for invoke) and what each does')), async (o) => {
    // from the registry's table: no handler module is loaded
    const list = Object.entries(REGISTRY).map(([name, h]) => ({ name, summary: h.summary }));
    if (o.json) {
      writeJson({ ok: true, handlers: list }, o);
      return;
    }
    const { table } = await import('./format.js');
    writeOut(
      table(
        ['HANDLER', 'SUMMARY'],
        list.map((h) => [h.name, h.summary]),
      ),
    );
  });

  return program;
}

/** Run the full program on argv (without node and the script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  return runGuarded(argv, async () => {
    await buildProgram().parseAsync(argv, { from: 'user' });
  });
}
