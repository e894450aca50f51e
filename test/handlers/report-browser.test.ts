// The HTML reports in a real browser (headless Chromium: the system's, else the one the
// @sparticuz/chromium dev dependency ships): the demo's eight migration pages, its fleet table and
// a replay comparison load with no console error and no request but the page itself; each chart
// has its series; the verdict and every finding code are visible; a screenshot is not blank; and a
// hostile report runs nothing. One browser for the file.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'puppeteer-core';
import { openConfined } from '../helpers/browser-page.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationHtml } from '../../machines/export/html/migration.js';
import { launchBrowser } from '../../scripts/browser.js';
import { tempDir } from '../helpers/ledger.js';

// the page's globals, used inside page.evaluate (the project compiles without the DOM library)
declare const document: any;
declare const Image: any;

const root = join(import.meta.dirname, '..', '..');
let dir: string;
let db: string;
let browser: Browser;
let demoOut: string;
let audits: { migrationId: string; verdict: string; findings: { code: string }[] }[];

const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'dist/handlers/cli/main.js'), '--db', db, ...args], { encoding: 'utf8', cwd: dir });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
};

beforeAll(async () => {
  dir = tempDir('clockledger-browser-');
  db = join(dir, 'demo.db');
  demoOut = cli('demo');
  audits = JSON.parse(cli('audit', '--json')).audits;
  cli('report', 'm1', '--html', '--profile', 'linux-5.15', '--out', join(dir, 'm1-replay.html'));
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A page opened from its file, confined (test/helpers/browser-page.ts). */
const open = (file: string, viewport?: { width: number; height: number }) => openConfined(browser, file, viewport);

/** Mean and variance of a PNG's pixel luminance, and the share of its pixels near a colour: decoded by the browser from a data: URL. */
async function pixelStats(png: Uint8Array, near: [number, number, number]): Promise<{ mean: number; variance: number; nearShare: number }> {
  const page = await browser.newPage();
  try {
    const src = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
    return await page.evaluate(
      async (src: string, near: number[]) => {
        const img = new Image();
        img.src = src;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width;
        c.height = img.height;
        const ctx = c.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let sum = 0;
        let sq = 0;
        let hits = 0;
        const n = d.length / 4;
        for (let i = 0; i < d.length; i += 4) {
          const y = 0.299 * d[i]! + 0.587 * d[i + 1]! + 0.114 * d[i + 2]!;
          sum += y;
          sq += y * y;
          if (Math.abs(d[i]! - near[0]!) < 40 && Math.abs(d[i + 1]! - near[1]!) < 40 && Math.abs(d[i + 2]! - near[2]!) < 40) hits++;
        }
        const mean = sum / n;
        return { mean, variance: sq / n - mean * mean, nearShare: hits / n };
      },
      src,
      near,
    );
  } finally {
    await page.close();
  }
}

describe('the HTML reports in headless Chromium', () => {
  it("npm run demo's pages: each migration's chart, verdict and findings, the fleet table, a replay comparison; no console error, no request", async () => {
    // the demo printed where it wrote them: eight migrations and the fleet, beside the database
    const files = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'fleet'].map((n) => join(dir, 'demo-reports', `${n}.html`));
    expect(demoOut).toContain(`HTML reports (open in a browser):\n${files.map((f) => `  ${f}`).join('\n')}`);
    // m4 (crosvm to a 2.6 GHz host without KVM_SET_TSC_KHZ): the simulated guest's watchdog marks tsc
    // unstable at its second run after the resume (433 159 977 ns of tsc against 499 800 004 of kvm-clock):
    // fail since the guest model came in
    expect(audits.map((a) => a.verdict)).toEqual(['fail', 'warn', 'fail', 'fail', 'fail', 'pass', 'pass', 'pass']);

    for (const a of audits) {
      const file = join(dir, 'demo-reports', `${a.migrationId}.html`);
      const { page, requests, errors } = await open(file);
      expect(requests, a.migrationId).toEqual([pathToFileURL(file).href]);
      expect(errors, a.migrationId).toEqual([]);
      const seen = await page.evaluate(() => {
        const visible = (e: any) => !!e && e.checkVisibility() && e.getBoundingClientRect().width > 0;
        const series = [...document.querySelectorAll('figure.timeline svg path.series')] as any[];
        // every pair of texts in a chart that overlap on the screen (tick labels, titles, phases)
        const overlaps: string[] = [];
        for (const svg of document.querySelectorAll('svg') as any) {
          const texts = ([...svg.querySelectorAll('text')] as any[]).map((t) => [t.textContent, t.getBoundingClientRect()]);
          for (let i = 0; i < texts.length; i++) {
            for (let j = i + 1; j < texts.length; j++) {
              const [a, ra] = texts[i]!;
              const [b, rb] = texts[j]!;
              if (ra.left < rb.right && rb.left < ra.right && ra.top < rb.bottom && rb.top < ra.bottom) overlaps.push(`${a} / ${b}`);
            }
          }
        }
        // the y tick labels lie between the rotated axis title and the plot, their minus signs whole
        const gaps = ([...document.querySelectorAll('svg')] as any[]).map((svg) => {
          const title = svg.querySelector('text.ytitle').getBoundingClientRect();
          const plot = svg.querySelector('rect').getBoundingClientRect();
          const labels = ([...svg.querySelectorAll('text.ytick')] as any[]).map((t) => t.getBoundingClientRect());
          return { fromTitle: Math.min(...labels.map((r) => r.left)) - title.right, toPlot: plot.left - Math.max(...labels.map((r) => r.right)) };
        });
        const blackout = document.querySelector('svg rect.blackout') as any;
        return {
          series: series.map((p) => p.dataset.series),
          // each series drawn across the chart's width
          seriesWidths: series.map((p) => Math.round(p.getBBox().width)),
          blackoutWidth: blackout ? Math.round(blackout.getBBox().width) : 0,
          verdict: (document.querySelector('h1 .verdict') as any)?.innerText.toLowerCase(),
          verdictVisible: visible(document.querySelector('h1 .verdict')),
          codes: [...document.querySelectorAll('.finding .code')].filter(visible).map((e) => e.innerText),
          lanes: document.querySelectorAll('table.lanes tbody tr').length,
          afterSeries: ([...document.querySelectorAll('figure.after svg path.series')] as any[]).map((p) => p.dataset.series),
          overlaps,
          gaps,
          printk: ([...document.querySelectorAll('h2 + table tbody tr td:first-child')] as any[])
            .map((td) => td.innerText)
            .filter((t: string) => t.startsWith('[')),
        };
      });
      expect(seen.overlaps, a.migrationId).toEqual([]);
      for (const g of seen.gaps) {
        expect(g.fromTitle, a.migrationId).toBeGreaterThan(2);
        expect(g.toPlot, a.migrationId).toBeGreaterThan(2);
      }
      // the guest log's times as dmesg prints them
      expect(seen.printk.length, a.migrationId).toBe((a as unknown as { guest: { log: unknown[] } }).guest.log.length);
      for (const t of seen.printk) expect(t).toMatch(/^\[ *\d+\.\d{6}\]$/);
      expect(seen.series, a.migrationId).toEqual(['tsc-0', 'tsc-1', 'tsc-2', 'tsc-3', 'kvmclock-0', 'realtime-0']);
      expect(seen.afterSeries, a.migrationId).toEqual(['tsc-0', 'tsc-1', 'tsc-2', 'tsc-3', 'kvmclock-0', 'realtime-0']);
      for (const w of seen.seriesWidths) expect(w, a.migrationId).toBeGreaterThan(800);
      // the 300 ms blackout of a ≈ 320 ms migration shown over 1.2 × its span: ≈ 900 × 300 / 385 px
      expect(seen.blackoutWidth, a.migrationId).toBeGreaterThan(600);
      expect(seen.verdict).toBe(a.verdict);
      expect(seen.verdictVisible).toBe(true);
      expect(seen.codes, a.migrationId).toEqual(a.findings.map((f) => f.code));
      expect(seen.lanes).toBeGreaterThan(20);
      await page.close();
    }

    const fleetFile = join(dir, 'demo-reports', 'fleet.html');
    const fleet = await open(fleetFile);
    expect(fleet.requests).toEqual([pathToFileURL(fleetFile).href]);
    expect(fleet.errors).toEqual([]);
    const rows = await fleet.page.evaluate(() =>
      [...document.querySelectorAll('table.fleet tbody tr')].map((tr) => [
        (tr.querySelector('a') as any).innerText,
        (tr.querySelector('.verdict') as any).innerText.toLowerCase(),
      ]),
    );
    expect(rows).toEqual(audits.map((a) => [a.migrationId, a.verdict]));
    await fleet.page.close();

    const replayFile = join(dir, 'm1-replay.html');
    const replay = await open(replayFile);
    expect(replay.requests).toEqual([pathToFileURL(replayFile).href]);
    expect(replay.errors).toEqual([]);
    const sides = await replay.page.evaluate(() => [...document.querySelectorAll('.side h3')].map((h) => h.innerText.replace(/\s+/g, ' ').trim()));
    expect(sides).toEqual(['recorded', 'replayed', 'recorded FAIL', 'linux-5.15 FAIL']);
    await replay.page.close();
  }, 60_000);

  it("the screenshot of m1's report is not blank: its pixels vary, and the kvmclock line's red is drawn", async () => {
    const { page } = await open(join(dir, 'demo-reports', 'm1.html'));
    const png = await page.screenshot({ type: 'png' });
    await page.close();
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const stats = await pixelStats(png, [0xd6, 0x27, 0x28]);
    // a blank white page is variance 0, mean 255
    const blank = await browser.newPage();
    await blank.setViewport({ width: 1240, height: 900 });
    const blankStats = await pixelStats(await blank.screenshot({ type: 'png' }), [0xd6, 0x27, 0x28]);
    await blank.close();
    expect(blankStats.variance).toBeLessThan(1);
    expect(stats.variance).toBeGreaterThan(300);
    expect(stats.mean).toBeLessThan(250);
    expect(stats.nearShare).toBeGreaterThan(0.001);
  });

  it('a report whose every text is hostile runs nothing and shows the text as text', async () => {
    const hostile = `<script>alert(1)</script><img src=x onerror="alert(2)">`;
    const html = migrationHtml(
      {
        migrationId: hostile,
        strategy: hostile,
        status: 'completed',
        vmId: hostile,
        newVmId: 'b',
        fromHost: 'a',
        toHost: 'b',
        vcpus: [],
        verdict: `fail"><script>alert(3)</script>`,
        findings: [{ code: `<script>alert(4)</script>`, severity: 'fail', message: hostile, positions: [1] }],
        guest: { log: [{ timeNs: '0', vcpu: 0, text: hostile }] },
      },
      null,
    );
    const file = join(dir, 'hostile.html');
    (await import('node:fs')).writeFileSync(file, html);
    const { page, requests, errors } = await open(file);
    expect(errors).toEqual([]);
    expect(requests).toEqual([pathToFileURL(file).href]);
    const dom = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script, img').length,
      h1: (document.querySelector('h1') as any).innerText,
      code: (document.querySelector('.finding .code') as any).innerText,
    }));
    expect(dom.scripts).toBe(0);
    expect(dom.h1).toContain('Migration <script>alert(1)</script><img src=x onerror="alert(2)">');
    expect(dom.code).toBe('<script>alert(4)</script>');
    expect(readFileSync(file, 'utf8')).not.toContain('<script>');
    await page.close();
  });
});
