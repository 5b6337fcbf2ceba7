import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ImmuneError } from '../../src/domain/errors.js';

describe('error table', () => {
  it('every code is documented in docs/ERRORS.md with its status', () => {
    const doc = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8');
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    }
  });

  it('renders {ok:false, error, code, ...details}', () => {
    const e = new ImmuneError('IMM_ERR_NOT_PENDING', 'agent a is not awaiting approval', { agent_id: 'a' });
    expect(e.status).toBe(409);
    expect(e.toJSON()).toEqual({ ok: false, error: 'agent a is not awaiting approval', code: 'IMM_ERR_NOT_PENDING', agent_id: 'a' });
  });
});
