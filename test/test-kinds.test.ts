// The split of the suite: which tests are unit tests (test/helpers/test-kinds.ts reads it from what
// they load) and the run-time refusals behind it (test/unit-setup.ts). This file is a unit test
// itself, and its last checks pass only there.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runJobs } from '../handlers/use-cases/matrix-pool.js';
import { KEPT_OUT_OF_UNIT, needsOf, testFiles, unitTests, type Need } from './helpers/test-kinds.js';

const root = join(import.meta.dirname, '..');

describe('what a test needs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clockledger-kinds-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (files: Record<string, string>) => {
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      writeFileSync(join(dir, f), text);
    }
  };
  const needs = (f: string): Need[] => [...new Set(needsOf(dir, f).map((n) => n.need))].sort();
  const q = "'"; // the fixtures' quotes, kept out of this file's own text so that it needs nothing

  write({
    'test/helpers/spawner.ts': `import { spawn } from ${q}node:child_process${q};\nexport const run = spawn;\n`,
    'test/helpers/clean.ts': `import { join } from ${q}node:path${q};\nexport const j = join;\n`,
    'test/via-helper.test.ts': `import { j } from ${q}./helpers/clean.js${q};\nimport { run } from ${q}./helpers/spawner.js${q};\n`,
    'test/pure.test.ts': [
      `import { j } from ${q}./helpers/clean.js${q};`,
      `import { openPg } from ${q}../store/pg.js${q};`, // the product's modules are not followed
      `// import { spawn } from ${q}node:child_process${q};`,
      `/* import pg from ${q}pg${q}; */`,
      `const distance = ${q}dist${q} === j ? 1 : 0;`, // a word, not a path into the build
      '',
    ].join('\n'),
    'store/pg.ts': `import pg from ${q}pg${q};\nexport const openPg = pg;\n`,
    'test/built.test.ts': `const m = await import(${q}../dist/index.js${q});\n`,
    'test/built-path.test.ts': `import { join } from ${q}node:path${q};\nconst cli = join(${q}r${q}, ${q}dist${q}, ${q}main.js${q});\n`,
    'test/server.test.ts': `const url = process.env.CLOCKLEDGER_TEST_PG_${'URL'};\n`,
    'test/client.test.ts': `import pg from ${q}pg${q};\n`,
    'test/browser.test.ts': `import puppeteer from ${q}puppeteer-core${q};\n`,
    'test/worker.test.ts': `import { Worker } from ${q}worker_threads${q};\n`,
    'test/mocks.test.ts': `vi.${'mock'}(${q}node:fs${q});\n`,
    'test/env.test.ts': `process.env.${'TZ'} = ${q}UTC${q};\n`,
    'test/env-read.test.ts': `if (process.env.TZ === ${q}UTC${q}) throw new Error();\n`,
  });

  it('is nothing for a test that loads only the code under test and clean helpers', () => {
    expect(needs('test/pure.test.ts')).toEqual([]);
    expect(needs('test/env-read.test.ts')).toEqual([]);
  });

  it('follows test-side helpers and names the one that needs', () => {
    expect(needsOf(dir, 'test/via-helper.test.ts')).toEqual([{ need: 'process', why: 'test/helpers/spawner.ts imports node:child_process' }]);
  });

  it('sees the build, PostgreSQL, a browser, a worker thread and a shared-process hazard', () => {
    expect(needs('test/built.test.ts')).toEqual(['build']);
    expect(needs('test/built-path.test.ts')).toEqual(['build']);
    expect(needs('test/server.test.ts')).toEqual(['postgres']);
    expect(needs('test/client.test.ts')).toEqual(['postgres']);
    expect(needs('test/browser.test.ts')).toEqual(['browser']);
    expect(needs('test/worker.test.ts')).toEqual(['worker']);
    expect(needs('test/mocks.test.ts')).toEqual(['isolation']);
    expect(needs('test/env.test.ts')).toEqual(['isolation']);
  });
});

describe('the unit tests of this suite', () => {
  const unit = unitTests(root);

  it('leave out every test that starts PostgreSQL, a browser or the compiled CLI', () => {
    const needing = (f: string) => [...new Set(needsOf(root, f).map((n) => n.need))];
    expect(needing('test/store/pg-server.test.ts')).toContain('postgres');
    expect(needing('test/handlers/report-browser.test.ts')).toContain('browser');
    expect(needing('test/handlers/cli.test.ts')).toEqual(expect.arrayContaining(['build', 'process']));
    for (const f of ['test/store/pg-server.test.ts', 'test/handlers/report-browser.test.ts', 'test/handlers/cli.test.ts']) expect(unit).not.toContain(f);
  });

  it('take in the pure ones, this file among them', () => {
    const pure = ['test/kvm/arith.test.ts', 'test/store/append-plan.test.ts', 'test/machines/vm-decider.test.ts', 'test/test-kinds.test.ts'];
    expect(unit).toEqual(expect.arrayContaining(pure));
  });

  it('keep out by choice only test files that exist and would otherwise be unit tests', () => {
    const all = testFiles(root);
    for (const f of Object.keys(KEPT_OUT_OF_UNIT)) {
      expect(all, f).toContain(f);
      expect(needsOf(root, f), f).toEqual([]);
    }
  });
});

describe('a unit test that reaches further anyway', () => {
  // The modules are named by computed strings: the load-time reading above is meant not to see
  // them, so that what is checked here is the run-time refusal (test/unit-setup.ts) behind it.
  const load = (name: string) => import(name) as Promise<Record<string, any>>;

  it('cannot start a child process', async () => {
    const cp = await load(['node', 'child_process'].join(':'));
    expect(() => cp.spawnSync('true')).toThrow(/a unit test may not start a child process/);
    expect(() => cp.default.execFileSync('true')).toThrow(/a unit test may not start a child process/);
  });

  it('cannot start a worker thread, even from the code under test', async () => {
    await expect(runJobs([{}, {}] as never, { workers: 2 })).rejects.toThrow(/a unit test may not start a worker thread/);
  });

  it('cannot connect to PostgreSQL or start a browser', async () => {
    const pg = await load(['p', 'g'].join(''));
    expect(() => new pg.default.Pool()).toThrow(/a unit test may not connect to PostgreSQL/);
    expect(() => new pg.Client()).toThrow(/a unit test may not connect to PostgreSQL/);
    const puppeteer = await load(['puppeteer', 'core'].join('-'));
    expect(() => puppeteer.default.launch()).toThrow(/a unit test may not start a browser/);
  });
});
