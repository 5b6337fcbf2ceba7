/**
 * HTTP ingest load on loopback: the control plane runs as its own process
 * (`immune serve`), autocannon drives it from this one.
 *
 *   npm run bench:http            # default store (SQLite under a temp IMMUNE_CACHE_DIR)
 *   IMMUNE_STORE=memory npm run bench:http
 *   BENCH_PIN=1 npm run bench:http     # server (and its SQLite thread) on core 0, autocannon on core 1 (taskset)
 *   BENCH_SERVER_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench:http   # profile the server
 *   BENCH_CLIENT=autocannon npm run bench:http   # single-record load from autocannon even when wrk is installed
 *   BENCH_AB_BIN=/tmp/other/bin/immune.js BENCH_ROUNDS=6 npm run bench:http   # paced p99 of two builds, in alternating pairs
 *   BENCH_STALL_SECONDS=0 npm run bench:http   # without the 5 s vCPU stall probe first (bench/vcpu-stalls.ts)
 *
 * Reports requests/s and latency percentiles for single-record ingest, vitals/s for batched ingest,
 * the load average before and after, the server's CPU per request (all threads, and its main thread
 * alone: the rest is mostly the SQLite writer), and the CPU autocannon itself used per request (it shares the
 * cores with the server, so a cheaper client is a fairer benchmark).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { measureVcpuStalls } from './vcpu-stalls.js';

const KEY = 'bench-ingest-key-000000000000';
const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PIN = process.env.BENCH_PIN === '1';
const SERVER_ARGS = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter((a) => a !== '');
/** The CLI to start (another build's bin/immune.js, to compare two builds on the same machine state). */
const BIN = process.env.BENCH_BIN ?? 'bin/immune.js';
/** BENCH_ONLY=single|paced|batched runs one kind of load (paced: only the wrk run at BENCH_RATE); the default runs all. */
const ONLY = process.env.BENCH_ONLY ?? '';
/**
 * What drives the single-record load: wrk when it is installed (C, `apt-get install wrk`), else autocannon
 * (from npm). autocannon spends 35–45 µs of CPU per request on the same two cores as the server, wrk
 * 15–24 µs, which is closer to production, where agents run on other machines. Batched load always uses
 * autocannon. The output names the client used.
 */
const CLIENT = process.env.BENCH_CLIENT ?? (spawnSync('wrk', ['--version']).error ? 'autocannon' : 'wrk');
/**
 * With wrk, each round also runs the single-record load paced at this many requests/s (0: not), so the
 * p99 is the latency at that load — at saturation it measures the queue, not the server.
 */
const RATE = Number(process.env.BENCH_RATE ?? (CLIENT === 'wrk' ? 15_000 : 0));
/** Concurrent connections of the single-record load (each waits for its answer before the next request). */
const SINGLE_CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? (CLIENT === 'wrk' ? 64 : 32));
/** Distinct bodies per pool; a pool is rebuilt for every run so its timestamps stay current. */
const SINGLE_POOL = 8192;
const BATCH_POOL = 24;

/**
 * Record i, for agent i % AGENTS. Every value is a function of the agent, here and in
 * bench/wrk-single-ingest.lua, so the load stays healthy: when tool calls were 2 + i % 3 here (varying
 * from one record of an agent to the next, as 10,000 % 3 = 1) but constant per agent in wrk's pool,
 * the third round's batches raised a third of the agents' tool calls by half over what the paced
 * rounds had taught, and 256 agents were quarantined for tool loops during the measurement.
 */
function record(i: number, now: number): string {
  const a = i % AGENTS;
  const inTok = 700 + ((a * 7919) % 200);
  return `{"agent_id":"bench-${a}","agent_type":"Research","timestamp":${now},"latency_ms":${250 + ((a * 31) % 100)},"input_tokens":${inTok},"output_tokens":${350 + ((a * 13) % 80)},"cost":0.0031,"tool_calls":${2 + (a % 3)},"retries":0,"success":true,"model":"GPT-5","prompt_hash":"p1"}`;
}

/** With BENCH_PIN=1 servers run on core 0 (`taskset`); this process moves itself to core 1. */
function command(args: string[]): [string, string[]] {
  return PIN ? ['taskset', ['-c', '0', process.execPath, ...args]] : [process.execPath, args];
}

interface Server {
  url: string;
  pid: number;
  stop: () => Promise<void>;
}

