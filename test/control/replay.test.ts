import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { generateTrace } from '../../bench/detect/generator.js';
import { lineBatchesOf, linesOf, ReplayAbort, Replayer, type Detection } from '../../src/control/replay.js';

/** A small labelled fleet with every infection once and one provider incident, as JSONL lines. */
const trace = generateTrace({ seed: 5, agents: 30, hours: 3, faultsPerKind: 1 });
const jsonl = trace.vitals.map((v) => JSON.stringify(v));

function replayLines(lines: readonly string[], opts = {}): { out: string; detections: Detection[]; r: Replayer } {
  const r = new Replayer(opts);
  const detections: Detection[] = [];
  for (const l of lines) detections.push(...r.line(l));
  return { out: detections.map((d) => JSON.stringify(d)).join('\n'), detections, r };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('Replayer', () => {
  it('is deterministic: the same input gives byte-identical output', () => {
    const a = replayLines(jsonl);
    const b = replayLines(jsonl);
    expect(a.detections.length).toBeGreaterThan(5);
    expect(b.out).toBe(a.out);
  });

  it('gives the same output line by line, in batches, and through a byte stream', async () => {
    const byLine = replayLines(jsonl).out;
    const r = new Replayer();
    const batched: Detection[] = [];
    // odd-sized chunks so lines and batches straddle chunk boundaries
    const bytes = Buffer.from(jsonl.join('\n') + '\n');
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 7777) chunks.push(bytes.subarray(i, i + 7777));
    for await (const batch of lineBatchesOf(Readable.from(chunks))) batched.push(...r.lines(batch));
    expect(batched.map((d) => JSON.stringify(d)).join('\n')).toBe(byLine);
    expect(r.finish().records).toBe(jsonl.length);
  });

  it('detections are snapshots: serialising each as it is produced or all at the end gives the same bytes', () => {
    const r = new Replayer();
    const early: string[] = [];
    const all: Detection[] = [];
    for (const l of jsonl) {
      const d = r.line(l);
      for (const x of d) early.push(JSON.stringify(x));
      all.push(...d);
    }
    // The trace's provider incident gains anomalies after it starts: a live reference would leak them.
    expect(all.some((d) => d.agent_id.startsWith('fleet:'))).toBe(true);
    expect(all.map((d) => JSON.stringify(d))).toEqual(early);
  });

  it('writes the DESIGN §2 contract: one line per detection, fleet incidents as fleet:<group> with their agents', () => {
    const { detections, r } = replayLines(jsonl);
    for (const d of detections) {
      expect(Object.keys(d).slice(0, 8)).toEqual(['agent_id', 'timestamp', 'max_deviation', 'anomalies', 'deviations', 'diagnosis', 'confidence', 'severity']);
      expect(['mild', 'severe']).toContain(d.severity);
      expect(d.severity === 'severe').toBe(d.max_deviation >= 5);
    }
    const fleet = detections.filter((d) => d.agent_id.startsWith('fleet:'));
    expect(fleet).toHaveLength(1);
    expect(fleet[0]).toMatchObject({ diagnosis: 'external_cause' });
    expect(fleet[0].agents!.length).toBeGreaterThanOrEqual(3);
    const s = r.finish();
    expect(s).toMatchObject({ records: jsonl.length, skipped: 0, agents: 30, fleet_incidents: 1, detections: detections.length - 1, out_of_order: 0 });
    // no agent of the incident is quarantined on its own during it
    const during = detections.filter((d) => !d.agent_id.startsWith('fleet:') && trace.labels.incident.agents.includes(d.agent_id) && d.timestamp >= trace.labels.incident.start && d.timestamp <= trace.labels.incident.end);
    expect(during).toEqual([]);
  });

  it('never re-flags an agent while it is quarantined or in probation (≥ probationSamples normal samples in between)', () => {
    const { detections } = replayLines(jsonl);
    const times = new Map<string, number[]>();
    for (const v of trace.vitals) times.set(v.agent_id, [...(times.get(v.agent_id) ?? []), v.timestamp]);
    let pairs = 0;
    for (const [agent, ts] of times) {
      const hits = detections.filter((d) => d.agent_id === agent).map((d) => d.timestamp);
      for (let i = 1; i < hits.length; i++) {
        pairs++;
        const between = ts.filter((t) => t > hits[i - 1] && t < hits[i]).length;
        expect(between).toBeGreaterThanOrEqual(5);
      }
    }
    expect(pairs).toBeGreaterThan(0); // the trace does re-flag agents whose fault outlasts a passed probation
  });

  it('skips malformed lines and reports each with its line number; everything valid is still replayed', () => {
    const skipped: Array<[number, string]> = [];
    const lines = [jsonl[0], '{"agent_id": "a1", "latency_ms": 5', jsonl[1], '', '   ', '{"agent_id":"bad id!"}', jsonl[2], '{"agent_id":"a2","latency_ms":-1}', '[1,2]', jsonl[3]];
    const { r } = replayLines(lines, { onSkip: (line: number, reason: string) => skipped.push([line, reason]) });
    expect(skipped.map(([n]) => n)).toEqual([2, 6, 8, 9]);
    expect(skipped[0][1]).toMatch(/^malformed JSON/);
    expect(skipped[1][1]).toMatch(/field 'agent_id'/);
    expect(skipped[2][1]).toMatch(/field 'latency_ms'/);
    expect(skipped[3][1]).toMatch(/must be a JSON object/);
    expect(r.finish()).toMatchObject({ records: 4, skipped: 4 });
  });

  it('--strict stops at the first malformed line with its number and replays nothing after it', () => {
    const r = new Replayer({ strict: true });
    r.line(jsonl[0]);
    r.line(jsonl[1]);
    let err: unknown;
    try {
      r.line('not json');
      r.line(jsonl[2]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplayAbort);
    expect((err as ReplayAbort).line).toBe(3);
    expect((err as ReplayAbort).message).toMatch(/^line 3: malformed JSON/);
    expect(r.finish().records).toBe(2);
  });

  it('counts out-of-order records and still judges them', () => {
    const { r } = replayLines([jsonl[5], jsonl[4], jsonl[6]]);
    expect(r.finish()).toMatchObject({ records: 3, out_of_order: 1 });
  });

  it('applies engine overrides (a lower threshold flags more)', () => {
    const strictOut = replayLines(jsonl, { engine: { cusumH: 4, thresholdSigma: 1.5 } }).detections.length;
    expect(strictOut).toBeGreaterThan(replayLines(jsonl).detections.length);
  });
});

describe('linesOf / lineBatchesOf', () => {
  it('splits on \\n and \\r\\n, keeps a last line without newline, and keeps empty lines as empty strings', async () => {
    const lines = await collect(linesOf(Readable.from([Buffer.from('a\r\nb\n\nc')])));
    expect(lines).toEqual(['a', 'b', '', 'c']);
  });

  it('reassembles a multi-byte character split across chunks', async () => {
    const bytes = Buffer.from('{"agent_type":"Résumé→🙂"}\n{"x":1}\n');
    const cut = bytes.indexOf(0xf0) + 2; // inside the 4-byte emoji
    const lines = await collect(linesOf(Readable.from([bytes.subarray(0, cut), bytes.subarray(cut)])));
    expect(lines).toEqual(['{"agent_type":"Résumé→🙂"}', '{"x":1}']);
  });

  it('decodes an ASCII chunk that follows a split character correctly', async () => {
    const bytes = Buffer.from('é\nabc\n');
    const lines = await collect(linesOf(Readable.from([bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2)])));
    expect(lines).toEqual(['é', 'abc']);
  });

  it('yields one batch per chunk and nothing for an empty stream', async () => {
    expect(await collect(lineBatchesOf(Readable.from([Buffer.from('a\nb\n'), Buffer.from('c\n')])))).toEqual([['a', 'b'], ['c']]);
    expect(await collect(lineBatchesOf(Readable.from([])))).toEqual([]);
  });

  it('stops reading the source when the reader stops early', async () => {
    const source = Readable.from([Buffer.from('a\nb\n'), Buffer.from('c\n'), Buffer.from('d\n')]);
    const seen: string[] = [];
    for await (const line of linesOf(source)) {
      seen.push(line);
      if (line === 'b') break;
    }
    expect(seen).toEqual(['a', 'b']);
    expect(source.destroyed).toBe(true);
  });

  it('accepts string chunks', async () => {
    expect(await collect(linesOf(Readable.from(['x\ny', '\n'], { objectMode: true })))).toEqual(['x', 'y']);
  });
});
