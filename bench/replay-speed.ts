/**
 * Replay speed. Target (DESIGN §4): `immune replay` ≥ 500,000 vitals/s on a 2-core machine.
 *
 *   npm run build && node --import tsx bench/replay-speed.ts [--agents 200] [--hours 8] [--runs 5]
 *
 * Writes one detection-benchmark trace to a temporary JSONL file and times, interleaved in each
 * round so that all paths see the same machine load:
 *   - `immune replay` end to end: the built CLI spawned on the file (and on stdin), wall time from
 *     spawn to exit, start-up included;
 *   - the pipelined replay in this process (replayFile: parse worker + engine thread);
 *   - the single-threaded Replayer over lineBatchesOf (the path before the pipeline);
 *   - parsing alone, both ways: JSON.parse + parseVitals, and the worker's scanner;
 *   - the engine alone over pre-parsed vitals (in a child process, so that 600k objects held in
 *     memory do not slow every other path's garbage collection).
 * Prints medians (with min–max), the load average before and after, and the CLI's engine-thread CPU
 * seconds on the stdin run (bench/thread-cpu.cjs), which another process's load inflates far less than
 * wall time.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, createReadStream, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { lineBatchesOf, Replayer } from '../src/control/replay.js';
import { EventTimeReplayer } from '../src/control/replay/event-time-replayer.js';
import { replayFile } from '../src/control/replay/replay-file.js';
import { ChunkWriter } from '../src/control/replay/vitals-chunk.js';
import { RECORD, scanLine } from '../src/control/replay/vitals-scanner.js';
import type { Vitals } from '../src/domain/vitals.js';
import { parseVitals } from '../src/domain/vitals.js';
import { generateTrace } from './detect/generator.js';

interface Timing {
  records: number;
  seconds: number;
  /** What `immune replay` itself reports (excludes process start-up). */
  reported?: number;
  /** CPU seconds of the CLI's main (engine) thread: far less sensitive to other processes' load than wall time. */
  engineCpu?: number;
}

/** The path every rate is compared with (×1.00): the replay before the pipelined one. */
const BASELINE = 'single-threaded Replayer (lineBatchesOf; before)';

/**
 * `node bin/immune.js replay` on the file (or on stdin), output discarded; wall time. `engineCpu`: also
 * preload thread-cpu.cjs to read the engine thread's CPU at exit (it adds ~15 ms of start-up, so the
 * headline run goes without it, as users run the CLI).
 */
function cli(path: string, viaStdin: boolean, env: NodeJS.ProcessEnv = process.env, engineCpu = false): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const input = viaStdin ? openSync(path, 'r') : 'ignore';
    const preload = engineCpu ? ['-r', new URL('./thread-cpu.cjs', import.meta.url).pathname] : [];
    const args = [...preload, ...(viaStdin ? ['bin/immune.js', 'replay', '-o', '/dev/null'] : ['bin/immune.js', 'replay', '-i', path, '-o', '/dev/null'])];
    const child = spawn(process.execPath, args, { stdio: [input, 'ignore', 'pipe'], env });
    if (typeof input === 'number') closeSync(input);
    let err = '';
    // stdio[2] is 'pipe', so stderr is there; the fd in stdio[0] only keeps TypeScript from picking the typed overload.
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - t0) / 1000;
      const m = /replay: (\d+) records read.*\((\d+) vitals\/s\)/.exec(err);
      if (code !== 0 || !m) return reject(new Error(`immune replay exited ${code}: ${err}`));
      const cpu = /engine thread: ([\d.]+) s CPU/.exec(err);
      resolve({ records: Number(m[1]), seconds, reported: Number(m[2]), engineCpu: cpu ? Number(cpu[1]) : undefined });
    });
  });
}

async function pipelined(path: string): Promise<Timing> {
  const t0 = performance.now();
  const r = new EventTimeReplayer();
  for await (const _ of replayFile({ path }, r)) {
    // detections are few; the CLI writes them, here they are dropped
  }
  return { records: r.summary.records, seconds: (performance.now() - t0) / 1000 };
}

