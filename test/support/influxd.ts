import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real InfluxDB 1.x server for tests (Debian's `influxdb` package): own
 * temporary directory, HTTP and RPC bound to free loopback ports (the RPC
 * default 8088 would collide between parallel test files), started and
 * stopped by the test. stop()/start() keep the data, for outage tests.
 */
export interface Influxd {
  url: string;
  dir: string;
  /** Stops the server (SIGTERM, then SIGKILL); the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and deletes the data. */
  destroy(): Promise<void>;
}

let installTried = false;

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/bin', '/usr/sbin'])) {
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return null;
}

/** Cross-process lock so parallel test files do not run apt-get at the same time. */
function withLock<T>(name: string, f: () => T): T {
  const lock = join(tmpdir(), `${name}.lock`);
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      execFileSync('sleep', ['1']);
    }
  }
  try {
    return f();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The influxd binary, installing Debian's package when missing and allowed; otherwise the reason it cannot run. */
export function findInfluxd(): { path: string } | { skip: string } {
  const found = which('influxd');
  if (found) return { path: found };
  if (process.getuid?.() !== 0) return { skip: 'influxd is not installed and the tests do not run as root to apt-get install influxdb' };
  if (!which('apt-get')) return { skip: 'influxd is not installed and apt-get is not available' };
  if (!installTried) {
    installTried = true;
    try {
      withLock('immune-apt-influxdb', () => {
        if (which('influxd')) return;
        const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
        execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
        execFileSync('apt-get', ['install', '-y', '-qq', 'influxdb'], { stdio: 'ignore', env, timeout: 300_000 });
      });
    } catch (err) {
      return { skip: `could not install influxdb with apt-get: ${(err as Error).message}` };
    }
  }
  const after = which('influxd');
  return after ? { path: after } : { skip: 'apt-get install influxdb did not provide influxd' };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPing(url: string, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`influxd exited with ${proc.exitCode} before answering /ping`);
    try {
      const r = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 204) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`influxd did not answer ${url}/ping within ${timeoutMs} ms`);
}

/** `auth`: HTTP authentication on (create the first admin with CREATE USER … WITH ALL PRIVILEGES). */
export async function startInfluxd(binary: string, opts: { auth?: boolean } = {}): Promise<Influxd> {
  const dir = mkdtempSync(join(tmpdir(), 'immune-influxd-'));
  const httpPort = await freePort();
  const rpcPort = await freePort();
  const config = join(dir, 'influxdb.conf');
  writeFileSync(
    config,
    `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
  max-row-limit = 0
  auth-enabled = ${opts.auth ? 'true' : 'false'}
[coordinator]
  write-timeout = "60s"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
`,
  );
  const url = `http://127.0.0.1:${httpPort}`;
  let proc: ChildProcess | null = null;
  let output = '';

  const start = async () => {
    output = '';
    proc = spawn(binary, ['-config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    proc.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    try {
      await waitForPing(url, proc, 30_000);
    } catch (err) {
      proc.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${output}`);
    }
  };

  const stop = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    url,
    dir,
    start,
    stop,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
