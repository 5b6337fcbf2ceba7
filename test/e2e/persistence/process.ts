import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from '../../support/influxd.js';

/**
 * The real `immune` CLI as a child process (the built dist/, as users run
 * it) that a test can kill -9 and start again on the same cache directory.
 */
export interface Proc {
  url: string;
  output(): string;
  /** SIGKILL: no shutdown hooks, no flush. */
  kill9(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
}

export async function startProc(args: string[], env: Record<string, string>, ready: (url: string) => Promise<boolean>, fixedPort?: number): Promise<Proc & { port: number }> {
  if (!existsSync('dist/cli/main.js')) throw new Error('dist/cli/main.js is missing: run "npm run build" before the end-to-end tests');
  const port = fixedPort ?? (await freePort());
  const child: ChildProcess = spawn(process.execPath, ['bin/immune.js', ...args, '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`immune ${args[0]} exited with ${child.exitCode}:\n${out}`);
    if (await ready(url).catch(() => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`immune ${args[0]} did not become ready in 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(sig);
      await exited;
    }
  };
  return { url, port, output: () => out, kill9: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
}

/** Polls until `f` returns a truthy value (conditions, not sleeps). */
export async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function client(url: string, keys: { ingest: string; operator: string }) {
  const call = async (method: string, path: string, body: unknown, auth: Record<string, string>) => {
    const res = await fetch(url + path, { method, headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
    return text === '' ? null : (JSON.parse(text) as any);
  };
  return {
    ingest: (records: unknown[]) => call('POST', '/api/v1/ingest', records, { 'x-api-key': keys.ingest }),
    agent: (path: string, body?: unknown) => call('POST', path, body ?? {}, { 'x-api-key': keys.ingest }),
    directive: (id: string) => call('GET', `/api/v1/agents/${id}/directive`, undefined, { 'x-api-key': keys.ingest }),
    operator: (method: string, path: string, body?: unknown) => call(method, path, body, { authorization: `Bearer ${keys.operator}` }),
  };
}

/** A normal task report, and a sick one (tens of times the latency, tokens and tool calls). */
export function sample(agentId: string, ts: number, i: number, sick = false): Record<string, unknown> {
  const k = sick ? 30 : 1;
  return {
    agent_id: agentId,
    agent_type: 'Research',
    model: 'GPT-5',
    timestamp: ts,
    latency_ms: (1000 + ((i * 37) % 60)) * k,
    input_tokens: (800 + ((i * 13) % 40)) * k,
    output_tokens: 300 + ((i * 7) % 20),
    cost: 0.01 * k,
    tool_calls: 3 * (sick ? 10 : 1),
    retries: 0,
    success: true,
    prompt_hash: 'p-1',
  };
}
