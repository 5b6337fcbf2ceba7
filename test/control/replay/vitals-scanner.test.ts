import { describe, expect, it } from 'vitest';
import { generateTrace } from '../../../bench/detect/generator.js';
import { rng } from '../../../bench/detect/rng.js';
import { parseLine } from '../../../src/control/replay/parse-line.js';
import { ChunkWriter, vitalsAt } from '../../../src/control/replay/vitals-chunk.js';
import { BLANK, LIMITS, RECORD, scanLine, UNSURE } from '../../../src/control/replay/vitals-scanner.js';
import { VitalsInputSchema, type Vitals } from '../../../src/domain/vitals.js';
import type { TArrayOptions, TNumberOptions, TSchema, TStringOptions } from 'typebox';

const NOW = 1_767_225_600.5;

/**
 * The options a schema was built with (maxLength, maxItems, minimum, …). A typebox schema is plain JSON
 * Schema, so they are on it at runtime, but its static types (TString, TNumber, TArray) do not declare them.
 */
const options = (schema: TSchema) => schema as TStringOptions & TNumberOptions & TArrayOptions;

/** What the fast scanner makes of one line: the record, null for blank, or 'unsure' (left to parseLine). */
function scan(line: string | Buffer): Vitals | null | 'unsure' {
  const w = new ChunkWriter(2);
  // Bytes around the line must not be read: surround it with a valid-looking tail.
  const body = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
  const bytes = Buffer.concat([Buffer.from('{"x":1}\n'), body, Buffer.from('1,"cost":5}\n')]);
  const r = scanLine(bytes, 8, 8 + body.length, w);
  if (r === UNSURE) {
    expect(w.records).toBe(0);
    return 'unsure';
  }
  if (r === BLANK) return null;
  expect(r).toBe(RECORD);
  return vitalsAt(w.take(), 0, NOW);
}

/** The contract: the scanner never disagrees with the reference reader; it may only step aside. */
function agrees(line: string | Buffer): 'fast' | 'unsure' {
  const fast = scan(line);
  if (fast === 'unsure') return 'unsure';
  const ref = parseLine(typeof line === 'string' ? line : line.toString('utf8'), NOW);
  const problem = differences(fast, ref);
  if (problem) expect.fail(`${problem} in ${JSON.stringify(String(line))}`);
  return 'fast';
}

/** Field by field, numbers compared with Object.is (so -0 ≠ 0); '' when the same. */
function differences(fast: Vitals | null, ref: Vitals | string | null): string {
  if (typeof ref === 'string') return `the scanner accepted what the reference rejects (${ref})`;
  if (fast === null || ref === null) return fast === ref ? '' : `blank: ${String(fast)} vs ${String(ref)}`;
  if (Object.keys(fast).join() !== Object.keys(ref).join()) return `fields ${Object.keys(fast).join()} vs ${Object.keys(ref).join()}`;
  for (const [k, v] of Object.entries(ref)) {
    const got = (fast as unknown as Record<string, unknown>)[k];
    const same = Array.isArray(v) ? JSON.stringify(got) === JSON.stringify(v) : Object.is(got, v);
    if (!same) return `${k}: ${String(got)} vs ${String(v)}`;
  }
  return '';
}

const trace = generateTrace({ seed: 5, agents: 30, hours: 3, faultsPerKind: 1 });
const lines = trace.vitals.filter((_, i) => i % 7 === 0).map((v) => JSON.stringify(v));
const base = lines[0];

