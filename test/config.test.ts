import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig, settingNames, settingsTable } from '../src/config.js';
import { ImmuneError } from '../src/domain/errors.js';

describe('parseConfig', () => {
  it('applies defaults and returns a frozen object', () => {
    const c = parseConfig({});
    expect(c.port).toBe(8090);
    expect(c.host).toBe('127.0.0.1');
    expect(c.deviationRequiringApproval).toBe(5);
    expect(c.ewmaSpan).toBe(50);
    expect(c.minSamples).toBe(15);
    expect(c.bodyLimitBytes).toBe(1024 * 1024);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    ['PORT', 'abc', /PORT: 'abc' is not a number/],
    ['PORT', '70000', /PORT: 70000 is above the maximum/],
    ['LOG_FORMAT', 'xml', /LOG_FORMAT: 'xml' must be one of text, json/],
    ['CHAOS', 'maybe', /CHAOS: 'maybe' must be true or false/],
    ['INFLUXDB_URL', 'localhost:8086', /INFLUXDB_URL: .* is not an http\(s\) URL/],
    ['BASELINE_MIN_SAMPLES', '2.5', /BASELINE_MIN_SAMPLES: '2.5' is not an integer/],
    ['IMMUNE_STORE', 'postgres', /IMMUNE_STORE/],
  ])('names the bad setting %s=%s', (name, value, msg) => {
    try {
      parseConfig({ [name]: value });
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(ImmuneError);
      expect((e as ImmuneError).code).toBe('IMM_ERR_CONFIG');
      expect((e as Error).message).toMatch(msg);
    }
  });

  it('accepts the seed\'s log level names', () => {
    expect(parseConfig({ LOG_LEVEL: 'WARNING' }).logLevel).toBe('warn');
    expect(parseConfig({ LOG_LEVEL: 'CRITICAL' }).logLevel).toBe('fatal');
  });

  it('docs/CONFIG.md lists every setting as generated from the table', () => {
    const doc = readFileSync(new URL('../docs/CONFIG.md', import.meta.url), 'utf8');
    expect(doc).toContain(settingsTable());
    for (const n of settingNames()) expect(doc).toContain(`\`${n}\``);
  });
});
