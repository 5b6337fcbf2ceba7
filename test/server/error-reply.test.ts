import Fastify, { errorCodes, type FastifyError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ImmuneError } from '../../src/domain/errors.js';
import { errorReply, toImmuneError } from '../../src/server/error-reply.js';

/** A fastify error with a status and no product code, as a plugin or a hook might throw. */
const withStatus = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode }) as FastifyError;

describe('the error table shared by every fastify app of the product', () => {
  it("maps fastify's body errors onto the product's codes and statuses", () => {
    expect(toImmuneError(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE())).toMatchObject({ code: 'IMM_ERR_BODY_TOO_LARGE', status: 413 });
    expect(toImmuneError(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY())).toMatchObject({ code: 'IMM_ERR_MALFORMED_JSON', status: 400, message: 'the JSON body is empty' });
    expect(toImmuneError(new SyntaxError('Unexpected end of JSON input') as FastifyError).message).toBe('the body is not valid JSON (Unexpected end of JSON input)');
    expect(toImmuneError(withStatus(413, 'too big'))).toMatchObject({ code: 'IMM_ERR_BODY_TOO_LARGE', status: 413 });
    expect(toImmuneError(withStatus(415, 'no xml'))).toMatchObject({ code: 'IMM_ERR_UNSUPPORTED_MEDIA', status: 415 });
    expect(toImmuneError(withStatus(422, 'bad field'))).toMatchObject({ code: 'IMM_ERR_VALIDATION', status: 400, message: 'bad field' });
  });

  it('tells a client what to send in the words of the app that refused it', () => {
    const media = new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE('text/csv');
    expect(toImmuneError(media).message).toBe('unsupported Content-Type: send application/json (or application/x-ndjson for batches)');
    expect(toImmuneError(media, 'application/json').message).toBe('unsupported Content-Type: send application/json');
  });

  it("passes the product's own errors through and hides everything else behind a 500", () => {
    const own = new ImmuneError('IMM_ERR_NOT_FOUND', 'no agent x');
    expect(toImmuneError(own)).toBe(own);
    expect(errorReply(new Error('db file vanished'))).toEqual({ status: 500, body: { ok: false, error: 'internal error; see the server log', code: 'IMM_ERR_INTERNAL' } });
  });

  it('answers a real fastify request the same way', async () => {
    const app = Fastify();
    app.setErrorHandler((err: FastifyError, _req, reply) => {
      const { status, body } = errorReply(err);
      return reply.code(status).send(body);
    });
    app.post('/x', async () => ({ ok: true }));
    const res = await app.inject({ method: 'POST', url: '/x', headers: { 'content-type': 'application/json' }, payload: '{"a":' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ ok: false, code: 'IMM_ERR_MALFORMED_JSON', error: expect.stringMatching(/^the body is not valid JSON \(/) });
    await app.close();
  });
});
