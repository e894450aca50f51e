// What a command line is made of (the table of them is commands.ts): its path, arguments and
// options and how their values are read, the request they make, and how the answer is shown.
// A command of handler N shows N's answer (ResponseOf<N>): its renderer, exit code and --out file
// are typed against it, so a renamed report field breaks the build, not the output.
import type { HandlerName } from '../registry.js';
import type { ResponseOf } from '../responses.js';

/** The human rendering of handler N's ok answer. */
export type Renderer<N extends HandlerName> = (response: ResponseOf<N>) => string;

/**
 * How a command-line value is read: int (non-negative), u64 (decimal or 0x hex, kept a decimal
 * string), number, duration (with a unit; signed-duration may be negative; epoch-ns takes a bare
 * number as ns), list (a,b,c), key-value (repeatable key=value), json (a kernel struct, or a bare
 * UAPI name or number), name-or-number (an MSR by UAPI name or number), guest-value (decimal,
 * hex or JSON).
 */
export type ValueKind =
  | 'int'
  | 'u64'
  | 'number'
  | 'duration'
  | 'signed-duration'
  | 'epoch-ns'
  | 'list'
  | 'key-value'
  | 'json'
  | 'name-or-number'
  | 'guest-value';

export interface CliArgument {
  /** '<name>' (required) or '[name]' (optional); the name is the request field unless `field` says otherwise */
  name: string;
  description?: string;
  value?: ValueKind;
  field?: string;
}

export interface CliOption {
  /** commander flags: '--tsc-khz <kHz>', '--in-place', '--no-ecv' (a --no- flag is sent only as false) */
  flags: string;
  description: string;
  value?: ValueKind;
  choices?: readonly string[];
  default?: string;
  required?: boolean;
  /** the request field (default: the option's camelCase name); null: not sent as given */
  field?: string | null;
}

/** The values of a command line: arguments by request field, options by their field. */
export type CliValues = Record<string, unknown>;

export interface CliCommand<N extends HandlerName = HandlerName> {
  /** ['hosts', 'create']: a subcommand of a group; ['time']: a top-level command */
  path: readonly string[];
  description: string;
  alias?: string;
  args?: readonly CliArgument[];
  options?: readonly CliOption[];
  /** command lines after `clockledger ` */
  examples?: readonly string[];
  /** the human rendering of an ok answer, its module (render/<use case>.ts) imported only when a command prints for people */
  render: () => Promise<Renderer<N>>;
  /** the rendering is a file's content (an export, an HTML page): printed as it is, control characters and all */
  raw?: boolean;
  /** the request from the values (default: the values given); may look at the log (db) */
  request?: (v: CliValues, db: string) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** a progress bar with this label; sized by the log when `sized`, or by `count` of the request (counted in `unit`) */
  progress?: { label: string; sized?: boolean; count?: (request: Record<string, unknown>) => Promise<number>; unit?: string };
  /** the exit code of an ok response of this command (e.g. verify: 1 when the chain is broken) */
  okExitCode?: (response: ResponseOf<N>) => number;
  /**
   * --out FILE: the option (by field) naming a file that an ok response's `text` is written to
   * instead of stdout, which then has a line saying what was written (with --json: { ok, out, bytes, ... }).
   */
  outFile?: { field: string; text: (response: ResponseOf<N>) => string; summary?: (response: ResponseOf<N>) => Record<string, unknown> };
}