const ticks = (statPath: string): number => {
  const stat = readFileSync(statPath, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
};

/** CPU seconds a process has used so far: all its threads (the SQLite writer included), and its main thread alone, from /proc. */
function cpuSeconds(pid: number): { all: number; main: number } {
  try {
    return { all: ticks(`/proc/${pid}/stat`), main: ticks(`/proc/${pid}/task/${pid}/stat`) };
  } catch {
    return { all: NaN, main: NaN };
  }
}

/** Spawns a node process on a random loopback port and waits until `ready(url)` answers. */
async function startNode(args: (port: number) => string[], env: NodeJS.ProcessEnv, ready: (url: string) => Promise<boolean>): Promise<Server> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const [cmd, argv] = command(args(port));
  // stdout is not read here: a pipe nobody drains would block the server's synchronous log writes.
  // BENCH_SERVER_LOG=<file> keeps it (with BENCH_LOG_LEVEL=info: the shutdown's step durations).
  const out = process.env.BENCH_SERVER_LOG ? openSync(process.env.BENCH_SERVER_LOG, 'a') : 'ignore';
  const child = spawn(cmd, argv, { env, stdio: ['ignore', out, 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if (await ready(url)) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

function startServer(cacheDir: string, bin = BIN, nodeArgs: string[] = []): Promise<Server> {
  return startNode(
    (port) => [...SERVER_ARGS, ...nodeArgs, bin, 'serve', '--port', String(port)],
    { ...process.env, INGEST_API_KEY: KEY, OPERATOR_TOKEN: 'bench-operator-token-00000000', IMMUNE_CACHE_DIR: cacheDir, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', LOG_FORMAT: 'json' },
    async (url) => (await fetch(`${url}/healthz`)).ok,
  );
}

/** A bare fastify app that parses the same JSON and answers {ok:true}: the ceiling of this machine right now. */
function startBaseline(): Promise<Server> {
  return startNode(
    (port) => ['--input-type=module', '-e', `import Fastify from 'fastify'; const app = Fastify(); app.post('/ingest', async (req) => ({ ok: true, accepted: Array.isArray(req.body) ? req.body.length : 1 })); await app.listen({ port: ${port}, host: '127.0.0.1' });`],
    process.env,
    async (url) => {
      await fetch(`${url}/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      return true;
    },
  );
}

/**
 * Bodies are built before the run, not per request: building 1,000 records per
 * batched request in the load generator took CPU from the server on the same
 * cores. Each request still takes the next body of the pool (a different
 * agent mix and values); timestamps are the pool's build time, well inside
 * the live-ingest bounds for a 10 s run.
 */
function pool(n: number, recordsPer: number | null, next: () => number): Buffer[] {
  const now = Date.now() / 1000;
  return Array.from({ length: n }, () => Buffer.from(recordsPer === null ? record(next(), now) : '[' + Array.from({ length: recordsPer }, () => record(next(), now)).join(',') + ']'));
}

interface Load {
  server: Server;
  path: string;
  connections: number;
  headers: Record<string, string>;
  bodies: Buffer[];
  /** Seconds (default BENCH_SECONDS). */
  seconds?: number;
}

/** One autocannon run; also returns the CPU the server and this process (the client) spent per request. */
async function run(l: Load): Promise<{ res: autocannon.Result; serverCpuUsPerReq: number; mainCpuUsPerReq: number; clientCpuUsPerReq: number }> {
  let k = 0;
  const cpu0 = process.cpuUsage();
  const server0 = cpuSeconds(l.server.pid);
  const res = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon(
      {
        url: l.server.url + l.path,
        method: 'POST',
        connections: l.connections,
        pipelining: 1,
        duration: l.seconds ?? DURATION,
        headers: { 'content-type': 'application/json', ...l.headers },
        requests: [{ setupRequest: (req) => ({ ...req, body: l.bodies[k++ % l.bodies.length] }) }],
      },
      (err, r) => (err ? reject(err) : resolve(r)),
    );
  });
  const cpu = process.cpuUsage(cpu0);
  const perReq = (us: number) => Math.round((us / Math.max(1, res.requests.total)) * 10) / 10;
  const server1 = cpuSeconds(l.server.pid);
  return { res, serverCpuUsPerReq: perReq((server1.all - server0.all) * 1e6), mainCpuUsPerReq: perReq((server1.main - server0.main) * 1e6), clientCpuUsPerReq: perReq(cpu.user + cpu.system) };
}

/** The single-record load from wrk (bench/wrk-single-ingest.lua builds the same records as `record`). */
async function runWrk(l: Load, rate = 0): Promise<RunResult> {
  const server0 = cpuSeconds(l.server.pid);
  // The shell reports its waited-for children's CPU (wrk's) from its own /proc stat (cutime, cstime).
  const script = `wrk -t1 -c${l.connections} -d${l.seconds ?? DURATION}s -s bench/wrk-single-ingest.lua ${l.server.url}${l.path}; read -r stat < /proc/$$/stat; echo "SHELL_STAT $stat"`;
  const child = spawn(PIN ? 'taskset' : 'sh', PIN ? ['-c', '1', 'sh', '-c', script] : ['-c', script], {
    env: { ...process.env, WRK_KEY: l.headers['x-api-key'] ?? '', WRK_NOW: String(Date.now() / 1000), WRK_AGENTS: String(AGENTS), WRK_RATE: String(rate), WRK_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  const json = out.match(/^WRK_JSON (.*)$/m);
  const stat = out.match(/^SHELL_STAT (.*)$/m);
  if (code !== 0 || !json || !stat) throw new Error(`wrk failed (exit ${code}); is it installed (apt-get install wrk)?\n${out}`);
  const w = JSON.parse(json[1]) as { requests: number; seconds: number; p50_us: number; p99_us: number; errors: number; non2xx: number };
  const f = stat[1].slice(stat[1].lastIndexOf(')') + 2).split(' ');
  const clientSeconds = (Number(f[13]) + Number(f[14])) / 100; // cutime + cstime
  const server1 = cpuSeconds(l.server.pid);
  const perReq = (s: number) => Math.round(((s * 1e6) / Math.max(1, w.requests)) * 10) / 10;
  return {
    rps: w.requests / w.seconds,
    p50: Math.round(w.p50_us / 100) / 10,
    p99: Math.round(w.p99_us / 100) / 10,
    errors: w.errors + w.non2xx,
    serverCpuUsPerReq: perReq(server1.all - server0.all),
    mainCpuUsPerReq: perReq(server1.main - server0.main),
    clientCpuUsPerReq: perReq(clientSeconds),
  };
}

/** One single-record run with the chosen client. */
async function runSingle(l: Load): Promise<RunResult> {
  if (CLIENT === 'wrk') return runWrk(l);
  const r = await run(l);
  return { rps: r.res.requests.average, p50: r.res.latency.p50, p99: r.res.latency.p99, errors: r.res.errors + r.res.non2xx, serverCpuUsPerReq: r.serverCpuUsPerReq, mainCpuUsPerReq: r.mainCpuUsPerReq, clientCpuUsPerReq: r.clientCpuUsPerReq };
}

interface RunResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  serverCpuUsPerReq: number;
  mainCpuUsPerReq: number;
  clientCpuUsPerReq: number;
}

const load = () => Math.round(loadavg()[0] * 100) / 100;

/**
 * The machine's own pauses, 5 s on the idle machine before anything starts (bench/vcpu-stalls.ts):
 * the hypervisor's share of any p99 below. BENCH_STALL_SECONDS=0 skips it. A probe that cannot run
 * (no python3 or taskset) is reported in the output instead of ending the benchmark: it only explains
 * the figures, it is not one of them.
 */
const STALL_SECONDS = Number(process.env.BENCH_STALL_SECONDS ?? 5);
async function vcpuStalls(): Promise<Awaited<ReturnType<typeof measureVcpuStalls>> | { error: string } | null> {
  if (STALL_SECONDS <= 0) return null;
  try {
    return await measureVcpuStalls(STALL_SECONDS);
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Progress on stderr, with the time: to line a round up with the server's own log (BENCH_SERVER_LOG). */
const phase = (what: string) => process.stderr.write(`${new Date().toISOString()} ${what}\n`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The product's ingest route on `server`, with the key: what every load of this benchmark targets. */
const ingestOn = (server: Server) => ({ server, path: '/api/v1/ingest', headers: { 'x-api-key': KEY } });

/** Every agent past its learning phase (full detection work per sample), and the single-record path compiled. */
async function warm(server: Server, next: () => number): Promise<void> {
  const ingest = ingestOn(server);
  for (let sent = 0; sent < AGENTS * 16; sent += BATCH) {
    const [body] = pool(1, BATCH, next);
    const r = await fetch(server.url + ingest.path, { method: 'POST', headers: { 'content-type': 'application/json', ...ingest.headers }, body });
    if (!r.ok) throw new Error(`warm-up failed: ${r.status} ${await r.text()}`);
  }
  // The batches above leave the single-record path cold: its first second (JIT compilation) would
  // otherwise land in the first measured round — a server in service has long been warm.
  if (ONLY !== 'batched') await runSingle({ ...ingest, connections: SINGLE_CONNECTIONS, bodies: pool(SINGLE_POOL, null, next), seconds: 3 });
}

/**
 * BENCH_AB_BIN=<other build's bin/immune.js>: the paced single-record load against two builds running
 * side by side, alternating A, B, B, A, … for BENCH_ROUNDS pairs (default 3). BENCH_AB_ARGS: Node
 * options for B only (BENCH_AB_BIN=bin/immune.js BENCH_AB_ARGS=--max-semi-space-size=32 compares a
 * flag). The machine's speed swings 2× within minutes here, so only runs this close in time compare;
 * the output has each pair and the median of the B/A ratios of their p99.
 */
async function pacedAB(binB: string): Promise<void> {
  if (CLIENT !== 'wrk' || RATE <= 0) throw new Error('BENCH_AB_BIN needs wrk (apt-get install wrk) and BENCH_RATE > 0');
  const stalls = await vcpuStalls();
  const dirs = [mkdtempSync(join(tmpdir(), 'immune-bench-a-')), mkdtempSync(join(tmpdir(), 'immune-bench-b-'))];
  const servers: Server[] = [];
  let i = 0;
  const next = () => i++;
  try {
    const argsB = (process.env.BENCH_AB_ARGS ?? '').split(' ').filter((a) => a !== '');
    servers.push(await startServer(dirs[0], BIN), await startServer(dirs[1], binB, argsB));
    for (const s of servers) await warm(s, next);
    const pairs = [];
    for (let round = 0; round < ROUNDS; round++) {
      const p99 = [NaN, NaN];
      const rps = [NaN, NaN];
      for (const k of round % 2 === 0 ? [0, 1] : [1, 0]) {
        phase(`pair ${round + 1}: ${k === 0 ? 'A' : 'B'} paced at ${RATE}/s`);
        const r = await runWrk({ ...ingestOn(servers[k]), connections: SINGLE_CONNECTIONS, bodies: [] }, RATE);
        p99[k] = r.p99;
        rps[k] = Math.round(r.rps);
      }
      pairs.push({ a_p99_ms: p99[0], b_p99_ms: p99[1], a_rps: rps[0], b_rps: rps[1], ratio: Math.round((p99[1] / p99[0]) * 100) / 100 });
    }
    console.log(JSON.stringify({ a: BIN, b: [...argsB, binB].join(' '), offered_rps: RATE, vcpu_stalls_before: stalls, pairs, median_p99_ms: { a: median(pairs.map((p) => p.a_p99_ms)), b: median(pairs.map((p) => p.b_p99_ms)) }, median_ratio_b_to_a: median(pairs.map((p) => p.ratio)) }, null, 2));
  } finally {
    for (const s of servers) await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (PIN) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const loadBefore = load();
  const stalls = await vcpuStalls();
  const cacheDir = mkdtempSync(join(tmpdir(), 'immune-bench-'));
  const server = await startServer(cacheDir);
  let i = 0;
  const next = () => i++;
  let stopped = false;
  try {
    await warm(server, next);
    const ingest = ingestOn(server);
    const single = [];
    const paced = [];
    const batched = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (ONLY !== 'batched' && ONLY !== 'paced') {
        phase(`round ${round + 1}: single-record, saturation`);
        const s = await runSingle({ ...ingest, connections: SINGLE_CONNECTIONS, bodies: pool(SINGLE_POOL, null, next) });
        single.push({ rps: Math.round(s.rps), p50: s.p50, p99: s.p99, errors: s.errors, server_cpu_us_per_req: s.serverCpuUsPerReq, server_main_thread_cpu_us_per_req: s.mainCpuUsPerReq, client_cpu_us_per_req: s.clientCpuUsPerReq });
      }
      if (ONLY !== 'batched') {
        if (CLIENT === 'wrk' && RATE > 0) {
          phase(`round ${round + 1}: single-record, paced at ${RATE}/s`);
          const p = await runWrk({ ...ingest, connections: SINGLE_CONNECTIONS, bodies: [] }, RATE);
          paced.push({ rps: Math.round(p.rps), p50: p.p50, p99: p.p99, errors: p.errors, server_cpu_us_per_req: p.serverCpuUsPerReq, server_main_thread_cpu_us_per_req: p.mainCpuUsPerReq });
        }
      }
      if (ONLY !== 'single' && ONLY !== 'paced') {
        phase(`round ${round + 1}: batched`);
        const b = await run({ ...ingest, connections: 8, bodies: pool(BATCH_POOL, BATCH, next) });
        batched.push({ vitals: b.res.requests.average * BATCH, p99: b.res.latency.p99, errors: b.res.errors + b.res.non2xx, server_cpu_us_per_req: b.serverCpuUsPerReq, server_main_thread_cpu_us_per_req: b.mainCpuUsPerReq, client_cpu_us_per_req: b.clientCpuUsPerReq });
      }
    }
    phase('rounds done');
    const store = (await (await fetch(`${server.url}/readyz`)).json()) as { store?: { kind?: string } };
    const stopStarted = Date.now();
    await server.stop();
    const stopMs = Date.now() - stopStarted;
    stopped = true;
    // Same load against a bare fastify app, right after: the ratio is what the product costs on top of HTTP.
    const base = await startBaseline();
    const baseSingle = await runSingle({ server: base, path: '/ingest', headers: {}, connections: SINGLE_CONNECTIONS, bodies: pool(SINGLE_POOL, null, next) });
    // The paced load too: the p99 this machine gives an app that does nothing but parse, at the same rate.
    const basePaced = CLIENT === 'wrk' && RATE > 0 && ONLY !== 'batched' ? await runWrk({ server: base, path: '/ingest', headers: {}, connections: SINGLE_CONNECTIONS, bodies: [] }, RATE) : null;
    const baseBatch = await run({ server: base, path: '/ingest', headers: {}, connections: 8, bodies: pool(BATCH_POOL, BATCH, next) });
    await base.stop();
    const singleMedian = median(single.map((x) => x.rps));
    const batchedMedian = median(batched.map((x) => x.vitals));
    const baseBatched = baseBatch.res.requests.average * BATCH;
    const out = {
      agents: AGENTS,
      store: store.store?.kind,
      single_record_client: CLIENT,
      pinned: PIN ? 'server on core 0, load generator on core 1' : false,
      load_average_1m: { before: loadBefore, after: load() },
      vcpu_stalls_before: stalls,
      // SIGTERM to exit: it waits for connections autocannon leaves open, then saves the detection state.
      server_stop_ms: stopMs,
      bare_fastify_same_load: {
        single_rps: Math.round(baseSingle.rps),
        single_p99_ms: baseSingle.p99,
        ...(basePaced ? { paced_p99_ms: basePaced.p99, paced_rps: Math.round(basePaced.rps), paced_server_cpu_us_per_req: basePaced.serverCpuUsPerReq } : {}),
        batched_vitals_per_s: Math.round(baseBatched),
        server_cpu_us_per_req: { single: baseSingle.serverCpuUsPerReq, batched: baseBatch.serverCpuUsPerReq },
        client_cpu_us_per_req: { single: baseSingle.clientCpuUsPerReq, batched: baseBatch.clientCpuUsPerReq },
      },
      single_ingest: { rounds: single, median_rps: Math.round(singleMedian), median_p99_ms: median(single.map((x) => x.p99)), ratio_to_bare: Math.round((singleMedian / baseSingle.rps) * 100) / 100 },
      ...(paced.length > 0 ? { single_ingest_paced: { offered_rps: RATE, rounds: paced, median_rps: Math.round(median(paced.map((x) => x.rps))), median_p99_ms: median(paced.map((x) => x.p99)) } } : {}),
      batched_ingest: { batch: BATCH, rounds: batched, median_vitals_per_s: Math.round(batchedMedian), ratio_to_bare: Math.round((batchedMedian / baseBatched) * 100) / 100 },
    };
    console.log(JSON.stringify(out, null, 2));
  } finally {
    if (!stopped) await server.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

if (process.env.BENCH_AB_BIN) await pacedAB(process.env.BENCH_AB_BIN);
else await main();
