import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateTrace } from '../../../bench/detect/generator.js';
import { ReplayAbort, Replayer, type Detection, type ReplayOptions } from '../../../src/control/replay.js';
import { EventTimeReplayer } from '../../../src/control/replay/event-time-replayer.js';
import { inputGuess, ParseWorker, prestartParseWorker, replayFile, ReplayInputError, type ReplaySource } from '../../../src/control/replay/replay-file.js';

const dir = mkdtempSync(join(tmpdir(), 'replay-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const trace = generateTrace({ seed: 5, agents: 30, hours: 3, faultsPerKind: 1 });
const clean = trace.vitals.map((v) => JSON.stringify(v));

/**
 * The trace with every kind of line the reader meets in the wild, spread through it: lines the fast
 * scanner reads, lines it leaves to JSON.parse + parseVitals, malformed lines and blank ones.
 */
function messy(): string[] {
  const out: string[] = [];
  clean.forEach((l, i) => {
    const v = trace.vitals[i];
    switch (i % 211) {
      case 3: out.push('{"agent_id": "a1", "latency_ms": 5'); break; // malformed JSON
      case 17: out.push('{"agent_id":"bad id!"}'); break; // fails validation
      case 29: out.push('', '   '); break; // blank lines
      case 41: out.push(JSON.stringify({ ...v, agent_type: 'Résumé→🙂', note: 'x\\"y' })); break; // non-ASCII, unknown field
      case 53: out.push(JSON.stringify({ ...v, timestamp: undefined })); break; // no timestamp: the replay clock's
      case 67: out.push(l.replace(/,/g, ' ,  ')); break; // whitespace
      case 79: out.push(l.replace('"latency_ms":', '"latency_ms":-')); break; // negative number
      case 97: out.push(l.replace(/"model":"[^"]*"/, '"model":"gpt\\u002d4o"')); break; // escape in a known field
      case 113: out.push(l.replace('{', '{"cost":1,')); break; // duplicate key: the last one wins
      case 127: out.push('[1,2]'); break;
      case 149: out.push(JSON.stringify({ ...v, tool_names: ['search', 'fetch'], mcp_servers: ['fs'] })); break;
    }
    out.push(l);
  });
  return out;
}

/** The reference: Replayer.line over the same lines, collecting detections, skips and the --strict abort. */
function reference(lines: readonly string[], opts: ReplayOptions = {}) {
  const skips: Array<[number, string]> = [];
  const r = new Replayer({ ...opts, onSkip: (n, why) => skips.push([n, why]) });
  const detections: Detection[] = [];
  let abort: ReplayAbort | null = null;
  try {
    for (const l of lines) detections.push(...r.line(l));
  } catch (e) {
    if (!(e instanceof ReplayAbort)) throw e;
    abort = e;
  }
  return { out: detections.map((d) => JSON.stringify(d)).join('\n'), skips, summary: { ...r.finish(), seconds: 0, vitals_per_second: 0 }, abort };
}

async function pipelined(source: ReplaySource, opts: ReplayOptions = {}) {
  const skips: Array<[number, string]> = [];
  const r = new EventTimeReplayer({ ...opts, onSkip: (n, why) => skips.push([n, why]) });
  const detections: Detection[] = [];
  let abort: ReplayAbort | null = null;
  try {
    for await (const batch of replayFile(source, r)) detections.push(...batch);
  } catch (e) {
    if (!(e instanceof ReplayAbort)) throw e;
    abort = e;
  }
  return { out: detections.map((d) => JSON.stringify(d)).join('\n'), skips, summary: { ...r.finish(), seconds: 0, vitals_per_second: 0 }, abort };
}

function file(name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('replayFile (parsing in a worker thread)', () => {
  const lines = messy();
  const ref = reference(lines);

  it('gives byte-identical output, skips and summary to Replayer.line on a trace with faults and every kind of line', async () => {
    expect(ref.summary.detections).toBeGreaterThan(5);
    expect(ref.summary.fleet_incidents).toBe(1);
    expect(ref.skips.length).toBeGreaterThan(4 * Math.floor(clean.length / 211));
    const got = await pipelined({ path: file('messy.jsonl', lines.join('\n') + '\n') });
    expect(got.out).toBe(ref.out);
    expect(got.skips).toEqual(ref.skips);
    expect(got.summary).toEqual(ref.summary);
  });

  it('is deterministic: a second run gives the same bytes', async () => {
    const again = await pipelined({ path: join(dir, 'messy.jsonl') });
    expect(again.out).toBe(ref.out);
  });

  it('reads "\\r\\n" endings, a last line without newline, and a line longer than the read buffer', async () => {
    const huge = JSON.stringify({ ...trace.vitals[10], padding: 'p'.repeat(700_000) });
    const withHuge = [...clean.slice(0, 10), huge, ...clean.slice(11, 3000)];
    const want = reference(withHuge);
    const got = await pipelined({ path: file('crlf.jsonl', withHuge.join('\r\n')) });
    expect(got.out).toBe(want.out);
    expect(got.summary).toEqual(want.summary);
    expect(got.summary.records).toBe(3000);
  });

  it('--strict: stops at the first malformed line with its number, after the detections before it', async () => {
    const cut = clean.length - 50;
    const strictLines = [...clean.slice(0, cut), 'not json', ...clean.slice(cut)];
    const want = reference(strictLines, { strict: true });
    expect(want.abort?.line).toBe(cut + 1);
    expect(want.summary.detections).toBeGreaterThan(0);
    const got = await pipelined({ path: file('strict.jsonl', strictLines.join('\n')) }, { strict: true });
    expect(got.abort?.message).toBe(want.abort?.message);
    expect(got.out).toBe(want.out);
    expect(got.summary.records).toBe(cut);
  });

  it('reads an open descriptor (how stdin is read) the same way', async () => {
    const fd = openSync(file('fd.jsonl', lines.join('\n')), 'r');
    try {
      const got = await pipelined({ fd });
      expect(got.out).toBe(ref.out);
    } finally {
      closeSync(fd);
    }
  });

  it('waits on a non-blocking descriptor that has nothing to read yet (EAGAIN) instead of failing', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, 'w');
    // Less than a pipe's 64 KB in all, so a writer never blocks even if the reader has given up.
    const part = clean.slice(0, 150);
    try {
      const replay = pipelined({ fd });
      // Written in pieces with pauses longer than the worker takes to start, so it finds the pipe empty
      // in between (the pauses make the condition, nothing waits on them for a result).
      for (let i = 0; i < part.length; i += 50) {
        writeSync(writer, part.slice(i, i + 50).join('\n') + '\n');
        await new Promise((r) => setTimeout(r, 700));
      }
      closeSync(writer);
      const got = await replay;
      expect(got.summary).toEqual(reference(part).summary);
    } finally {
      closeSync(fd);
    }
  });

  it('reports an input that cannot be read with the system message', async () => {
    await expect(pipelined({ path: join(dir, 'missing.jsonl') })).rejects.toThrow(ReplayInputError);
    await expect(pipelined({ path: join(dir, 'missing.jsonl') })).rejects.toThrow(/^ENOENT: no such file or directory, open '.*missing\.jsonl'$/);
    mkdirSync(join(dir, 'a-directory'));
    await expect(pipelined({ path: join(dir, 'a-directory') })).rejects.toThrow(/^EISDIR/);
  });

  it('an empty file replays nothing', async () => {
    const got = await pipelined({ path: file('empty.jsonl', '') });
    expect(got.summary.records).toBe(0);
    expect(got.out).toBe('');
  });

  it('stops the worker when the reader stops early', async () => {
    const r = new EventTimeReplayer();
    let batches = 0;
    for await (const _ of replayFile({ path: file('early.jsonl', clean.join('\n')) }, r)) {
      batches++;
      break;
    }
    expect(batches).toBe(1);
    expect(r.summary.records).toBeLessThan(clean.length);
  });

  it('a worker started early on the input guessed from the command line is used when the guess is right', async () => {
    const path = file('guessed.jsonl', lines.join('\n'));
    prestartParseWorker({ path });
    const got = await pipelined({ path });
    expect(got.out).toBe(ref.out);
    expect(got.summary).toEqual(ref.summary);
  });

  it('a wrong guess is thrown away: the input the parsed flags name is replayed', async () => {
    const other = file('other.jsonl', clean.slice(0, 500).join('\n'));
    const path = file('named.jsonl', lines.join('\n'));
    prestartParseWorker({ path: other });
    const got = await pipelined({ path });
    expect(got.out).toBe(ref.out);
    expect(got.summary).toEqual(ref.summary);
    // A guess that cannot be opened leaves no error behind either.
    prestartParseWorker({ path: join(dir, 'no-such-file.jsonl') });
    expect((await pipelined({ path })).summary).toEqual(ref.summary);
  });
});

describe('ParseWorker inputs', () => {
  it('is told its input once, and refuses to read another than the one it started on', async () => {
    const w = new ParseWorker();
    try {
      w.start({ path: join(dir, 'a.jsonl') });
      expect(w.canRead({ path: join(dir, 'a.jsonl') })).toBe(true);
      expect(w.canRead({ path: join(dir, 'b.jsonl') })).toBe(false);
      expect(w.canRead({ fd: 0 })).toBe(false);
      expect(() => w.start({ path: join(dir, 'a.jsonl') })).toThrow('already has its input');
      expect(() => w.read({ path: join(dir, 'b.jsonl') })).toThrow('reading another input');
    } finally {
      await w.stop();
    }
  });
});

describe('inputGuess (the input file read off an `immune replay` command line before the CLI parses it)', () => {
  it.each([
    [['-i', 'a.jsonl'], 'a.jsonl'],
    [['--input', 'a.jsonl', '-o', 'out.jsonl', '--strict'], 'a.jsonl'],
    [['--threshold', '3', '--input=a.jsonl'], 'a.jsonl'],
    [['-ia.jsonl'], 'a.jsonl'],
  ])('%j names %s', (args, path) => {
    expect(inputGuess(args)).toEqual({ path });
  });

  it.each([
    [[]], // stdin by default
    [['-i', '-']],
    [['-o', 'out.jsonl']],
    [['-i', 'a.jsonl', '--input', 'b.jsonl']], // named twice: the parser decides
    [['-i']],
    [['-i', '--strict']],
    [['--', '-i', 'a.jsonl']],
    [['-hi', 'a.jsonl']], // -i in a group of short flags
  ])('%j: no guess', (args) => {
    expect(inputGuess(args)).toBeNull();
  });
});