describe('scanLine (the fast path of the replay parse worker)', () => {
  it('reads every line of a generated trace itself, exactly as JSON.parse + parseVitals do', () => {
    for (const l of lines) expect(agrees(l)).toBe('fast');
  });

  it('applies parseVitals defaults to absent fields (timestamp from the replay clock, token_count = in + out, success from error_type)', () => {
    expect(agrees('{"agent_id":"a"}')).toBe('fast');
    expect(agrees('{"agent_id":"a","input_tokens":3,"output_tokens":4,"error_type":"timeout"}')).toBe('fast');
    expect(agrees('{"agent_id":"a","error_type":""}')).toBe('fast');
    expect(scan('{"agent_id":"a","input_tokens":3,"output_tokens":4,"error_type":"timeout"}')).toMatchObject({ timestamp: NOW, token_count: 7, success: false, agent_type: 'external', model: '' });
  });

  it('blank lines are blank, as the reference reader says', () => {
    for (const l of ['', ' ', '\t \r', '  \t']) expect(scan(l)).toBeNull();
    expect(agrees('\u00a0')).toBe('unsure'); // not JSON whitespace
  });

  it.each([
    ['whitespace between tokens', ' { "agent_id" : "a" , "latency_ms" : 5 }\t\r'],
    ['unknown fields of every JSON kind', '{"agent_id":"a","x":{"y":[1,-2.5e3,true,false,null,"s\\u00e9\\n",{}]},"z":[],"w":"é"}'],
    ['fields in another order', '{"cost":0.5,"agent_id":"a","timestamp":12.5}'],
    ['integers written as decimals or exponents', '{"agent_id":"a","tool_calls":5.0,"retries":1e1,"input_tokens":2E+2}'],
    ['lists', '{"agent_id":"a","mcp_servers":["fs", "git"],"tool_names":[ "x" ]}'],
    ['the longest allowed strings', `{"agent_id":"${'a'.repeat(128)}","agent_type":"${'t'.repeat(64)}","model":"${'m'.repeat(128)}"}`],
    ['the largest allowed numbers', '{"agent_id":"a","latency_ms":1e12,"input_tokens":1000000000000}'],
    ['long and tiny decimals', '{"agent_id":"a","cost":0.30000000000000004,"latency_ms":123456789012345678901234567890,"timestamp":1.7976931348623157e308}'],
  ])('accepts %s with the same values', (_what, line) => {
    agrees(line);
  });

  it.each([
    ['malformed JSON', '{"agent_id":"a",}'],
    ['trailing garbage', '{"agent_id":"a"} x'],
    ['two objects', '{"agent_id":"a"}{"agent_id":"b"}'],
    ['a top-level array', '[{"agent_id":"a"}]'],
    ['missing agent_id', '{"latency_ms":5}'],
    ['a bad agent_id', '{"agent_id":"has space"}'],
    ['an empty agent_id', '{"agent_id":""}'],
    ['a too long agent_id', `{"agent_id":"${'a'.repeat(129)}"}`],
    ['a too long agent_type', `{"agent_id":"a","agent_type":"${'t'.repeat(65)}"}`],
    ['a negative number', '{"agent_id":"a","latency_ms":-1}'],
    ['negative zero', '{"agent_id":"a","latency_ms":-0}'],
    ['a fractional count', '{"agent_id":"a","tool_calls":1.5}'],
    ['a count above the limit', '{"agent_id":"a","retries":1000000000001}'],
    ['an overflowing number', '{"agent_id":"a","timestamp":1e400}'],
    ['a leading zero', '{"agent_id":"a","latency_ms":01}'],
    ['a bare fraction', '{"agent_id":"a","latency_ms":.5}'],
    ['a dangling exponent', '{"agent_id":"a","latency_ms":1e}'],
    ['a string for a number', '{"agent_id":"a","latency_ms":"5"}'],
    ['null for a number', '{"agent_id":"a","cost":null}'],
    ['a number for a boolean', '{"agent_id":"a","success":1}'],
    ['too many list items', `{"agent_id":"a","mcp_servers":[${Array(65).fill('"s"').join(',')}]}`],
    ['a number in a list', '{"agent_id":"a","tool_names":[1]}'],
    ['an escaped known string', '{"agent_id":"a","model":"gpt\\u002d4"}'],
    ['an escaped key', '{"agent\\u005fid":"a"}'],
    ['non-ASCII in a known string', '{"agent_id":"a","agent_type":"Résumé"}'],
    ['a duplicate key', '{"agent_id":"a","latency_ms":-1,"latency_ms":5}'],
    ['a byte-order mark', '\ufeff{"agent_id":"a"}'],
    ['a raw control character', '{"agent_id":"a","model":"x\ty"}'],
    ['deep nesting', `{"agent_id":"a","x":${'['.repeat(40)}${']'.repeat(40)}}`],
  ])('never disagrees on %s', (_what, line) => {
    agrees(line);
  });

  it('gives the double JSON.parse gives for every number it converts itself', () => {
    const r = rng(7);
    const rnd = () => r.next();
    let fast = 0;
    for (let i = 0; i < 5_000; i++) {
      const mag = 10 ** Math.floor(rnd() * 30 - 15);
      const x = rnd() * mag;
      const forms = [String(x), x.toFixed(Math.floor(rnd() * 12)), x.toPrecision(1 + Math.floor(rnd() * 17)), x.toExponential(Math.floor(rnd() * 16))];
      for (const text of forms) if (agrees(`{"agent_id":"a","cost":${text},"timestamp":${text}}`) === 'fast') fast++;
    }
    expect(fast).toBeGreaterThan(10_000); // most forms are within the schema's range and read by the scanner
  });

  it('never disagrees on randomly damaged records (10,000 mutations)', () => {
    const r = rng(11);
    const rnd = () => r.next();
    const alphabet = Buffer.from('{}[]",:.-+eE0123456789 \\truefalsn\tx_é\u0000');
    let unsure = 0;
    for (let i = 0; i < 10_000; i++) {
      const bytes = Buffer.from(lines[Math.floor(rnd() * lines.length)]);
      const edits = 1 + Math.floor(rnd() * 3);
      let b = bytes;
      for (let j = 0; j < edits; j++) {
        const at = Math.floor(rnd() * b.length);
        const op = rnd();
        const c = Buffer.of(alphabet[Math.floor(rnd() * alphabet.length)]);
        if (op < 0.4) b[at] = c[0];
        else if (op < 0.7) b = Buffer.concat([b.subarray(0, at), c, b.subarray(at)]);
        else b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
      }
      if (agrees(b) === 'unsure') unsure++;
    }
    expect(unsure).toBeGreaterThan(1000); // damage is mostly noticed …
    expect(unsure).toBeLessThan(10_000); // … and harmless damage (a digit changed) still takes the fast path
  });

  it('keeps the limits it repeats in line with the vitals schema', () => {
    const p = VitalsInputSchema.properties;
    expect(options(p.agent_id).maxLength).toBe(LIMITS.agentId);
    expect(options(p.agent_type).maxLength).toBe(LIMITS.agentType);
    expect(options(p.provider).maxLength).toBe(LIMITS.provider);
    for (const k of ['model', 'error_type', 'prompt_hash'] as const) expect(options(p[k]).maxLength).toBe(LIMITS.label);
    expect(options(p.mcp_servers).maxItems).toBe(LIMITS.mcpServers);
    expect(options(p.tool_names).maxItems).toBe(LIMITS.toolNames);
    expect(options(p.mcp_servers.items).maxLength).toBe(LIMITS.listItem);
    expect(options(p.tool_names.items).maxLength).toBe(LIMITS.listItem);
    for (const k of ['latency_ms', 'input_tokens', 'output_tokens', 'token_count', 'cost', 'tool_calls', 'retries'] as const) {
      expect(options(p[k]).maximum).toBe(LIMITS.maxNumber);
      expect(options(p[k]).minimum).toBe(0);
    }
    expect(options(p.timestamp).minimum).toBe(0);
    expect(options(p.timestamp).maximum).toBeUndefined();
    expect(Object.keys(p).sort()).toEqual(['agent_id', 'agent_type', 'cost', 'error_type', 'input_tokens', 'latency_ms', 'mcp_servers', 'model', 'output_tokens', 'prompt_hash', 'provider', 'retries', 'success', 'timestamp', 'token_count', 'tool_calls', 'tool_names'].sort());
  });

  it('reads the base line of the damage test itself (so the damage test exercises the fast path)', () => {
    expect(agrees(base)).toBe('fast');
  });
});
