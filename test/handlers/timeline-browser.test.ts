// The timeline page (timeline --html) in headless Chromium, as the report pages are tested: four
// standbys of a guest with no time sync, then its page loads with no console error and no request
// but its own, its chart has the three clocks' series, the finding naming the cycle is visible, a
// VM id that is markup is shown as text, and its policy forbids every load.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'puppeteer-core';
import { openConfined } from '../helpers/browser-page.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timelineHtml, type LifeLike } from '../../machines/export/html/timeline.js';
import { launchBrowser } from '../../scripts/browser.js';
import { tempDir } from '../helpers/ledger.js';

declare const document: any;

const root = join(import.meta.dirname, '..', '..');
let dir: string;
let db: string;
let browser: Browser;

const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'dist/handlers/cli/main.js'), '--db', db, ...args], { encoding: 'utf8', cwd: dir });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
};

beforeAll(async () => {
  dir = tempDir('clockledger-timeline-');
  db = join(dir, 'life.db');
  cli('hosts', 'create', 'a', '--tsc-khz', '3000000');
  cli('vms', 'create', 'web', '--host', 'a', '--vcpus', '2', '--ntp', 'none');
  cli('run', 'web');
  for (const v of ['0', '1']) cli('guest', 'web', 'wrmsr', '--vcpu', v, '--msr', 'MSR_KVM_SYSTEM_TIME_NEW', '--value', String(0x10001 + 0x1000 * Number(v)));
  cli('time', 'advance', '10s');
  for (let i = 0; i < 4; i++) {
    cli('migrate', 'web', '--in-place', '--strategy', 'qemu', '--blackout', '45s');
    cli('time', 'advance', '100s');
  }
  cli('timeline', 'web', '--tolerance', '60s', '--html', '--out', join(dir, 'life.html'));
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the timeline page in headless Chromium', () => {
  it('loads alone, draws the three clocks and shows the cycle that crossed the tolerance', async () => {
    const file = join(dir, 'life.html');
    const html = readFileSync(file, 'utf8');
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).not.toContain('<script');
    const { page, requests, errors } = await openConfined(browser, file);
    const url = pathToFileURL(file).href;
    expect(requests).toEqual([url]);
    expect(errors).toEqual([]);
    const seen = await page.evaluate(() => ({
      series: ([...document.querySelectorAll('svg path.series')] as any[]).map((p) => p.getAttribute('data-series')),
      text: document.body.innerText as string,
      stops: document.querySelectorAll('table')[1].querySelectorAll('tbody tr').length as number,
    }));
    expect(seen.series).toEqual(['tsc-0', 'kvmclock-0', 'realtime-0']);
    expect(seen.text).toContain('realtime_beyond_tolerance');
    expect(seen.text).toContain('from cycle 2 (m2, standby of web)');
    expect(seen.stops).toBe(4);
    await page.close();
  });

  it('escapes every text it shows', () => {
    const life = JSON.parse(cli('timeline', 'web', '--json')).timeline as LifeLike;
    const hostile = { ...life, vmIds: ['<img src=x onerror=alert(1)>'], findings: [{ ...life.findings[0]!, message: '</td><script>alert(1)</script>' }] };
    const html = timelineHtml(hostile as LifeLike);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });
});