async function singleThreaded(path: string): Promise<Timing> {
  const t0 = performance.now();
  const r = new Replayer();
  for await (const batch of lineBatchesOf(createReadStream(path))) r.lines(batch);
  return { records: r.finish().records, seconds: (performance.now() - t0) / 1000 };
}

async function parseReference(path: string): Promise<Timing> {
  const t0 = performance.now();
  let records = 0;
  for await (const batch of lineBatchesOf(createReadStream(path))) {
    for (const line of batch) {
      parseVitals(JSON.parse(line), 0);
      records++;
    }
  }
  return { records, seconds: (performance.now() - t0) / 1000 };
}

/** The worker's scanner on one thread, reading as the worker does (256 KB reads into one buffer); records into chunks. */
function parseScanner(path: string): Timing {
  const t0 = performance.now();
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(256 * 1024);
  const w = new ChunkWriter(8192);
  let records = 0;
  let have = 0;
  for (let n; (n = readSync(fd, buf, have, buf.length - have, null)) > 0; ) {
    have += n;
    const view = buf.subarray(0, have);
    let start = 0;
    for (let nl = view.indexOf(10, 0); nl !== -1; nl = view.indexOf(10, start)) {
      records += scanLine(buf, start, nl, w) === RECORD ? 1 : 0;
      if (w.full) w.take(w); // the chunk is dropped: write the next one over it
      start = nl + 1;
    }
    buf.copy(buf, 0, start, have);
    have -= start;
  }
  closeSync(fd);
  return { records, seconds: (performance.now() - t0) / 1000 };
}

/** Child process: the engine alone (EventTimeReplayer.record) over vitals parsed beforehand; the second of two passes. */
async function engineOnlyChild(path: string): Promise<void> {
  const all: Vitals[] = [];
  // A copy of each record: the replay reuses one record object per agent.
  class Keep extends EventTimeReplayer {
    override recordInto(v: Vitals): void {
      all.push({ ...v });
    }
  }
  for await (const _ of replayFile({ path }, new Keep())) {
    // collecting
  }
  let seconds = 0;
  for (let pass = 0; pass < 2; pass++) {
    const t0 = performance.now();
    const r = new EventTimeReplayer();
    for (const v of all) r.record(v);
    seconds = (performance.now() - t0) / 1000;
  }
  process.stdout.write(JSON.stringify({ records: all.length, seconds }));
}

function engineOnly(path: string): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], '--engine-only', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Timing) : reject(new Error(`engine-only child exited ${code}`))));
  });
}

