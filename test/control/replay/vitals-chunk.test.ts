import { describe, expect, it } from 'vitest';
import { parseLine } from '../../../src/control/replay/parse-line.js';
import { ChunkWriter, R_AGENT_ID, REF_COLS, vitalsAt, VitalsReader, type VitalsChunk } from '../../../src/control/replay/vitals-chunk.js';
import { RECORD, scanLine } from '../../../src/control/replay/vitals-scanner.js';
import type { Vitals } from '../../../src/domain/vitals.js';

const NOW = 1_767_225_600.5;

function line(agent: string, ts: number, extra = ''): string {
  return `{"agent_id":"${agent}","timestamp":${ts},"latency_ms":${100 + ts},"input_tokens":10,"output_tokens":5,"cost":0.5,"success":true,"model":"m1","provider":"p"${extra}}`;
}

/** Writes lines into chunks of `capacity` records the way the parse worker does: the scanner, else parseLine. */
function chunksOf(lines: string[], capacity: number): VitalsChunk[] {
  const w = new ChunkWriter(capacity);
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
        expect(vitalsAt(c, i, NOW, ['a', 'b', 'c', 'd', 'e'])).toEqual(want);
        if (seen.has(v.agent_id)) expect(v).toBe(seen.get(v.agent_id));
        else for (const other of seen.values()) expect(v).not.toBe(other);
        seen.set(v.agent_id, v);
      }
    }
    expect(seen.size).toBe(5);
  });

  it('copies non-empty lists per record and shares a frozen empty one', () => {
    const [c] = chunksOf([line('a', 0, ',"mcp_servers":["fs"],"tool_names":["t1","t2"]'), line('a', 1, ',"mcp_servers":["fs"],"tool_names":["t1","t2"]'), line('b', 2)], 4);
    const reader = new VitalsReader();
    reader.admit(c);
    const first = reader.at(c, 0, NOW).mcp_servers;
    const second = reader.at(c, 1, NOW).mcp_servers;
    expect(second).toEqual(['fs']);
    expect(second).not.toBe(first);
    expect(Object.isFrozen(reader.at(c, 2, NOW).tool_names)).toBe(true);
  });

  it('refuses a chunk that skips agents (chunks must be read in order)', () => {
    const chunks = chunksOf(lines, 4);
    const reader = new VitalsReader();
    expect(() => reader.admit(chunks[1])).toThrow(/out of order/);
  });
});
