/**
 * Dashboard first load and responsiveness with 1,000 agents (target: first load < 1 s).
 *
 *   npm run build && node --import tsx bench/dashboard-load.ts [--agents 1000] [--runs 7] [--observe 10]
 *
 * Two real control planes, measured side by side in one run:
 *   - quiet: `immune serve` with N external agents that reported 20 tasks each over
 *     HTTP ingest and then went quiet (the dashboard's own cost);
 *   - live:  `immune demo` with N simulated agents, each reporting every second, so
 *     every `agents` SSE message carries ~N changed summaries and the server is busy.
 * For each, RUNS page loads in fresh browser contexts (cold cache) in headless Chromium:
 *   - first load: navigation start → the fleet painted (the app's
 *     `immune:first-data-paint` mark, set in an effect after the first render with data);
 *   - when the overview was requested and received, its size;
 * and, on the live fleet, one page left open:
 *   - main-thread long tasks (> 50 ms) per second and the longest one;
 *   - frame gaps (requestAnimationFrame intervals);
 *   - search latency: typing a query → the filtered grid painted.
 *   - the stream the page opens (its URL read from the built index.html), read from Node
 *     for a few seconds: bytes and messages per event type.
 * Medians of the runs, with the load average (other work on the machine skews wall-clock numbers).
 *
 * `--compare DIR` measures a second build (e.g. `git archive HEAD | tar -x -C DIR`, a
 * node_modules symlink and `npm run build` there) in the same run: the two quiet fleets run
 * side by side and their page loads alternate (A B, B A, …); the live fleets take turns (DIR first) for
 * `--rounds` rounds (default 3), since two simulators at once would double the load being measured.
 * Results also go to bench/results/dashboard-load.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Browser, BrowserContextOptions } from 'playwright-core';
import { artifactPath, launchBrowser } from '../test/support/browser.js';
import { startImmune, type ImmuneProcess } from '../test/support/immune-process.js';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '7' },
    observe: { type: 'string', default: '10' },
    compare: { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});
const AGENTS = Number(values.agents);
const RUNS = Number(values.runs);
const OBSERVE_S = Number(values.observe);
const TOKEN = 'bench-operator-token-0123456789';
const INGEST_KEY = 'bench-ingest-key-0123456789';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const round = (x: number) => Math.round(x * 10) / 10;
const load1 = () => round(loadavg()[0]);

interface Load {
  firstPaintMs: number;
  overviewStartMs: number;
  overviewReceivedMs: number;
  /** When the last byte of the overview arrived (the app may still be loading then). */
  overviewResponseEndMs: number;
  /** On the wire (compressed when the server compresses) and decoded. */
  overviewBytes: number;
  overviewDecodedBytes: number;
  domContentLoadedMs: number;
  cards: number;
  rendered: number;
  /** Renderer main-thread CPU time and its parts up to the first-paint mark (Chrome's Performance.getMetrics). */
  cpuMs: number;
  scriptMs: number;
  layoutStyleMs: number;
}

