import { describe, expect, it } from 'vitest';
import { warmUp } from '../../../src/control/replay/warm-up.js';

describe('warmUp (JIT warm-up before a large replay)', () => {
  const found = warmUp();

  it('walks the engine through every phase: infections of several kinds, mild and severe, and a fleet incident', () => {
    const individual = found.filter((d) => !d.agent_id.startsWith('fleet:'));
    expect(new Set(individual.map((d) => d.diagnosis)).size).toBeGreaterThanOrEqual(3);
    expect(new Set(individual.map((d) => d.severity))).toEqual(new Set(['mild', 'severe']));
    expect(found.filter((d) => d.agent_id.startsWith('fleet:provider:')).length).toBe(1);
    // Agents are flagged again after their probation, so probation was passed.
    expect(individual.filter((d) => d.agent_id === 'warm-up-0').length).toBeGreaterThanOrEqual(2);
  });

  it('is the same every run (seeded)', () => {
    expect(JSON.stringify(warmUp())).toBe(JSON.stringify(found));
  });
});
