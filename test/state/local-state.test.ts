import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_STATE_VERSION, LocalState } from '../../src/state/local-state.js';
import { snapshot } from '../store/contract.js';

let dir: string;
beforeEach(() => {
  dir = join(mkdtempSync(join(tmpdir(), 'immune-state-')), 'cache');
});
afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

describe('LocalState', () => {
  it('starts empty without files, then round-trips run id, keys, seq, workflow and snapshot', () => {
    const a = new LocalState(dir);
    expect(a.load()).toEqual({ state: { run_id: null, keys: {}, last_seq: 0, workflow: { quarantined: [], pending: [], rejected: [] }, snapshot: null }, warnings: [] });
    const snap = snapshot(20, 77);
    a.save({ run_id: 'run-abc', keys: { ingest_api_key: 'imm-1' } });
    a.save({ keys: { operator_token: 'op-2' }, last_seq: 77, workflow: { quarantined: ['a'], pending: ['b'], rejected: ['c'] } });
    a.save({ snapshot: snap });
    const b = new LocalState(dir).load();
    expect(b.warnings).toEqual([]);
    expect(b.state).toEqual({ run_id: 'run-abc', keys: { ingest_api_key: 'imm-1', operator_token: 'op-2' }, last_seq: 77, workflow: { quarantined: ['a'], pending: ['b'], rejected: ['c'] }, snapshot: snap });
  });

  it('writes the snapshot asynchronously from shared JSON bytes, readable by the next load', async () => {
    const s = new LocalState(dir);
    s.save({ run_id: 'run-async' });
    const snap = snapshot(30, 12);
    await s.saveSnapshot(snap, Buffer.from(JSON.stringify(snap)));
    expect(statSync(join(dir, 'snapshot.json')).mode & 0o777).toBe(0o600);
    expect(new LocalState(dir).load()).toMatchObject({ state: { run_id: 'run-async', snapshot: snap }, warnings: [] });
  });

  it('writes owner-only files in an owner-only directory and leaves no temp files behind', () => {
    const s = new LocalState(dir);
    s.save({ run_id: 'run-x', snapshot: snapshot(2, 1) });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(['snapshot.json', 'state.json']);
  });

  it('tightens a state file that others could read, and says so', () => {
    new LocalState(dir).save({ run_id: 'run-x' });
    const p = join(dir, 'state.json');
    chmodSync(p, 0o644);
    const r = new LocalState(dir).load();
    expect(r.state.run_id).toBe('run-x');
    expect(r.warnings[0]).toMatch(/readable by others.*tightened/);
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  it.each([
    ['corrupt JSON', '{"schema_version": 1, "run_id": "run-', /corrupt/],
    ['an older layout', JSON.stringify({ _schema_version: 0, run_id: 'run-old', baselines: {} }), /schema version undefined \(older/],
    ['a newer layout', JSON.stringify({ schema_version: LOCAL_STATE_VERSION + 1, run_id: 'run-new' }), /schema version 2 \(newer/],
    ['not an object', '[1,2,3]', /not a JSON object/],
  ])('moves aside %s with a warning and starts without it', (_name, content, why) => {
    const s = new LocalState(dir);
    s.save({ run_id: 'run-keep', snapshot: snapshot(3, 3) });
    writeFileSync(join(dir, 'state.json'), content, { mode: 0o600 });
    const r = new LocalState(dir).load();
    expect(r.state.run_id).toBeNull();
    expect(r.state.snapshot?.seq).toBe(3); // the other file is unaffected
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(why);
    expect(r.warnings[0]).toMatch(/moved to .*state\.json\.discarded-/);
    expect(existsSync(join(dir, 'state.json'))).toBe(false);
    const aside = readdirSync(dir).find((f) => f.startsWith('state.json.discarded-'))!;
    expect(readFileSync(join(dir, aside), 'utf8')).toBe(content);
  });

  it('discards a snapshot file without a valid snapshot but keeps the run id', () => {
    const s = new LocalState(dir);
    s.save({ run_id: 'run-keep' });
    writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({ schema_version: LOCAL_STATE_VERSION, snapshot: { agents: 'nope' } }), { mode: 0o600 });
    const r = new LocalState(dir).load();
    expect(r.state.run_id).toBe('run-keep');
    expect(r.state.snapshot).toBeNull();
    expect(r.warnings[0]).toMatch(/snapshot\.json has no valid snapshot/);
  });
});
