import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ImmuneProcess {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** The one-time login URL the CLI prints. */
  loginUrl: string;
  /** Everything printed so far (stdout + stderr), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** CLI arguments after `node bin/immune.js`, e.g. ['demo', '--agents', '6']. */
  args: string[];
  env?: Record<string, string>;
  /** How long to wait for the login URL, ms. */
  startTimeoutMs?: number;
  /** Fixed port (restart tests); default: any free port. */
  port?: number;
  /** Cache directory to use and keep (restart tests); default: a fresh one, deleted on stop. */
  cacheDir?: string;
}

/**
 * Starts the real `immune` process (the built CLI, as users run it) on a free
 * loopback port with a fresh cache directory, and waits for the login URL it prints.
 */
export async function startImmune(opts: StartOptions): Promise<ImmuneProcess> {
  for (const f of ['dist/cli/main.js', 'web/dist/index.html']) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run "npm run build" before the end-to-end tests`);
  }
  const cacheDir = opts.cacheDir ?? mkdtempSync(join(tmpdir(), 'immune-e2e-'));
  const child: ChildProcess = spawn(process.execPath, ['bin/immune.js', ...opts.args, '--port', String(opts.port ?? 0), '--host', '127.0.0.1'], {
    env: { ...process.env, IMMUNE_CACHE_DIR: cacheDir, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    if (opts.cacheDir === undefined) rmSync(cacheDir, { recursive: true, force: true });
  };

  const loginUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`immune printed no login URL within ${opts.startTimeoutMs ?? 20000} ms:\n${out}`)), opts.startTimeoutMs ?? 20000);
    const look = () => {
      const m = /(http:\/\/127\.0\.0\.1:\d+\/login\?token=[A-Za-z0-9_-]+)/.exec(out);
      if (m) done(null, m[1]);
    };
    const done = (err: Error | null, url?: string) => {
      clearTimeout(timer);
      child.stdout!.off('data', look);
      if (err) reject(err);
      else resolve(url!);
    };
    child.stdout!.on('data', look);
    void exited.then((code) => done(new Error(`immune exited (code ${code}) before printing a login URL:\n${out}`)));
    look();
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { url: new URL(loginUrl).origin, loginUrl, output: () => out, stop };
}
