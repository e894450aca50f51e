// The exit codes of `clockledger` (scripts can rely on them; `clockledger --help` lists them).
export const EXIT_OK = 0;
export const EXIT_HANDLER_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_MIGRATION_FAILED = 3;
/** conformance: the emulated restore differs from the imported trace (conforms: false); the report is printed as usual */
export const EXIT_NONCONFORMING = 4;
