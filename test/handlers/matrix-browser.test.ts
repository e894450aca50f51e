// The matrix's heatmap in a real browser (headless Chromium, as the reports are tested): it loads
// with no console error and no request but the page itself, draws one cell per matrix cell with
// its verdict, links each cell that does not pass to its report (which opens), marks the cells a
// before/after changed, and a guest named with markup shows it as text and runs nothing.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'puppeteer-core';
import { openConfined } from '../helpers/browser-page.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeStores } from '../../handlers/context.js';
import { handlers } from '../../handlers/index.js';
import { launchBrowser } from '../../scripts/browser.js';
import { tempDir } from '../helpers/ledger.js';

// the page's globals, used inside page.evaluate (the project compiles without the DOM library)
declare const document: any;

const HOSTILE = `<script>alert(1)</script><img src=x onerror="alert(2)">`;
let dir: string;
let browser: Browser;
let matrix: Record<string, any>;

beforeAll(async () => {
  dir = tempDir('clockledger-matrix-browser-');
  const r = (await handlers.matrix(
    {
      hosts: [
        { name: 'a', tscKhz: 3_000_000 },
        { name: 'b', tscKhz: 2_600_000 },
      ],
      strategies: ['firecracker@1.13', 'offset-corrected'],
      guests: [{}, { name: HOSTILE, kernel: '5.10' }],
      blackoutsNs: ['300000000', '30000000000'],
      compareWith: { strategies: ['firecracker@1.14', 'offset-corrected'] },
      reportsDir: join(dir, 'report'),
      workers: 1,
    },
    { db: join(dir, 'ledger.db') },
  )) as Record<string, any>;
  expect(r.ok, JSON.stringify(r.error)).toBe(true);
  matrix = r;
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await closeStores();
  rmSync(dir, { recursive: true, force: true });
});

/** A page opened from its file, confined (test/helpers/browser-page.ts). */
const open = (file: string) => openConfined(browser, file);

describe('the heatmap', () => {
  it('one cell per matrix cell with its verdict, the non-passing linked to their reports, the changed outlined; nothing runs, nothing loads', async () => {
    const index = join(dir, 'report', 'index.html');
    const { page, requests, errors } = await open(index);
    expect(errors).toEqual([]);
    expect(requests).toEqual([pathToFileURL(index).href]);
    const dom = await page.evaluate(() => {
      const maps = [...document.querySelectorAll('table.hm')];
      const cells = (t: any) =>
        [...t.querySelectorAll('tbody td')].map((td: any) => ({
          cls: td.className,
          text: td.innerText.trim(),
          href: td.querySelector('a')?.getAttribute('href') ?? null,
        }));
      return {
        scripts: document.querySelectorAll('script, img').length,
        before: cells(maps[0]),
        after: cells(maps[1]),
        rowHeads: [...maps[0].querySelectorAll('tbody th')].map((th: any) => th.innerText),
      };
    });
    expect(dom.scripts).toBe(0);
    // 4 pairs × 2 guests rows, 2 strategies × 2 blackouts columns: the cells in index order, row by row
    const order = (cells: Record<string, any>[]) => {
      const out: Record<string, any>[] = [];
      for (let p = 0; p < 4; p++) for (let g = 0; g < 2; g++) for (let k = 0; k < 4; k++) out.push(cells[(p * 4 + k) * 2 + g]!);
      return out;
    };
    const letter = { pass: 'P', warn: 'W', fail: 'F' } as Record<string, string>;
    expect(dom.before.map((c: Record<string, any>) => c.text)).toEqual(order(matrix.cells).map((c) => letter[c.verdict]));
    expect(dom.after.map((c: Record<string, any>) => c.text)).toEqual(order(matrix.after.cells).map((c) => letter[c.verdict]));
    expect(dom.before.map((c: Record<string, any>) => c.href)).toEqual(order(matrix.cells).map((c) => (c.verdict === 'pass' ? null : `cell-${c.index}.html`)));
    const changed = new Set(matrix.changed.map((c: Record<string, any>) => c.index));
    expect(changed.size).toBeGreaterThan(0);
    expect(dom.after.map((c: Record<string, any>) => c.cls.includes('changed'))).toEqual(order(matrix.after.cells).map((c) => changed.has(c.index)));
    // the hostile guest name is a row heading, as text
    expect(dom.rowHeads).toContain(HOSTILE);
    expect(readFileSync(index, 'utf8')).not.toContain('<script>');

    // a linked cell opens its report: the migration with the cell's guest
    const first = dom.before.find((c: Record<string, any>) => c.href)!;
    const report = join(dir, 'report', first.href);
    const cell = await open(report);
    expect(cell.errors).toEqual([]);
    expect(cell.requests).toEqual([pathToFileURL(report).href]);
    const h1 = await cell.page.evaluate(() => document.querySelector('h1').innerText);
    const c = matrix.cells[Number(/cell-(\d+)\.html/.exec(first.href)![1])];
    expect(h1).toContain(c.verdict.toUpperCase());
    await cell.page.close();
    await page.close();
  }, 60_000);
});
