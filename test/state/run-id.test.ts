import { describe, expect, it } from 'vitest';
import { generateRunId, resolveRunId } from '../../src/state/run-id.js';

describe('resolveRunId (seed deployment scenarios)', () => {
  const gen = () => 'run-fresh';
  it.each([
    [{ newRun: true, serverRunId: 'run-srv', local: 'run-local', latestInStore: 'run-store' }, 'run-fresh', 'new-run'],
    [{ newRun: false, serverRunId: 'run-srv', local: 'run-local', latestInStore: 'run-store' }, 'run-srv', 'server'],
    [{ newRun: false, serverRunId: '', local: 'run-local', latestInStore: 'run-store' }, 'run-local', 'local'],
    [{ newRun: false, serverRunId: '', local: null, latestInStore: 'run-store' }, 'run-store', 'store'],
    [{ newRun: false, serverRunId: '', local: null, latestInStore: null }, 'run-fresh', 'fresh'],
  ])('%o → %s (%s)', (input, runId, source) => {
    expect(resolveRunId({ ...input, generate: gen })).toEqual({ runId, source });
  });

  it('generates ids in the seed format, different each time', () => {
    const a = generateRunId();
    expect(a).toMatch(/^run-[0-9a-f]{12}$/);
    expect(generateRunId()).not.toBe(a);
  });
});
