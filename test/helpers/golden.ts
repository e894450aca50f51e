// Golden files: outputs stored under test/fixtures that a test compares byte for byte, so that a log
// or report recorded before keeps its exact form. One variable rewrites them all, for an intended
// change only (the rewritten files are then read in the diff and committed with the reason):
//   CLOCKLEDGER_UPDATE_GOLDEN=1 npx vitest run <the test files>
// The names used before it was one variable are refused, so that an old habit does not end in a
// run that quietly compares instead of rewriting.
import { readFileSync, writeFileSync } from 'node:fs';

export const UPDATE_GOLDEN = 'CLOCKLEDGER_UPDATE_GOLDEN';
const RETIRED = ['UPDATE_GOLDEN', 'CLOCKLEDGER_WRITE_GOLDEN'];

/** Whether this run rewrites the golden files (the variable is 1); an error for a retired name. */
export function updatingGolden(env: NodeJS.ProcessEnv = process.env): boolean {
  for (const name of RETIRED) if (env[name] !== undefined) throw new Error(`${name} is no longer read: ${UPDATE_GOLDEN}=1 rewrites the golden files`);
  return env[UPDATE_GOLDEN] === '1';
}

/** Write a golden file (only when updatingGolden()). */
export function writeGolden(path: string, text: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!updatingGolden(env)) throw new Error(`${path}: golden files are written only with ${UPDATE_GOLDEN}=1`);
  writeFileSync(path, text);
}

/** The golden file's text to compare `produced` with: the stored one, or `produced` itself once written there when updating. */
export function goldenText(path: string, produced: string, env: NodeJS.ProcessEnv = process.env): string {
  if (updatingGolden(env)) writeGolden(path, produced, env);
  return readFileSync(path, 'utf8');
}
