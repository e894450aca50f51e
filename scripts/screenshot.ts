// npm run screenshot: the picture of docs/guide.md — the demo's first migration (qemu) as its HTML
// report shows it in headless Chromium, the top of the page (verdict, summary, the clock timelines across the migration and after the resume,
// the findings), written to docs/report.png.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { closeStores } from '../handlers/context.js';
import { handlers } from '../handlers/index.js';
import { launchBrowser } from './browser.js';

const out = join(import.meta.dirname, '..', 'docs', 'report.png');
const dir = mkdtempSync(join(tmpdir(), 'clockledger-screenshot-'));
try {
  const r = (await handlers.demo({}, { db: join(dir, 'clockledger.db') })) as Record<string, any>;
  if (!r.ok) throw new Error(`demo refused: ${JSON.stringify(r.error)}`);
  closeStores();
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 1000, deviceScaleFactor: 1 });
    await page.goto(pathToFileURL(r.reports.files[0]).href, { waitUntil: 'load' });
    // down to the end of the findings
    const bottom = await page.evaluate(
      `(() => { const h = [...document.querySelectorAll('h2')].find((e) => e.textContent === ` +
        `'Frequencies and offsets'); return Math.ceil(h.getBoundingClientRect().top) - 8; })()`,
    );
    await page.screenshot({ path: out as `${string}.png`, clip: { x: 0, y: 0, width: 1100, height: Number(bottom) } });
  } finally {
    await browser.close();
  }
  console.log(`wrote ${out}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
