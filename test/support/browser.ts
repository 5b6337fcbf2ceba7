import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium: playwright-core drives it through executablePath (no browser download, machines are offline). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Where screenshots and other browser artifacts go (gitignored). */
export const ARTIFACT_DIR = 'test-results';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

/**
 * Makes sure Debian's chromium is installed: installs it with apt-get when it
 * is missing and we are root, and fails with a clear message otherwise (the
 * browser tests are never skipped silently).
 */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root) {
    throw new Error(`${CHROMIUM_PATH} is missing and this process is not root, so it cannot install it: run "apt-get install -y chromium" as root, then rerun the browser tests`);
  }
  // Test files run in parallel processes: one installs, the others wait for it (dpkg allows one apt-get at a time).
  withInstallLock(() => {
    if (existsSync(CHROMIUM_PATH)) return;
    process.stderr.write(`[browser] ${CHROMIUM_PATH} not found: installing Debian's chromium with apt-get (once)…\n`);
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 600_000 });
      execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 600_000 });
    } catch (err) {
      throw new Error(`installing chromium with apt-get failed (${(err as Error).message}); install it by hand ("apt-get install -y chromium") and rerun`, { cause: err });
    }
  });
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`apt-get reported success but ${CHROMIUM_PATH} is still missing`);
  process.stderr.write(`[browser] chromium installed at ${CHROMIUM_PATH}\n`);
  return CHROMIUM_PATH;
}

/** Runs `f` while holding a cross-process lock (a directory: mkdir is atomic). */
function withInstallLock(f: () => void): void {
  const lock = join(tmpdir(), 'immune-apt-chromium.lock');
  const deadline = Date.now() + 900_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (another process installing chromium?)`);
      execFileSync('sleep', ['1']);
    }
  }
  try {
    f();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** How long a test's setup may take when it has to install chromium first (ms). */
export const BROWSER_SETUP_TIMEOUT_MS = 900_000;

/** Launches headless chromium (installing it first when needed). */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = ensureChromium();
  return chromium.launch({ executablePath, args: ARGS });
}

/** test-results/<name>, creating the directory. */
export function artifactPath(name: string): string {
  mkdirSync(ARTIFACT_DIR, { recursive: true });
  return `${ARTIFACT_DIR}/${name}`;
}
