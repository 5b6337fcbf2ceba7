/**
 * Batched vitals ingest into a real InfluxDB (Debian's influxd 1.x, started
 * here on a free loopback port) through the InfluxStore adapter, next to the
 * physical limit of that path: the same points as pre-encoded line protocol
 * POSTed straight to /write with the same batch size and concurrency.
 *
 *   node --import tsx bench/store/influx-ingest.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InfluxStore } from '../../src/store/influx.js';
import { encodePoint } from '../../src/store/line-protocol.js';
import { findInfluxd, startInfluxd } from '../../test/support/influxd.js';
import { drive, fmt, makeBatch, median } from './common.js';

const TOTAL = Number(process.env.BENCH_VITALS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BATCH = 5000;
const CONCURRENCY = 1;
const AGENTS = Number(process.env.BENCH_AGENTS ?? 1000);
const T0 = 1_700_000_000;

const bin = findInfluxd();
if ('skip' in bin) {
  console.error(`cannot run: ${bin.skip}`);
  process.exit(1);
}
const server = await startInfluxd(bin.path);
const version = (await fetch(`${server.url}/ping`)).headers.get('x-influxdb-version');

// The raw path: every line encoded before the clock starts; only HTTP + InfluxDB remain.
function rawBodies(run: string): string[] {
  const bodies: string[] = [];
  for (let off = 0; off < TOTAL; off += BATCH) {
    const lines = makeBatch(BATCH, AGENTS, off, T0).map((v, k) =>
      encodePoint({
        measurement: 'agent_vitals',
        tags: { run_id: run, agent_id: v.agent_id },
        fields: { timestamp: v.timestamp, latency_ms: v.latency_ms, input_tokens: v.input_tokens, output_tokens: v.output_tokens, token_count: v.token_count, cost: v.cost, tool_calls: v.tool_calls, retries: v.retries, success: { int: v.success ? 1 : 0 }, agent_type: v.agent_type, model: v.model, provider: v.provider, error_type: v.error_type, prompt_hash: v.prompt_hash, mcp_servers: JSON.stringify(v.mcp_servers), tool_names: '[]' },
        timeUs: Math.round((T0 + (off + k) / 1000) * 1e6),
      }),
    );
    bodies.push(lines.join('\n'));
  }
  return bodies;
}

async function raw(db: string, run: string): Promise<number> {
  await fetch(`${server.url}/query`, { method: 'POST', body: new URLSearchParams({ q: `CREATE DATABASE "${db}"` }) });
  const bodies = rawBodies(run);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++];
        const res = await fetch(`${server.url}/write?db=${db}&precision=u`, { method: 'POST', body });
        if (res.status !== 204) throw new Error(`write failed: ${res.status} ${await res.text()}`);
      }
    }),
  );
  return TOTAL / ((performance.now() - started) / 1000);
}

const adapter: number[] = [];
const direct: number[] = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    const s = new InfluxStore({ url: server.url, database: `bench_adapter_${r}`, timeoutMs: 60_000 });
    await s.open();
    adapter.push(await drive((b) => s.appendVitals(`run-${r}`, b), { total: TOTAL, batch: BATCH, concurrency: CONCURRENCY, agents: AGENTS, t0: T0 }));
    if ((await s.vitalsCount(`run-${r}`)) !== TOTAL) throw new Error('adapter lost points');
    direct.push(await raw(`bench_raw_${r}`, `run-${r}`));
  }
} finally {
  await server.destroy();
}
const a = median(adapter);
const d = median(direct);
console.log(`InfluxDB ${version}: InfluxStore.appendVitals ${fmt(a)} vitals/s (runs ${adapter.map(fmt).join(', ')})`);
console.log(`InfluxDB ${version}: raw line protocol to /write ${fmt(d)} vitals/s (runs ${direct.map(fmt).join(', ')})`);
console.log(`adapter / raw = ${(a / d).toFixed(2)} (batch ${BATCH}, ${CONCURRENCY} in flight, ${AGENTS} agents)`);
writeFileSync(
  join(import.meta.dirname, 'results-influx.json'),
  JSON.stringify({ influxdb: version, total_per_round: TOTAL, rounds: ROUNDS, batch: BATCH, concurrency: CONCURRENCY, adapter: { median: Math.round(a), runs: adapter.map(Math.round) }, raw_line_protocol: { median: Math.round(d), runs: direct.map(Math.round) }, ratio: Math.round((a / d) * 100) / 100 }, null, 2) + '\n',
);
