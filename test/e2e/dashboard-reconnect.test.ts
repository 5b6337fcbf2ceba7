import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_SETUP_TIMEOUT_MS, launchBrowser } from '../support/browser.js';
import { startImmune, type ImmuneProcess } from '../support/immune-process.js';
import { freePort } from '../support/influxd.js';

/**
 * The control plane restarts under an open dashboard (same port, same cache
 * directory, same operator token): the page says the live stream is
 * interrupted, reconnects on its own, reloads the overview, and is live again.
 */
const INGEST_API_KEY = 'e2e-reconnect-ingest-key-0123';
const OPERATOR_TOKEN = 'e2e-reconnect-operator-token-0123';

let browser: Browser;
let page: Page;
let proc: ImmuneProcess | null = null;
let port: number;
let cacheDir: string;

const start = () => startImmune({ args: ['serve'], port, cacheDir, env: { INGEST_API_KEY, OPERATOR_TOKEN } });

async function report(agentIds: string[], from: number, n: number): Promise<void> {
  const records = [];
  for (let k = 0; k < n; k++) for (const id of agentIds) records.push({ agent_id: id, timestamp: from + k, latency_ms: 300 + (k % 5) * 10, input_tokens: 500, output_tokens: 200, tool_calls: 2, success: true, cost: 0.002 });
  const res = await fetch(`${proc!.url}/api/v1/ingest`, { method: 'POST', headers: { 'x-api-key': INGEST_API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(records) });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  browser = await launchBrowser();
  port = await freePort();
  cacheDir = mkdtempSync(join(tmpdir(), 'immune-e2e-reconnect-'));
  proc = await start();
  page = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
}, BROWSER_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await proc?.stop();
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
});

describe('dashboard across a control-plane restart', () => {
  it('says the stream is interrupted, then reconnects and is live again without a reload', async () => {
    const now = Date.now() / 1000;
    await report(['keep-1', 'keep-2', 'keep-3'], now - 40, 20);
    await page.goto(proc!.loginUrl);
    await expect.poll(() => page.locator('[data-list="agents"] [data-agent]').count(), { timeout: 10_000 }).toBe(3);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 5000 });

    const overviewLoads: string[] = [];
    page.on('request', (r) => r.url().includes('/api/v1/overview') && overviewLoads.push(r.url()));
    await proc!.stop();
    proc = null;
    await page.locator('[data-banner="connection"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-connection="reconnecting"]').count()).toBe(1);

    proc = await start();
    await page.locator('[data-connection="live"]').waitFor({ timeout: 20_000 });
    await page.locator('[data-banner="connection"]').waitFor({ state: 'detached', timeout: 5000 });
    // The stream may have moved past what it can replay: the overview is fetched again, once.
    await expect.poll(() => overviewLoads.length, { timeout: 5000 }).toBe(1);
    // The same page (no navigation), the fleet reloaded, and new changes arrive over the new stream.
    await report(['after-restart'], Date.now() / 1000 - 5, 3);
    await page.locator('[data-list="agents"] [data-agent="after-restart"]').waitFor({ timeout: 5000 });
    for (const id of ['keep-1', 'keep-2', 'keep-3']) expect(await page.locator(`[data-list="agents"] [data-agent="${id}"]`).count()).toBe(1);
  });
});
