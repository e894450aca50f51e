import { defineConfig } from 'vitest/config';
import { unitTests } from './test/helpers/test-kinds.js';

// Two projects, one run: `npm test` runs both. The unit tests are found, not listed: the test files
// that load neither the build, PostgreSQL, a browser, a child process nor a worker thread, and
// replace no module or global (test/helpers/test-kinds.ts; test/unit-setup.ts refuses the same at
// run time). They need no global setup, so they share a few processes (isolate: false) and run in
// seconds: `npm run test:unit`. The integration project builds dist/ and starts the throwaway
// PostgreSQL first, and only when one of its files is to run.
const UNIT = unitTests(import.meta.dirname);

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: UNIT, setupFiles: ['test/unit-setup.ts'], isolate: false },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: UNIT,
          globalSetup: ['test/global-setup.ts', 'test/global-setup-postgres.ts'],
        },
      },
    ],
  },
});
