import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactPath, BROWSER_SETUP_TIMEOUT_MS, launchBrowser } from '../support/browser.js';
import { startImmune, type ImmuneProcess } from '../support/immune-process.js';

/**
 * A larger fleet of external agents reporting over HTTP to `immune serve`:
 * the windowed agent grid, and a provider outage that the engine treats as
 * one fleet incident (banner) instead of quarantining every agent.
 */
const INGEST_API_KEY = 'e2e-ingest-key-0123456789';
const FLEET = 200;
const OUTAGE = 4;
const id = (i: number) => `ext-${String(i).padStart(3, '0')}`;

let proc: ImmuneProcess;
const timeline = (agent: string, kind: string) => page.locator(`[data-list="timeline"] li[data-agent="${agent}"][data-kind="${kind}"]`);
let browser: Browser;
let page: Page;

/** One task of agent i at time ts; agents 0..OUTAGE-1 share a provider that later goes slow and failing. */
function vitals(i: number, ts: number, k: number, outage = false) {
  const shared = i < OUTAGE;
  return {
    agent_id: id(i),
    agent_type: ['Research', 'Data', 'Support'][i % 3],
    model: shared ? 'outage-model' : `model-${i % 5}`,
    provider: shared ? 'outage-provider' : `provider-${i % 5}`,
    mcp_servers: ['postgres'],
    timestamp: ts,
    latency_ms: (outage ? 4000 : 300) + (k % 7) * 12,
    input_tokens: 500 + (k % 3) * 15,
    output_tokens: 200 + (k % 4) * 9,
    tool_calls: 2 + (k % 2),
    retries: 0,
    success: !outage,
    error_type: outage ? 'provider_timeout' : '',
    cost: 0.002,
  };
}

/** Batches of 1,000 stay under the default 1 MiB body limit; records are in time order per agent. */
async function ingest(records: object[]): Promise<void> {
  for (let i = 0; i < records.length; i += 1000) {
    const body = JSON.stringify(records.slice(i, i + 1000));
    const res = await fetch(`${proc.url}/api/v1/ingest`, { method: 'POST', headers: { 'x-api-key': INGEST_API_KEY, 'content-type': 'application/json' }, body });
    expect(res.status, await res.clone().text()).toBe(200);
  }
}

beforeAll(async () => {
  // First: it may have to install chromium, and the one-time login link should still be fresh after.
  browser = await launchBrowser();
  proc = await startImmune({ args: ['serve'], env: { INGEST_API_KEY } });
  const now = Date.now() / 1000;
  const normal: object[] = [];
  for (let k = 0; k < 30; k++) for (let i = 0; i < FLEET; i++) normal.push(vitals(i, now - 120 + k * 3 + i * 0.001, k));
  await ingest(normal);
  page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
}, BROWSER_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await proc?.stop();
});

