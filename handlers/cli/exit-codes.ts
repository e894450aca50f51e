// The exit codes of `clockledger` (scripts can rely on them; `clockledger --help` lists them), and
// the handlers whose ok answers have one of their own however the command line calls them.
import type { HandlerName } from '../registry.js';
import type { ResponseOf } from '../responses.js';

export const EXIT_OK = 0;
export const EXIT_HANDLER_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_MIGRATION_FAILED = 3;
/** conformance: the emulated restore differs from the imported trace (conforms: false); the report is printed as usual */
export const EXIT_NONCONFORMING = 4;

/**
 * The exit code of a handler's ok answer from any command line that calls it (its command, or
 * `invoke`); a command's own rule (verify) comes first. Not named here: 0.
 */
export const OK_EXIT_CODES: { readonly [N in HandlerName]?: (response: ResponseOf<N>) => number } = {
  // the migration ran and failed (status 'failed': a step was refused and the source VM resumed)
  migrate: (r) => (r.status === 'failed' ? EXIT_MIGRATION_FAILED : EXIT_OK),
  // the check ran and found a difference
  conformance: (r) => (r.conforms === false ? EXIT_NONCONFORMING : EXIT_OK),
};
