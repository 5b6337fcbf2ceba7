import { describe, expect, it } from 'vitest';
import { parseLine } from '../../../src/control/replay/parse-line.js';
import { ChunkWriter, R_AGENT_ID, R_MODEL, REF_COLS, VitalsReader, type VitalsChunk } from '../../../src/control/replay/vitals-chunk.js';
import { RECORD, scanLine } from '../../../src/control/replay/vitals-scanner.js';
import type { Vitals } from '../../../src/domain/vitals.js';

const NOW = 1_767_225_600.5;

function line(agent: string, ts: number, extra = ''): string {
  return `{"agent_id":"${agent}","timestamp":${ts},"latency_ms":${100 + ts},"input_tokens":10,"output_tokens":5,"cost":0.5,"success":true,"model":"m1","provider":"p"${extra}}`;
}

/** Writes lines into chunks of `capacity` records the way the parse worker does: the scanner, else parseLine. */
function chunksOf(lines: string[], capacity: number, stringLimit?: number): VitalsChunk[] {
  const w = new ChunkWriter(capacity, undefined, stringLimit);
  const out: VitalsChunk[] = [];
  for (const l of lines) {
    const bytes = Buffer.from(l);
    if (scanLine(bytes, 0, bytes.length, w) !== RECORD) {
      const v = parseLine(l, NaN);
      if (typeof v !== 'string' && v !== null) w.addVitals(v, !Number.isNaN(v.timestamp));
    }
    if (w.full) out.push(w.take());
  }
  if (!w.empty) out.push(w.take());
  return out;
}

const agentNumbers = (c: VitalsChunk) => Array.from({ length: c.records }, (_, i) => c.ref[i * REF_COLS + R_AGENT_ID]);

describe('VitalsChunk agent numbering and VitalsReader', () => {
  const lines = ['a', 'b', 'a', 'c', 'b', 'd', 'a', 'c', 'e'].map((a, i) => line(a, i));

  it('numbers agents across chunks in order of first appearance; each chunk carries only the ids it introduces', () => {
    const chunks = chunksOf(lines, 4);
    expect(chunks.map((c) => [c.firstAgent, c.agents])).toEqual([
      [0, ['a', 'b', 'c']],
      [3, ['d']],
      [4, ['e']],
    ]);
    expect(chunks.flatMap(agentNumbers)).toEqual([0, 1, 0, 2, 1, 3, 0, 2, 4]);
  });

  it('gives an agent one number whichever reader (scanner or JSON.parse fallback) saw it first', () => {
    // An escape sends a line to the fallback: "b" (spelled \u0062) is first numbered there, "a" by the scanner.
    const mixed = [line('a', 0), line('\\u0062', 1), line('b', 2), line('a', 3, ',"prompt_hash":"x\\u0079"')];
    const chunks = chunksOf(mixed, 2);
    expect(chunks.flatMap(agentNumbers)).toEqual([0, 1, 1, 0]);
    expect(chunks.flatMap((c) => c.agents)).toEqual(['a', 'b']);
  });

  it('reads the values parseLine gives, in parseVitals field order, into one object per agent that its next record overwrites', () => {
    const reader = new VitalsReader();
    const seen = new Map<string, Vitals>();
    let k = 0;
    for (const c of chunksOf(lines, 4)) {
      reader.admit(c);
      for (let i = 0; i < c.records; i++, k++) {
        const v = reader.at(c, i, NOW);
        const want = parseLine(lines[k], NOW) as Vitals;
        expect(Object.keys(v)).toEqual(Object.keys(want));
        expect(v).toEqual(want);
        if (seen.has(v.agent_id)) expect(v).toBe(seen.get(v.agent_id));
        else for (const other of seen.values()) expect(v).not.toBe(other);
        seen.set(v.agent_id, v);
      }
    }
    expect(seen.size).toBe(5);
  });

  it('sends each label string once across chunks (one string object per label on the engine thread)', () => {
    const labelled = ['m1', 'm2', 'm1', 'm2', 'm1', 'm3'].map((m, i) => line('a', i).replace('"m1"', `"${m}"`));
    const chunks = chunksOf(labelled, 2);
    expect(chunks.map((c) => [c.firstString, c.strings])).toEqual([
      [0, ['', 'external', 'm1', 'p', 'm2']],
      [5, []],
      [5, ['m3']],
    ]);
    const reader = new VitalsReader();
    const models = chunks.flatMap((c) => (reader.admit(c), Array.from({ length: c.records }, (_, i) => reader.at(c, i, NOW).model)));
    expect(models).toEqual(['m1', 'm2', 'm1', 'm2', 'm1', 'm3']);
  });

  it('restarts the string numbering past its limit, still reading every record right', () => {
    const labelled = ['m1', 'm2', 'm3', 'm4', 'm1', 'm5', 'm1', 'm2'].map((m, i) => line('a', i).replace('"m1"', `"${m}"`));
    const chunks = chunksOf(labelled, 2, 5);
    expect(chunks.map((c) => c.firstString)).toEqual([0, 5, 0, 5]);
    expect(chunks[2].strings.slice(0, 2)).toEqual(['', 'external']);
    const reader = new VitalsReader();
    let k = 0;
    for (const c of chunks) {
      reader.admit(c);
      for (let i = 0; i < c.records; i++, k++) expect(reader.at(c, i, NOW)).toEqual(parseLine(labelled[k], NOW));
    }
  });

  it('reads a label given with an escape (the JSON.parse path) and the same label read by the scanner as one number', () => {
    const [c] = chunksOf([line('a', 0).replace('"m1"', '"\\u006d1"'), line('a', 1)], 4);
    expect(c.ref[R_MODEL]).toBe(c.ref[REF_COLS + R_MODEL]);
  });

  it('shares lists between records without copying them, frozen so that no reader can change another record', () => {
    const [c] = chunksOf([line('a', 0, ',"mcp_servers":["fs"],"tool_names":["t1","t2"]'), line('a', 1, ',"mcp_servers":["fs"],"tool_names":["t1","t2"]'), line('b', 2)], 4);
    const reader = new VitalsReader();
    reader.admit(c);
    const first = reader.at(c, 0, NOW).mcp_servers;
    expect(first).toEqual(['fs']);
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => (first as string[]).push('x')).toThrow();
    expect(reader.at(c, 1, NOW).tool_names).toEqual(['t1', 't2']);
    expect(Object.isFrozen(reader.at(c, 2, NOW).tool_names)).toBe(true);
  });

  it('refuses a chunk that skips agents (chunks must be read in order)', () => {
    const chunks = chunksOf(lines, 4);
    const reader = new VitalsReader();
    expect(() => reader.admit(chunks[1])).toThrow(/out of order/);
  });
});
