import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactPath, BROWSER_SETUP_TIMEOUT_MS, launchBrowser } from '../support/browser.js';
import { startImmune, type ImmuneProcess } from '../support/immune-process.js';

/**
 * The dashboard in headless Chromium against the real `immune demo` process:
 * a 6-agent simulated fleet with three severe infections scheduled (prompt
 * injection at ×9, far above the 5σ approval threshold; three so that two
 * reach pending approval even if the engine catches one early as mild on a
 * loaded machine). Ticks are 0.2 s so baselines are learned in ~3 s.
 */
const OPERATOR_TOKEN = 'e2e-operator-token-0123456789';
const VIEWER_TOKEN = 'e2e-viewer-token-0123456789';
const SEVERE = '6:prompt_injection:0:9,6:prompt_injection:1:9,6:prompt_injection:2:9';

let proc: ImmuneProcess;
let browser: Browser;
let operator: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

const card = (id: string) => page.locator(`[data-list="agents"] [data-agent="${id}"]`);
const timeline = (id: string, kind: string, extra = '') => page.locator(`[data-list="timeline"] li[data-agent="${id}"][data-kind="${kind}"]${extra}`);

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(proc.url + path, { ...init, headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json', ...init.headers } });
}

beforeAll(async () => {
  // First: it may have to install chromium, and the one-time login link should still be fresh after.
  browser = await launchBrowser();
  proc = await startImmune({
    args: ['demo', '--agents', '6', '--duration', '0', '--chaos-schedule', SEVERE],
    env: { TICK_INTERVAL_SECONDS: '0.2', HEALING_STEP_DELAY_SECONDS: '0.3', OPERATOR_TOKEN, VIEWER_TOKEN },
  });
  operator = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  page = await operator.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, BROWSER_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await proc?.stop();
});

describe('dashboard in headless Chromium against `immune demo`', () => {
  let approvedId = '';
  let rejectedId = '';

  it('logs in through the printed one-time URL and shows every agent', async () => {
    await page.goto(proc.loginUrl);
    expect(new URL(page.url()).pathname).toBe('/');
    await expect.poll(() => page.locator('[data-list="agents"] [data-agent]').count(), { timeout: 15_000 }).toBe(6);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 5000 });
    expect(await page.locator('[data-role]').getAttribute('data-role')).toBe('operator');
    // The stats section counts the same fleet.
    expect(await page.locator('[data-stat="agents"] .stat-value').textContent()).toBe('6');
  });

  it('shows severe infections in pending approvals with σ, anomalies and diagnosis', async () => {
    const pending = page.locator('[data-list="pending"] > li');
    await expect.poll(() => pending.count(), { timeout: 45_000, interval: 250 }).toBeGreaterThanOrEqual(2);
    const ids = await pending.evaluateAll((els) => els.map((e) => e.getAttribute('data-agent')!));
    [approvedId, rejectedId] = ids;
    for (const id of ids) {
      const text = (await page.locator(`[data-list="pending"] > li[data-agent="${id}"]`).textContent()) ?? '';
      const sigma = Number(/(\d+(?:\.\d+)?)σ/.exec(text)?.[1]);
      expect(sigma).toBeGreaterThanOrEqual(5);
      expect(text).toMatch(/Diagnosis: /);
      expect(await card(id).getAttribute('data-status')).toBe('pending_approval');
      expect(await timeline(id, 'approval_requested').count()).toBe(1);
    }
  });

  it('takes "wrong diagnosis, it was X" feedback in the detail view and reorders the hypotheses', async () => {
    await page.locator(`[data-list="pending"] > li[data-agent="${approvedId}"] a.agent-link`).click();
    const drawer = page.locator(`[data-detail="${approvedId}"]`);
    await drawer.locator('select[aria-label="Actual diagnosis"]').selectOption('memory_corruption');
    await drawer.locator('input[aria-label="Note"]').fill('e2e: it was the memory');
    await drawer.locator('button', { hasText: 'Send feedback' }).click();
    await expect.poll(() => drawer.locator('.hypotheses li').first().textContent(), { timeout: 5000 }).toContain('memory corruption');
    await timeline(approvedId, 'feedback').waitFor({ timeout: 5000 });
    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'detached', timeout: 5000 });
  });

  it('approves one and the healing shows up in the timeline, triggered "after approval"', async () => {
    await page.locator(`[data-list="pending"] > li[data-agent="${approvedId}"] button`, { hasText: 'Approve' }).click();
    await timeline(approvedId, 'approved').waitFor({ timeout: 5000 });
    expect(await timeline(approvedId, 'approved').textContent()).toContain('by operator');
    await timeline(approvedId, 'healing_attempt', '[data-trigger="after_approval"]').first().waitFor({ timeout: 10_000 });
    await page.locator(`[data-list="pending"] > li[data-agent="${approvedId}"]`).waitFor({ state: 'detached', timeout: 5000 });
    // The ladder runs until an action cures the agent and probation confirms it.
    await timeline(approvedId, 'healing_succeeded').waitFor({ timeout: 40_000 });
    await expect.poll(() => card(approvedId).getAttribute('data-status'), { timeout: 5000 }).toBe('healthy');
  });

  it('rejects the other, keeps it quarantined, then "Heal now" heals it', async () => {
    await page.locator(`[data-list="pending"] > li[data-agent="${rejectedId}"] button`, { hasText: 'Reject' }).click();
    const rejectedItem = page.locator(`[data-list="rejected"] > li[data-agent="${rejectedId}"]`);
    await rejectedItem.waitFor({ timeout: 5000 });
    expect(await rejectedItem.textContent()).toContain('by operator');
    expect(await card(rejectedId).getAttribute('data-status')).toBe('rejected');
    await timeline(rejectedId, 'rejected').waitFor({ timeout: 5000 });
    expect(await page.locator(`[data-list="pending"] > li[data-agent="${rejectedId}"]`).count()).toBe(0);

    await rejectedItem.locator('button', { hasText: 'Heal now' }).click();
    await timeline(rejectedId, 'heal_now').waitFor({ timeout: 5000 });
    await timeline(rejectedId, 'healing_attempt', '[data-trigger="heal_now"]').first().waitFor({ timeout: 10_000 });
    await rejectedItem.waitFor({ state: 'detached', timeout: 5000 });
    await timeline(rejectedId, 'healing_succeeded').waitFor({ timeout: 40_000 });
    // Immune memory learned from both episodes.
    expect(await page.locator('[data-list="patterns"] tbody tr').count()).toBeGreaterThan(0);
  });

  it("opens an agent's detail view: every vital charted against its baseline band, with the moment of infection", async () => {
    await card(approvedId).locator('a.agent-link').click();
    const drawer = page.locator(`[data-detail="${approvedId}"]`);
    await drawer.waitFor({ timeout: 10_000 });
    const charts = drawer.locator('figure.chart');
    await expect.poll(() => charts.count(), { timeout: 10_000 }).toBe(8);
    const tools = drawer.locator('figure.chart[data-metric="Tool calls"]');
    await expect.poll(async () => Number(await tools.getAttribute('data-points')), { timeout: 5000 }).toBeGreaterThanOrEqual(15);
    expect(await tools.getAttribute('data-band')).toBe('1');
    expect(await tools.getAttribute('data-markers')).toContain('infection');
    // It is a picture: the canvas holds the green band and the red infection line.
    const colours = await tools.locator('canvas').first().evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let red = 0;
      let green = 0;
      for (let i = 0; i < d.length; i += 4) {
        const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
        if (a > 200 && r > 180 && g < 80 && b < 80) red++;
        if (a > 0 && g > r && g > b && r < 200) green++;
      }
      return { red, green };
    });
    expect(colours.red).toBeGreaterThan(20);
    expect(colours.green).toBeGreaterThan(100);
    await page.screenshot({ path: artifactPath('dashboard-detail.png') });

    // Manual containment from the detail view, with the reason kept in the audit trail.
    await drawer.locator('input[aria-label="Reason"]').fill('e2e: maintenance window');
    await drawer.locator('button', { hasText: /^Quarantine$/ }).click();
    await drawer.locator('.badge.st-quarantined').waitFor({ timeout: 3000 });
    expect(await timeline(approvedId, 'quarantined').first().textContent()).toContain('e2e: maintenance window');
    await drawer.locator('button', { hasText: /^Release$/ }).click();
    await drawer.locator('.badge.st-healthy').waitFor({ timeout: 3000 });
    expect(await card(approvedId).getAttribute('data-status')).toBe('healthy');

    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'detached', timeout: 5000 });
  });

  it('search and the status filter narrow the grid', async () => {
    // "/" focuses the search box; the query matches id, type, model or MCP server.
    await page.keyboard.press('/');
    await page.keyboard.type(rejectedId);
    const cards = page.locator('[data-list="agents"] [data-agent]');
    await expect.poll(() => cards.count(), { timeout: 5000 }).toBeLessThan(6);
    const texts = await cards.evaluateAll((els) => els.map((e) => [e.getAttribute('data-agent'), e.textContent!.toLowerCase()] as const));
    expect(texts.map(([id]) => id)).toContain(rejectedId);
    for (const [, text] of texts) expect(text).toContain(rejectedId.toLowerCase());
    await page.locator('button', { hasText: 'Clear filters' }).click();
    await page.selectOption('select[aria-label="Status"]', 'healthy');
    const statuses = await page.locator('[data-list="agents"] [data-agent]').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set(['healthy']));
    await page.locator('button', { hasText: 'Clear filters' }).click();
    await expect.poll(() => page.locator('[data-list="agents"] [data-agent]').count()).toBe(6);
  });

  it('shows a change made elsewhere within 1 s, pushed over the event stream (no polling)', async () => {
    const overviewLoads: string[] = [];
    page.on('request', (r) => r.url().includes('/api/v1/overview') && overviewLoads.push(r.url()));
    const target = (await page.locator('[data-list="agents"] [data-status="healthy"]').first().getAttribute('data-agent'))!;
    const t0 = Date.now();
    const res = await api(`/api/v1/agents/${encodeURIComponent(target)}/quarantine`, { method: 'POST', body: JSON.stringify({ reason: 'e2e: manual quarantine' }) });
    expect(res.status).toBe(200);
    await page.locator(`[data-list="agents"] [data-agent="${target}"][data-status="quarantined"]`).waitFor({ timeout: 1000 });
    const shownAfterMs = Date.now() - t0;
    expect(shownAfterMs).toBeLessThan(1000);
    await timeline(target, 'quarantined').waitFor({ timeout: 1000 });

    await api(`/api/v1/agents/${encodeURIComponent(target)}/release`, { method: 'POST', body: '{}' });
    await page.locator(`[data-list="agents"] [data-agent="${target}"][data-status="healthy"]`).waitFor({ timeout: 1000 });
    expect(overviewLoads).toEqual([]);
    process.stdout.write(`[e2e] manual quarantine visible in the browser after ${shownAfterMs} ms\n`);
  });

  it('saves a screenshot of the dashboard', async () => {
    const path = artifactPath('dashboard.png');
    await page.screenshot({ path, fullPage: true });
    const { statSync } = await import('node:fs');
    expect(statSync(path).size).toBeGreaterThan(20_000);
  });

  it('a used login link and a wrong token are refused with a reason; a viewer session sees the fleet but no action buttons', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    try {
      const viewer = await ctx.newPage();
      // The one-time link was used by the operator: reopening it lands on the sign-in form, which says why.
      await viewer.goto(proc.loginUrl);
      await viewer.locator('.login [role="alert"]', { hasText: 'already used or has expired' }).waitFor({ timeout: 5000 });
      await viewer.fill('input[type="password"]', 'not-the-token');
      await viewer.click('button[type="submit"]');
      await viewer.locator('.login [role="alert"]', { hasText: 'wrong token' }).waitFor({ timeout: 5000 });
      await viewer.fill('input[type="password"]', VIEWER_TOKEN);
      await viewer.click('button[type="submit"]');
      await viewer.locator('[data-role="viewer"]').waitFor({ timeout: 5000 });
      await expect.poll(() => viewer.locator('[data-list="agents"] [data-agent]').count(), { timeout: 5000 }).toBe(6);
      await viewer.locator(`[data-list="agents"] [data-agent="${rejectedId}"] a.agent-link`).click();
      await viewer.locator(`[data-detail="${rejectedId}"] figure.chart`).first().waitFor({ timeout: 10_000 });
      const actionButtons = viewer.locator('button', { hasText: /^(Approve|Reject|Heal now|Approve all|Reject all|Heal all|Quarantine|Release|Accept as new baseline|Send feedback|Approve healing)$/ });
      expect(await actionButtons.count()).toBe(0);
    } finally {
      await ctx.close();
    }
  });

  it('ran without uncaught errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