describe('dashboard with a fleet of external agents', () => {
  it('windows a large grid: few cards in the DOM, every agent reachable by scrolling', async () => {
    await page.goto(proc.loginUrl);
    const grid = page.locator('[data-list="agents"]');
    await expect.poll(() => grid.getAttribute('data-total'), { timeout: 10_000 }).toBe(String(FLEET));
    const inDom = await page.locator('[data-list="agents"] [data-agent]').count();
    expect(inDom).toBeGreaterThan(0);
    expect(inDom).toBeLessThan(FLEET);
    expect(await page.locator(`[data-agent="${id(FLEET - 1)}"]`).count()).toBe(0);
    await page.locator('select[aria-label="Sort"]').selectOption('name');
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await page.locator(`[data-list="agents"] [data-agent="${id(FLEET - 1)}"]`).waitFor({ timeout: 5000 });
    expect(await page.locator(`[data-list="agents"] [data-agent="${id(0)}"]`).count()).toBe(0);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.locator(`[data-list="agents"] [data-agent="${id(0)}"]`).waitFor({ timeout: 5000 });
    expect(await page.locator(`[data-list="agents"] [data-agent="${id(0)}"] .tag`).textContent()).toBe('external');
  });

  it('shows a provider outage as one fleet incident banner, live, without quarantining the agents', async () => {
    expect(await page.locator('[data-banner="incident"]').count()).toBe(0);
    const now = Date.now() / 1000;
    const outage: object[] = [];
    for (let k = 0; k < 10; k++) for (let i = 0; i < OUTAGE; i++) outage.push(vitals(i, now - 10 + k + i * 0.001, k, true));
    await ingest(outage);
    const banner = page.locator('[data-banner="incident"]');
    await banner.waitFor({ timeout: 5000 });
    expect(await banner.textContent()).toMatch(new RegExp(`Provider incident: (provider outage-provider|model outage-model), ${OUTAGE} agents affected — not quarantined`));
    await page.fill('input[type="search"]', 'outage-model');
    await expect.poll(() => page.locator('[data-list="agents"] [data-agent]').count()).toBe(OUTAGE);
    const statuses = await page.locator('[data-list="agents"] [data-agent]').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    expect(statuses).toEqual(Array(OUTAGE).fill('healthy'));
    expect(await page.locator('[data-list="agents"] [data-agent] .tag.incident').count()).toBe(OUTAGE);
    await page.screenshot({ path: artifactPath('dashboard-fleet-incident.png') });
  });

  it('bulk actions: Approve all, then Reject all and Heal all', async () => {
    await page.locator('button', { hasText: 'Clear filters' }).click();
    const t0 = Date.now() / 1000 - 100;
    const bulk = (i: number) => `bulk-${i}`;
    /** A task of bulk agent i: each on its own provider (no fleet correlation); sick = tokens and tool calls ×10. */
    const task = (i: number, ts: number, k: number, sick: boolean) => ({
      ...vitals(1000 + i, ts, k),
      agent_id: bulk(i),
      model: `bulk-model-${i}`,
      provider: `bulk-provider-${i}`,
      output_tokens: (200 + (k % 4) * 9) * (sick ? 10 : 1),
      tool_calls: (2 + (k % 2)) * (sick ? 10 : 1),
    });
    const normal: object[] = [];
    for (let k = 0; k < 30; k++) for (let i = 0; i < 4; i++) normal.push(task(i, t0 + k * 2 + i * 0.001, k, false));
    await ingest(normal);
    const sicken = async (ids: number[]) => {
      const recs: object[] = [];
      for (let k = 0; k < 8; k++) for (const i of ids) recs.push(task(i, t0 + 70 + k + i * 0.001, k, true));
      await ingest(recs);
    };
    const pendingIds = () => page.locator('[data-list="pending"] > li').evaluateAll((els) => els.map((e) => e.getAttribute('data-agent')).sort());
    const rejectedIds = () => page.locator('[data-list="rejected"] > li').evaluateAll((els) => els.map((e) => e.getAttribute('data-agent')).sort());

    await sicken([0, 1]);
    await expect.poll(pendingIds, { timeout: 10_000 }).toEqual([bulk(0), bulk(1)]);
    await page.locator('button', { hasText: 'Approve all' }).click();
    await expect.poll(pendingIds, { timeout: 5000 }).toEqual([]);
    for (const i of [0, 1]) await timeline(bulk(i), 'approved').waitFor({ timeout: 5000 });

    await sicken([2, 3]);
    await expect.poll(pendingIds, { timeout: 10_000 }).toEqual([bulk(2), bulk(3)]);
    await page.locator('button', { hasText: 'Reject all' }).click();
    await expect.poll(rejectedIds, { timeout: 5000 }).toEqual([bulk(2), bulk(3)]);
    await page.locator('button', { hasText: 'Heal all' }).click();
    await expect.poll(rejectedIds, { timeout: 5000 }).toEqual([]);
    for (const i of [2, 3]) await timeline(bulk(i), 'heal_now').waitFor({ timeout: 5000 });
  });
});
