// A page opened from its file in headless Chromium, confined as a report must be: every request it
// makes is recorded and any but its own file refused, and console errors and warnings, page errors
// and dialogs are recorded (a dialog is dismissed).
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';

export interface OpenedPage {
  page: Page;
  requests: string[];
  errors: string[];
}

export async function openConfined(browser: Browser, file: string, viewport = { width: 1240, height: 900 }): Promise<OpenedPage> {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  const url = pathToFileURL(file).href;
  const requests: string[] = [];
  const errors: string[] = [];
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    requests.push(req.url());
    if (req.url() === url) void req.continue();
    else void req.abort();
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${String(e)}`));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(url, { waitUntil: 'load' });
  return { page, requests, errors };
}