/** Writes the trace and lets it go: a heap holding 600k parsed vitals would slow every GC of the timed runs. */
function writeTrace(file: string, agents: number, hours: number): void {
  const trace = generateTrace({ seed: 1, agents, hours, faultsPerKind: 3 });
  // In slices: one string of a large trace (≥ 600 agents) would pass V8's maximum string length.
  writeFileSync(file, '');
  for (let i = 0; i < trace.vitals.length; i += 100_000) {
    appendFileSync(file, trace.vitals.slice(i, i + 100_000).map((v) => JSON.stringify(v) + '\n').join(''));
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const o = new Command()
    .name('bench:replay-speed')
    .option('--agents <n>', 'agents in the trace', '200')
    .option('--hours <n>', 'hours of event time', '8')
    .option('--runs <n>', 'rounds (the median is reported)', '5')
    .option('--keep <file>', 'write the trace to this file and keep it (for profiling `immune replay` on it)')
    .option('--engine-only <file>', '(internal) time the engine alone over this file and print JSON')
    .parse()
    .opts<{ agents: string; hours: string; runs: string; keep?: string; engineOnly?: string }>();
  if (o.engineOnly) return engineOnlyChild(o.engineOnly);
  if (!existsSync('dist/cli/main.js')) throw new Error('dist/cli/main.js is missing: run "npm run build" first');
  if (statSync('dist/control/replay/replay-file.js').mtimeMs < statSync('src/control/replay/replay-file.ts').mtimeMs) process.stderr.write('warning: dist/ is older than src/: run "npm run build"\n');

  const dir = mkdtempSync(join(tmpdir(), 'replay-speed-'));
  const file = o.keep ?? join(dir, 'vitals.jsonl');
  try {
    writeTrace(file, Number(o.agents), Number(o.hours));
    const mb = statSync(file).size / 1e6;
    /** `cli`: the short name a CLI path goes by in the notes under the table. */
    const paths: Array<{ name: string; run: () => Promise<Timing> | Timing; cli?: string }> = [
      { name: 'immune replay -i file (CLI, wall time incl. start-up)', run: () => cli(file, false), cli: 'file' },
      { name: 'immune replay < file (CLI on stdin, wall time, engine CPU read at exit)', run: () => cli(file, true, process.env, true), cli: 'stdin' },
      { name: 'pipelined replay in-process (replayFile)', run: () => pipelined(file) },
      { name: BASELINE, run: () => singleThreaded(file) },
      { name: 'parse only: read + split + JSON.parse + parseVitals', run: () => parseReference(file) },
      { name: 'parse only: read + split + scanLine (the worker)', run: () => parseScanner(file) },
      { name: 'engine only: EventTimeReplayer.record, pre-parsed', run: () => engineOnly(file) },
    ];
    // Some sandboxes set NODE_EXTRA_CA_CERTS for every process; Node then parses that CA bundle at
    // start-up (~50 ms here), before any of the CLI's code runs. Shown apart when it is set.
    if (process.env.NODE_EXTRA_CA_CERTS) {
      const { NODE_EXTRA_CA_CERTS: _, ...without } = process.env;
      paths.push({ name: 'immune replay -i file, without NODE_EXTRA_CA_CERTS', run: () => cli(file, false, without), cli: 'file, without NODE_EXTRA_CA_CERTS' });
    }
    // Warm-up: JIT, file cache, the CLI's module cache.
    await pipelined(file);
    await singleThreaded(file);
    await parseReference(file);
    parseScanner(file);
    await cli(file, false);
    const rates = paths.map(() => [] as number[]);
    const reported = paths.map(() => [] as number[]);
    const engineCpu = paths.map(() => [] as number[]);
    let records = 0;
    const loadBefore = load();
    for (let i = 0; i < Number(o.runs); i++) {
      for (let p = 0; p < paths.length; p++) {
        const t = await paths[p].run();
        rates[p].push(t.records / t.seconds);
        if (t.reported !== undefined) reported[p].push(t.reported);
        if (t.engineCpu !== undefined) engineCpu[p].push(t.engineCpu);
        records = Math.max(records, t.records);
      }
    }
    const loadAfter = load();
    const base = median(rates[paths.findIndex((x) => x.name === BASELINE)]);
    let text = `replay: ${fmt(records)} vitals (${mb.toFixed(0)} MB) from ${o.agents} agents; median of ${o.runs} rounds, min–max in brackets\n`;
    text += `load average (1/5/15 min) before: ${loadBefore}, after: ${loadAfter}\n`;
    paths.forEach(({ name }, p) => {
      const r = rates[p];
      text += `  ${name.padEnd(56)} ${fmt(median(r)).padStart(9)} vitals/s  [${fmt(Math.min(...r))}–${fmt(Math.max(...r))}]  ×${(median(r) / base).toFixed(2)}\n`;
    });
    for (let p = 0; p < paths.length; p++) if (reported[p].length > 0) text += `  (${paths[p].cli}: immune replay's own figure, start-up excluded: median ${fmt(median(reported[p]))} vitals/s)\n`;
    for (let p = 0; p < paths.length; p++) {
      if (engineCpu[p].length === 0) continue;
      const cpu = median(engineCpu[p]);
      text += `  (${paths[p].cli}: engine-thread CPU, start-up included: median ${cpu.toFixed(2)} s = ${fmt(records / cpu)} vitals per CPU-second [${Math.min(...engineCpu[p]).toFixed(2)}–${Math.max(...engineCpu[p]).toFixed(2)} s])\n`;
    }
    const cliRate = median(rates[paths.findIndex((x) => x.cli === 'file')]);
    text += `target ≥ 500,000 vitals/s end to end: ${cliRate >= 500_000 ? 'PASS' : 'FAIL'} (${fmt(cliRate)})\n`;
    process.stdout.write(text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
