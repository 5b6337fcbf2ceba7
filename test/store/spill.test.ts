import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpillFile, type SpillOp } from '../../src/store/spill.js';
import { vitals } from './contract.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'immune-spill-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const op = (n: number, run = 'r'): SpillOp => ({ k: 'vitals', run, rows: Array.from({ length: n }, (_, i) => vitals('a', 1000 + i)) });

async function all(s: SpillFile) {
  const out = [];
  for await (const x of s.read()) out.push(x);
  return out;
}

describe('spill file', () => {
  it('keeps ops in order across a restart, owner-only, and resumes after the delivered ones', async () => {
    const a = new SpillFile(dir);
    a.append(op(2));
    a.append({ k: 'run', run: 'r2' });
    a.append(op(3));
    expect(a.records).toBe(6);
    expect(statSync(join(dir, 'queue.ndjson')).mode & 0o777).toBe(0o600);
    const [first] = await all(a);
    a.advance(first.end, first.op);
    a.close();

    const b = new SpillFile(dir);
    expect(await b.load()).toEqual({ records: 4, ops: 2, damaged: 0 });
    expect((await all(b)).map((x) => x.op?.k)).toEqual(['run', 'vitals']);
    b.clear();
    expect(await new SpillFile(dir).load()).toEqual({ records: 0, ops: 0, damaged: 0 });
  });

  it('cuts a line torn by a crash mid-append (so the next append is not glued to it) and counts a damaged line', async () => {
    const a = new SpillFile(dir);
    a.append(op(1));
    a.close();
    appendFileSync(join(dir, 'queue.ndjson'), 'this is not json\n');
    appendFileSync(join(dir, 'queue.ndjson'), JSON.stringify(op(1)) + '\n');
    appendFileSync(join(dir, 'queue.ndjson'), '{"k":"vitals","run":"r","rows":[{"agent_'); // no newline: never acknowledged
    const b = new SpillFile(dir);
    expect(await b.load()).toEqual({ records: 2, ops: 2, damaged: 1 });
    expect((await all(b)).map((x) => x.op === null)).toEqual([false, true, false]);
    expect(readFileSync(join(dir, 'queue.ndjson'), 'utf8').endsWith('}\n')).toBe(true);
    b.append(op(4));
    expect((await all(b)).map((x) => (x.op?.k === 'vitals' ? x.op.rows.length : null))).toEqual([1, null, 1, 4]);
  });
});
