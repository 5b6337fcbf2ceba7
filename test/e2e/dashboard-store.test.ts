import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactPath, BROWSER_SETUP_TIMEOUT_MS, launchBrowser } from '../support/browser.js';
import { startImmune, type ImmuneProcess } from '../support/immune-process.js';
import { findInfluxd, startInfluxd, type Influxd } from '../support/influxd.js';

/**
 * The store-health banner, with a real store outage: `immune serve` runs on a
 * real InfluxDB (Debian's influxd, IMMUNE_STORE=influx), which is stopped and
 * started again while the dashboard is open.
 */
const INGEST_API_KEY = 'e2e-store-ingest-key-0123456789';
const bin = findInfluxd();

if ('skip' in bin) {
  // Said out loud so a green run without InfluxDB is never mistaken for a tested banner.
  console.warn(`dashboard store-outage test skipped: ${bin.skip}`);
} else {
  let influx: Influxd;
  let product: ImmuneProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    // First: it may have to install chromium, and the one-time login link should still be fresh after.
    browser = await launchBrowser();
    influx = await startInfluxd(bin.path);
    product = await startImmune({ args: ['serve'], env: { IMMUNE_STORE: 'influx', INFLUXDB_URL: influx.url, INGEST_API_KEY } });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 800 } })).newPage();
  }, BROWSER_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
    await product?.stop();
    await influx?.destroy();
  });

  describe('store health on the dashboard (real InfluxDB outage)', () => {
    it('shows no banner while the store is reachable', async () => {
      await page.goto(product.loginUrl);
      await page.locator('[data-connection="live"]').waitFor({ timeout: 10_000 });
      expect(await page.locator('[data-banner="store"]').count()).toBe(0);
    });

    it('shows the degraded banner, with the queued writes, while InfluxDB is down, and clears it when it is back', async () => {
      await influx.stop();
      // Vitals accepted during the outage are queued, not lost: the banner counts them.
      const now = Date.now() / 1000;
      const records = Array.from({ length: 20 }, (_, k) => ({ agent_id: 'during-outage', timestamp: now - 20 + k, latency_ms: 300, input_tokens: 500, output_tokens: 200, tool_calls: 2, success: true }));
      const res = await fetch(`${product.url}/api/v1/ingest`, { method: 'POST', headers: { 'x-api-key': INGEST_API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(records) });
      expect(res.status).toBe(200);

      const banner = page.locator('[data-banner="store"]');
      await banner.waitFor({ timeout: 15_000 });
      expect(await banner.textContent()).toMatch(/Store degraded \(influx\)/);
      await expect.poll(async () => Number(/(\d+) write\(s\) queued/.exec((await banner.textContent()) ?? '')?.[1] ?? 0), { timeout: 10_000 }).toBeGreaterThan(0);
      await page.screenshot({ path: artifactPath('dashboard-store-degraded.png') });
      // The dashboard keeps working from memory meanwhile.
      await page.locator('[data-list="agents"] [data-agent="during-outage"]').waitFor({ timeout: 5000 });

      await influx.start();
      await banner.waitFor({ state: 'detached', timeout: 30_000 });
    });
  });
}
