// A headless Chromium for the report's browser tests and its screenshot: the system's
// (/usr/bin/chromium, or CLOCKLEDGER_CHROMIUM), else the one shipped inside the
// @sparticuz/chromium dev dependency (unpacked into the temp directory on first use), so a fresh
// `npm ci` is enough. Driven through puppeteer-core; each launch gets a user-data directory of its
// own, removed at close, and no background networking.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';

const SYSTEM_CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** The browser binary: CLOCKLEDGER_CHROMIUM, else the system's, else the npm-shipped one. */
export async function chromiumPath(): Promise<{ path: string; from: 'env' | 'system' | 'npm' }> {
  const env = process.env.CLOCKLEDGER_CHROMIUM;
  if (env) return { path: env, from: 'env' };
  const system = SYSTEM_CHROMIUM.find((p) => existsSync(p));
  if (system) return { path: system, from: 'system' };
  const chromium = (await import('@sparticuz/chromium')).default;
  return { path: await chromium.executablePath(), from: 'npm' };
}

/** A headless browser; close() also removes its profile directory. */
export async function launchBrowser(): Promise<Browser> {
  const puppeteer = (await import('puppeteer-core')).default;
  const { path } = await chromiumPath();
  const profile = mkdtempSync(join(tmpdir(), 'clockledger-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: path,
    headless: true,
    args: [
      // a container as root has no user namespaces for the sandbox
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-extensions',
      '--disable-dev-shm-usage',
      '--font-render-hinting=none',
      `--user-data-dir=${profile}`,
    ],
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try {
      await close();
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  };
  return browser;
}