async function waitForFleet(proc: ImmuneProcess, minExecutions: number): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const o = (await (await fetch(`${proc.url}/api/v1/agents`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { agents: { executions: number }[] };
    if (o.agents.length >= AGENTS && o.agents.every((a) => a.executions >= minExecutions)) return;
    if (Date.now() - t0 > 90_000) throw new Error(`only ${o.agents.length} agents reported after 90 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Logs in once through the one-time URL; every later context reuses the cookie. */
async function sessionState(browser: Browser, proc: ImmuneProcess): Promise<BrowserContextOptions['storageState']> {
  const login = await browser.newContext();
  await (await login.newPage()).goto(proc.loginUrl);
  const state = await login.storageState();
  await login.close();
  return state;
}

type StorageState = BrowserContextOptions['storageState'];

/** One page load in a fresh context (cold cache) until the fleet is painted. */
async function measureLoad(browser: Browser, proc: ImmuneProcess, storageState: StorageState): Promise<Load> {
  const ctx = await browser.newContext({ storageState, viewport: { width: 1400, height: 1000 } });
  try {
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(proc.url + '/');
    await page.waitForFunction(() => performance.getEntriesByName('immune:first-data-paint').length > 0, undefined, { timeout: 30_000 });
    const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] };
    const metric = (name: string) => (metrics.find((m) => m.name === name)?.value ?? NaN) * 1000;
    const l = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      const ov = (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).find((r) => r.name.includes('/api/v1/overview'))!;
      return {
        firstPaintMs: performance.getEntriesByName('immune:first-data-paint')[0].startTime,
        overviewStartMs: ov.startTime,
        overviewReceivedMs: performance.getEntriesByName('immune:overview-received')[0]?.startTime ?? NaN,
        overviewResponseEndMs: ov.responseEnd,
        overviewBytes: ov.encodedBodySize,
        overviewDecodedBytes: ov.decodedBodySize,
        domContentLoadedMs: nav.domContentLoadedEventEnd,
        cards: Number(document.querySelector('[data-list="agents"]')?.getAttribute('data-total')),
        rendered: document.querySelectorAll('[data-list="agents"] [data-agent]').length,
      };
    });
    if (l.cards !== AGENTS || l.rendered === 0) throw new Error(`grid holds ${l.cards} agents (${l.rendered} rendered), expected ${AGENTS}`);
    return { ...l, cpuMs: metric('ThreadTime'), scriptMs: metric('ScriptDuration'), layoutStyleMs: metric('LayoutDuration') + metric('RecalcStyleDuration') };
  } finally {
    await ctx.close();
  }
}

/**
 * RUNS loads on each target, interleaved so that they share the machine's load, and in
 * alternating order (A B, B A, A B …) so that neither always follows the other.
 */
async function measureLoads(browser: Browser, targets: Array<{ proc: ImmuneProcess; storageState: StorageState }>): Promise<Load[][]> {
  const loads: Load[][] = targets.map(() => []);
  for (let i = 0; i < RUNS; i++) {
    const order = [...targets.keys()];
    if (i % 2 === 1) order.reverse();
    for (const k of order) loads[k].push(await measureLoad(browser, targets[k].proc, targets[k].storageState));
  }
  return loads;
}

function summarise(loads: Load[]) {
  const first = loads.map((l) => l.firstPaintMs);
  return {
    first_load_ms: { median: round(median(first)), min: round(Math.min(...first)), max: round(Math.max(...first)) },
    dom_content_loaded_ms: round(median(loads.map((l) => l.domContentLoadedMs))),
    overview_requested_at_ms: round(median(loads.map((l) => l.overviewStartMs))),
    overview_received_at_ms: round(median(loads.map((l) => l.overviewReceivedMs))),
    overview_response_end_ms: round(median(loads.map((l) => l.overviewResponseEndMs))),
    overview_kib: round(loads[0].overviewBytes / 1024),
    overview_decoded_kib: round(loads[0].overviewDecodedBytes / 1024),
    cards_in_dom: loads[0].rendered,
    main_thread_cpu_ms: round(median(loads.map((l) => l.cpuMs))),
    script_ms: round(median(loads.map((l) => l.scriptMs))),
    layout_and_style_ms: round(median(loads.map((l) => l.layoutStyleMs))),
  };
}

/** N external agents, 20 tasks each, in time order, in batches under the 1 MiB body limit. */
async function ingestQuietFleet(proc: ImmuneProcess): Promise<void> {
  const now = Date.now() / 1000;
  const records: object[] = [];
  for (let k = 0; k < 20; k++) {
    for (let i = 0; i < AGENTS; i++) {
      records.push({
        agent_id: `agent-${String(i).padStart(4, '0')}`,
        agent_type: ['Research', 'Data', 'Analytics', 'Coordinator'][i % 4],
        model: ['GPT-5', 'Claude Sonnet 4', 'Gemini 2.0', 'GPT-4o'][i % 4],
        mcp_servers: ['postgres', 'web-fetch', 'notion'].slice(0, 1 + (i % 3)),
        timestamp: now - 60 + k * 2 + i * 1e-4,
        latency_ms: 300 + ((i * 7 + k * 13) % 50),
        input_tokens: 800 + ((i + k) % 40),
        output_tokens: 400 + ((i * 3 + k) % 30),
        tool_calls: 3 + (k % 2),
        retries: 0,
        success: true,
        cost: 0.004,
      });
    }
  }
  for (let i = 0; i < records.length; i += 1000) {
    const res = await fetch(`${proc.url}/api/v1/ingest`, { method: 'POST', headers: { 'x-api-key': INGEST_KEY, 'content-type': 'application/json' }, body: JSON.stringify(records.slice(i, i + 1000)) });
    if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
  }
}

async function observeLive(browser: Browser, proc: ImmuneProcess, storageState: StorageState) {
  const ctx = await browser.newContext({ storageState, viewport: { width: 1400, height: 1000 } });
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Performance.enable');
  await page.goto(proc.url + '/');
  await page.waitForFunction(() => performance.getEntriesByName('immune:first-data-paint').length > 0);
  const threadTime = async () => ((await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] }).metrics.find((m) => m.name === 'ThreadTime')!.value * 1000;
  const cpuBefore = await threadTime();
  // Passed as source text: tsx's name-keeping helper (__name) does not exist inside the page.
  const live = (await page.evaluate(`(async (seconds) => {
    const long = [];
    const obs = new PerformanceObserver((l) => l.getEntries().forEach((e) => long.push(e.duration)));
    obs.observe({ type: 'longtask', buffered: false });
    const gaps = [];
    let last = performance.now();
    let running = true;
    requestAnimationFrame(function frame(t) {
      gaps.push(t - last);
      last = t;
      if (running) requestAnimationFrame(frame);
    });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    running = false;
    obs.disconnect();
    return { long, gaps: gaps.slice(1) };
  })(${OBSERVE_S})`)) as { long: number[]; gaps: number[] };
  const cpuMs = (await threadTime()) - cpuBefore;

  const searches: number[] = [];
  for (const q of ['Docker', 'notion', 'GPT-5', 'zzz', '']) {
    searches.push(
      await page.evaluate(async (query) => {
        const input = document.querySelector<HTMLInputElement>('input[type="search"]')!;
        const t = performance.now();
        input.value = query;
        input.dispatchEvent(new Event('input', { bubbles: true }));
        // Rendered and painted: the frame after the next animation frame.
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
        return performance.now() - t;
      }, q),
    );
  }
  await page.screenshot({ path: artifactPath('dashboard-1000-agents.png') });
  await ctx.close();
  return { seconds: OBSERVE_S, cpuMs, long: live.long, gaps: live.gaps, searches };
}

type Observation = Awaited<ReturnType<typeof observeLive>>;

/** Observations of several rounds, pooled. */
function summariseUpdates(obs: Observation[]) {
  const seconds = obs.reduce((a, o) => a + o.seconds, 0);
  const long = obs.flatMap((o) => o.long);
  const gaps = obs.flatMap((o) => o.gaps);
  const searches = obs.flatMap((o) => o.searches);
  return {
    seconds,
    main_thread_cpu_pct: round((obs.reduce((a, o) => a + o.cpuMs, 0) / (seconds * 1000)) * 100),
    long_tasks_per_s: round(long.length / seconds),
    long_task_ms: { median: round(long.length ? median(long) : 0), max: round(long.length ? Math.max(...long) : 0) },
    busy_in_long_tasks_pct: round((long.reduce((a, b) => a + b, 0) / (seconds * 1000)) * 100),
    frame_gap_ms: { p50: round(pct(gaps, 0.5)), p95: round(pct(gaps, 0.95)), max: round(Math.max(...gaps)) },
    search_ms: { median: round(median(searches)), max: round(Math.max(...searches)) },
  };
}

/** The stream URL the built page opens (its inline script), so each build is measured as its dashboard uses it. */
function streamPath(root: string): string {
  const html = readFileSync(resolve(root, 'web/dist/index.html'), 'utf8');
  const m = /new EventSource\('([^']+)'\)/.exec(html);
  if (!m) throw new Error(`no EventSource URL in ${root}/web/dist/index.html`);
  return m[1];
}

/** Reads the page's stream for `seconds` from Node and tallies bytes and messages per event type. */
async function measureStream(proc: ImmuneProcess, path: string, seconds: number) {
  const ctrl = new AbortController();
  const res = await fetch(proc.url + path, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ctrl.signal });
  const reader = res.body!.getReader();
  const tally: Record<string, { messages: number; bytes: number; max_bytes: number }> = {};
  let buf = '';
  const until = Date.now() + seconds * 1000;
  const stop = setTimeout(() => ctrl.abort(), seconds * 1000);
  try {
    while (Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += Buffer.from(value).toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const type = /^event: (\w+)$/m.exec(msg)?.[1];
        if (!type) continue;
        const t = (tally[type] ??= { messages: 0, bytes: 0, max_bytes: 0 });
        const bytes = Buffer.byteLength(msg) + 2;
        t.messages += 1;
        t.bytes += bytes;
        t.max_bytes = Math.max(t.max_bytes, bytes);
      }
    }
  } catch {
    // Aborted at the end of the window.
  } finally {
    clearTimeout(stop);
    ctrl.abort();
  }
  const perSecond = Object.fromEntries(
    Object.entries(tally).map(([k, t]) => [k, { per_s: round(t.messages / seconds), kib_per_s: round(t.bytes / 1024 / seconds), max_kib: round(t.max_bytes / 1024) }]),
  );
  const total = Object.values(tally).reduce((a, t) => a + t.bytes, 0);
  return { path, seconds, kib_per_s: round(total / 1024 / seconds), by_type: perSecond };
}

/** Runs `f` with the working directory at `root`: startImmune spawns bin/immune.js from the cwd. */
async function inDir<T>(root: string, f: () => Promise<T>): Promise<T> {
  const here = process.cwd();
  process.chdir(root);
  try {
    return await f();
  } finally {
    process.chdir(here);
  }
}

const browser = await launchBrowser();
const loadBefore = load1();
const builds: Array<{ name: string; root: string }> = [
  ...(values.compare ? [{ name: 'compare', root: resolve(values.compare) }] : []),
  { name: 'this tree', root: process.cwd() },
];

/** Quiet fleets of every build run side by side (they are idle), and their page loads alternate. */
async function quietPhase(roots: string[]) {
  const procs: ImmuneProcess[] = [];
  try {
    for (const root of roots) procs.push(await inDir(root, () => startImmune({ args: ['serve'], env: { OPERATOR_TOKEN: TOKEN, INGEST_API_KEY: INGEST_KEY } })));
    for (const proc of procs) {
      await ingestQuietFleet(proc);
      await waitForFleet(proc, 20);
    }
    const targets = [];
    for (const proc of procs) targets.push({ proc, storageState: await sessionState(browser, proc) });
    const load = load1();
    const loads = await measureLoads(browser, targets);
    return loads.map((l) => ({ load_average_1m: { start: load, end: load1() }, ...summarise(l) }));
  } finally {
    for (const proc of procs) await proc.stop();
  }
}

/**
 * One live fleet at a time: two simulators at once would double the server load being measured.
 * With --compare, the builds take turns for ROUNDS rounds (A B A B …), so both see the machine's
 * load of the same minutes; the loads and observations of the rounds are pooled.
 */
async function livePhase(root: string, runs: number) {
  const proc = await inDir(root, () => startImmune({ args: ['demo', '--agents', String(AGENTS), '--no-chaos', '--duration', '0'], env: { OPERATOR_TOKEN: TOKEN }, startTimeoutMs: 60_000 }));
  try {
    await waitForFleet(proc, 2);
    const session = await sessionState(browser, proc);
    const start = load1();
    const loads: Load[] = [];
    for (let i = 0; i < runs; i++) loads.push(await measureLoad(browser, proc, session));
    const observation = await observeLive(browser, proc, session);
    const stream = await measureStream(proc, streamPath(root), 5);
    return { load: [start, load1()], loads, observation, stream };
  } finally {
    await proc.stop();
  }
}

const quiet: Record<string, Awaited<ReturnType<typeof quietPhase>>[number]> = {};
const ROUNDS = builds.length > 1 ? Number(values.rounds) : 1;
const rounds: Record<string, Array<Awaited<ReturnType<typeof livePhase>>>> = {};
for (const [k, r] of (await quietPhase(builds.map((b) => b.root))).entries()) quiet[builds[k].name] = r;
for (let r = 0; r < ROUNDS; r++) for (const b of builds) (rounds[b.name] ??= []).push(await livePhase(b.root, Math.ceil(RUNS / ROUNDS)));
const live = Object.fromEntries(
  Object.entries(rounds).map(([name, rs]) => [
    name,
    {
      load_average_1m_by_round: rs.map((r) => r.load),
      ...summarise(rs.flatMap((r) => r.loads)),
      live_updates: summariseUpdates(rs.map((r) => r.observation)),
      stream: rs[rs.length - 1].stream,
    },
  ]),
);
await browser.close();

const result = { agents: AGENTS, runs: RUNS, load_average_1m: { before: loadBefore, after: load1() }, builds, quiet_fleet: quiet, live_fleet: live };
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/dashboard-load.json', JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
for (const b of builds) {
  for (const [name, r] of [
    ['quiet', quiet[b.name]],
    ['live', live[b.name]],
  ] as const) {
    console.log(`${b.name}: first load, ${AGENTS} agents, ${name} fleet: median ${r.first_load_ms.median} ms (target < 1000 ms) — ${r.first_load_ms.median < 1000 ? 'PASS' : 'FAIL'}`);
  }
}
