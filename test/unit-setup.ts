// The unit project's guard at run time (test/helpers/test-kinds.ts is its guard at load time: it
// reads what the test-side files import). The code under test may still reach, through the
// product's own modules, what a unit test must not use; here each such door throws instead of
// opening, so a test that needs it fails in `npm run test:unit` rather than passing by luck, and
// belongs to the integration project. The modules stay loadable: only starting something throws.
import { vi } from 'vitest';

type Module = Record<string, unknown>;

const { refusing } = vi.hoisted(() => {
  const refusal = (what: string) => new Error(`a unit test may not ${what}: this test belongs to the integration project (test/helpers/test-kinds.ts)`);
  const doors = (what: string, functions: readonly string[], classes: readonly string[]): Module => {
    const out: Module = {};
    for (const f of functions)
      out[f] = () => {
        throw refusal(what);
      };
    for (const c of classes)
      out[c] = class {
        constructor() {
          throw refusal(what);
        }
      };
    return out;
  };
  /** The module with the given functions and classes throwing, under its names and on its default export. */
  const refusing = async (load: () => Promise<Module>, what: string, functions: readonly string[], classes: readonly string[] = []) => {
    const original = await load();
    const closed = doors(what, functions, classes);
    const base = original.default;
    const fallback = typeof base === 'object' && base !== null ? { ...(base as Module), ...closed } : base;
    return { ...original, ...closed, default: fallback };
  };
  return { refusing };
});

const PROCESS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'];
vi.mock('node:child_process', (load) => refusing(load as () => Promise<Module>, 'start a child process', PROCESS));
vi.mock('node:worker_threads', (load) => refusing(load as () => Promise<Module>, 'start a worker thread', [], ['Worker']));
vi.mock('pg', (load) => refusing(load as () => Promise<Module>, 'connect to PostgreSQL', [], ['Client', 'Pool']));
vi.mock('puppeteer-core', (load) => refusing(load as () => Promise<Module>, 'start a browser', ['launch', 'connect']));
