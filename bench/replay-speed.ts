/**
 * Replay speed: the Replayer (what `immune replay` wraps) over a JSONL file of
 * vitals from the detection benchmark's generator, read with linesOf.
 * Target (DESIGN §4): ≥ 500,000 vitals/s on a 2-core machine.
 *
 *   node --import tsx bench/replay-speed.ts [--agents 200] [--hours 8] [--runs 5]
 *
 * Prints the median of several runs next to the cost of merely reading and
 * validating the same lines, so the engine's share is visible.
 */
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { lineBatchesOf, linesOf, Replayer } from '../src/control/replay.js';
import { parseVitals } from '../src/domain/vitals.js';
import { generateTrace } from './detect/generator.js';

/** The Replayer over the file, read in batches of lines (lineBatchesOf) or one line per await (linesOf). */
async function replayFile(path: string, batched: boolean): Promise<{ records: number; seconds: number; detections: number }> {
  const t0 = performance.now();
  const r = new Replayer();
  let detections = 0;
  const input = createReadStream(path);
  if (batched) for await (const batch of lineBatchesOf(input)) detections += r.lines(batch).length;
  else for await (const line of linesOf(input)) detections += r.line(line).length;
  const s = r.finish();
  return { records: s.records, seconds: (performance.now() - t0) / 1000, detections };
}

async function parseOnly(path: string): Promise<{ records: number; seconds: number }> {
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

/** Writes the trace and lets it go: a heap holding 600k parsed vitals would slow every GC of the timed runs. */
function writeTrace(file: string, agents: number, hours: number): void {
  const trace = generateTrace({ seed: 1, agents, hours, faultsPerKind: 3 });
  writeFileSync(file, trace.vitals.map((v) => JSON.stringify(v)).join('\n') + '\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const o = new Command()
    .name('bench:replay-speed')
    .option('--agents <n>', 'agents in the trace', '200')
    .option('--hours <n>', 'hours of event time', '8')
    .option('--runs <n>', 'timed runs (the median is reported)', '5')
    .parse()
    .opts<{ agents: string; hours: string; runs: string }>();
  const dir = mkdtempSync(join(tmpdir(), 'replay-speed-'));
  const file = join(dir, 'vitals.jsonl');
  try {
    writeTrace(file, Number(o.agents), Number(o.hours));
    await replayFile(file, true); // warm-up: JIT and file cache
    const replay: number[] = [];
    const perLine: number[] = [];
    const parse: number[] = [];
    let records = 0;
    let detections = 0;
    for (let i = 0; i < Number(o.runs); i++) {
      const p = await parseOnly(file);
      parse.push(p.records / p.seconds);
      const r = await replayFile(file, true);
      replay.push(r.records / r.seconds);
      const l = await replayFile(file, false);
      perLine.push(l.records / l.seconds);
      records = r.records;
      detections = r.detections;
    }
    const rate = median(replay);
    const rp = median(parse);
    process.stdout.write(
      `replay: ${records} vitals from ${o.agents} agents, ${detections} detections\n` +
        `  Replayer, lineBatchesOf (read + parse + validate + engine): median ${Math.round(rate).toLocaleString('en-US')} vitals/s over ${o.runs} runs (target ≥ 500,000) ${rate >= 500_000 ? 'PASS' : 'FAIL'}\n` +
        `  Replayer, linesOf (one await per line):                     median ${Math.round(median(perLine)).toLocaleString('en-US')} vitals/s\n` +
        `  read + parse + validate only (no engine):                   median ${Math.round(rp).toLocaleString('en-US')} vitals/s\n` +
        `  engine share of the time: ${Math.round((1 - rate / rp) * 100)} %\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
