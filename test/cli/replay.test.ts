import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTrace } from '../../bench/detect/generator.js';

type ReplayModule = typeof import('../../src/control/replay.js');

/**
 * `immune replay` as users run it: the built CLI (bin/immune.js → dist/), whose parsing runs in a
 * worker thread. The reference is the built single-threaded Replayer fed line by line — both from
 * dist/, so a stale build cannot make them disagree.
 */
const dir = mkdtempSync(join(tmpdir(), 'cli-replay-'));
let ref: ReplayModule;

beforeAll(async () => {
  if (!existsSync('dist/cli/main.js')) throw new Error('dist/cli/main.js is missing: run "npm run build" before the CLI tests');
  ref = (await import(pathToFileURL(resolve('dist/control/replay.js')).href)) as ReplayModule;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const trace = generateTrace({ seed: 5, agents: 30, hours: 3, faultsPerKind: 1 });
const lines = trace.vitals.map((v, i) => {
  if (i === 40) return '{"agent_id": "a1", "latency_ms": 5';
  if (i === 41) return '{"agent_id":"a2","latency_ms":-1}';
  if (i === 42) return '';
  if (i === 43) return JSON.stringify({ ...v, agent_type: 'Résumé', extra: [1, { y: null }] });
  return JSON.stringify(v);
});
const input = join(dir, 'vitals.jsonl');
writeFileSync(input, lines.join('\n') + '\n');

function expected(ls: readonly string[], opts: { strict?: boolean; engine?: Record<string, number> } = {}): { stdout: string; skipped: string } {
  let skipped = '';
  const r = new ref.Replayer({ ...opts, onSkip: (n, why) => (skipped += `line ${n}: ${why} (skipped)\n`) });
  let stdout = '';
  try {
    for (const l of ls) for (const d of r.line(l)) stdout += JSON.stringify(d) + '\n';
  } catch (e) {
    if (!(e instanceof ref.ReplayAbort)) throw e;
  }
  return { stdout, skipped };
}

function immune(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['bin/immune.js', 'replay', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

describe('immune replay', () => {
  it('file in, stdout out: byte-identical to the Replayer, malformed lines on stderr with their numbers, then the summary', async () => {
    const want = expected(lines);
    expect(want.stdout.split('\n').length).toBeGreaterThan(5);
    const { code, stdout, stderr } = await immune(['-i', input]);
    expect(code).toBe(0);
    expect(stdout).toBe(want.stdout);
    expect(want.skipped).toMatch(/^line 41: malformed JSON .*\nline 42: .*field 'latency_ms'.*\n$/);
    expect(stderr.startsWith(want.skipped)).toBe(true);
    expect(stderr.slice(want.skipped.length)).toMatch(new RegExp(`^replay: ${lines.length - 3} records read, 2 skipped, 30 agents, \\d+ detections, 1 fleet incidents in [\\d.]+ s \\(\\d+ vitals/s\\)\\n$`));
  });

  it('stdin in, file out (--quiet): the same bytes', async () => {
    const out = join(dir, 'detections.jsonl');
    const { code, stdout, stderr } = await immune(['-o', out, '--quiet'], lines.join('\n'));
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toBe(expected(lines).skipped);
    expect(readFileSync(out, 'utf8')).toBe(expected(lines).stdout);
  });

  it('passes engine settings through (--threshold)', async () => {
    const want = expected(lines, { engine: { thresholdSigma: 1.5 } });
    const { code, stdout } = await immune(['-i', input, '--threshold', '1.5', '--quiet']);
    expect(code).toBe(0);
    expect(stdout).toBe(want.stdout);
    expect(stdout).not.toBe(expected(lines).stdout);
  });

  it('--strict: exit 1 at the first malformed line, after writing the detections before it', async () => {
    const cut = lines.length - 30;
    const strict = [...lines.slice(0, 40), ...lines.slice(44, cut), 'not json', ...lines.slice(cut)];
    const out = join(dir, 'strict.jsonl');
    writeFileSync(join(dir, 'strict-in.jsonl'), strict.join('\n'));
    const { code, stderr } = await immune(['-i', join(dir, 'strict-in.jsonl'), '-o', out, '--strict']);
    expect(code).toBe(1);
    expect(stderr).toMatch(new RegExp(`^immune replay: line ${cut - 3}: malformed JSON \\(.*\\) \\(--strict\\)\\n$`));
    const want = expected(strict, { strict: true }).stdout;
    expect(want.length).toBeGreaterThan(0);
    expect(readFileSync(out, 'utf8')).toBe(want);
  });

  it('exit 2 when the input cannot be read', async () => {
    const missing = join(dir, 'nope.jsonl');
    const { code, stderr, stdout } = await immune(['-i', missing]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`immune replay: cannot read ${missing}: ENOENT: no such file or directory, open '${missing}'\n`);
  });

  it('--help and a bad flag exit at once, with the parse worker started before the flags were read', async () => {
    const help = await immune(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: immune replay/);
    const bad = await immune(['--no-such-flag']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown option '--no-such-flag'/);
  });
});
