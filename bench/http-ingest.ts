/**
 * HTTP ingest load on loopback: the control plane runs as its own process
 * (`immune serve`), autocannon drives it from this one.
 *
 *   npm run bench:http            # default store (SQLite under a temp IMMUNE_CACHE_DIR)
 *   IMMUNE_STORE=memory npm run bench:http
 *
 * Reports requests/s and latency percentiles for single-record ingest, vitals/s for batched ingest.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const KEY = 'bench-ingest-key-000000000000';
const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function record(i: number, now: number): string {
  const a = i % AGENTS;
  const inTok = 700 + ((i * 7919) % 200);
  return `{"agent_id":"bench-${a}","agent_type":"Research","timestamp":${now},"latency_ms":${250 + ((i * 31) % 100)},"input_tokens":${inTok},"output_tokens":${350 + ((i * 13) % 80)},"cost":0.0031,"tool_calls":${2 + (i % 3)},"retries":0,"success":true,"model":"GPT-5","prompt_hash":"p1"}`;
}

async function startServer(cacheDir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, ['bin/immune.js', 'serve', '--port', String(port)], {
    env: { ...process.env, INGEST_API_KEY: KEY, OPERATOR_TOKEN: 'bench-operator-token-00000000', IMMUNE_CACHE_DIR: cacheDir, LOG_LEVEL: 'warn', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** A bare fastify app that parses the same JSON and answers {ok:true}: the ceiling of this machine right now. */
async function startBaseline(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const code = `import Fastify from 'fastify'; const app = Fastify(); app.post('/ingest', async (req) => ({ ok: true, accepted: Array.isArray(req.body) ? req.body.length : 1 })); await app.listen({ port: ${port}, host: '127.0.0.1' });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${url}/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

async function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'immune-bench-'));
  const server = await startServer(cacheDir);
  let i = 0;
  let stopped = false;
  try {
    // Warm every agent past its learning phase so the engine does full detection work per sample.
    const now = () => Date.now() / 1000;
    for (let sent = 0; sent < AGENTS * 16; sent += BATCH) {
      const body = '[' + Array.from({ length: BATCH }, () => record(i++, now())).join(',') + ']';
      const r = await fetch(`${server.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body });
      if (!r.ok) throw new Error(`warm-up failed: ${r.status} ${await r.text()}`);
    }

    const single = [];
    const batched = [];
    for (let round = 0; round < ROUNDS; round++) {
      const s = await run({
        url: `${server.url}/api/v1/ingest`,
        method: 'POST',
        connections: 32,
        pipelining: 1,
        duration: DURATION,
        headers: { 'content-type': 'application/json', 'x-api-key': KEY },
        requests: [{ setupRequest: (req) => ({ ...req, body: record(i++, now()) }) }],
      });
      single.push({ rps: s.requests.average, p50: s.latency.p50, p99: s.latency.p99, errors: s.errors + s.non2xx });
      const b = await run({
        url: `${server.url}/api/v1/ingest`,
        method: 'POST',
        connections: 8,
        duration: DURATION,
        headers: { 'content-type': 'application/json', 'x-api-key': KEY },
        requests: [{ setupRequest: (req) => ({ ...req, body: '[' + Array.from({ length: BATCH }, () => record(i++, now())).join(',') + ']' }) }],
      });
      batched.push({ vitals: b.requests.average * BATCH, p99: b.latency.p99, errors: b.errors + b.non2xx });
    }
    const store = await (await fetch(`${server.url}/readyz`)).json();
    await server.stop();
    stopped = true;
    // Same load against a bare fastify app, right after: the ratio is what the product costs on top of HTTP.
    const base = await startBaseline();
    const baseSingle = await run({ url: `${base.url}/ingest`, method: 'POST', connections: 32, duration: DURATION, headers: { 'content-type': 'application/json' }, requests: [{ setupRequest: (req) => ({ ...req, body: record(i++, now()) }) }] });
    const baseBatch = await run({ url: `${base.url}/ingest`, method: 'POST', connections: 8, duration: DURATION, headers: { 'content-type': 'application/json' }, requests: [{ setupRequest: (req) => ({ ...req, body: '[' + Array.from({ length: BATCH }, () => record(i++, now())).join(',') + ']' }) }] });
    await base.stop();
    const out = {
      agents: AGENTS,
      store: store.store?.kind,
      bare_fastify_same_load: { single_rps: Math.round(baseSingle.requests.average), single_p99_ms: baseSingle.latency.p99, batched_vitals_per_s: Math.round(baseBatch.requests.average * BATCH) },
      single_ingest: { rounds: single, median_rps: Math.round(median(single.map((x) => x.rps))), median_p99_ms: median(single.map((x) => x.p99)) },
      batched_ingest: { batch: BATCH, rounds: batched, median_vitals_per_s: Math.round(median(batched.map((x) => x.vitals))) },
    };
    console.log(JSON.stringify(out, null, 2));
  } finally {
    if (!stopped) await server.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

await main();
