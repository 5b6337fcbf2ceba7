import type { FastifyError } from 'fastify';
import { ImmuneError, isImmuneError } from '../domain/errors.js';

/** The status and JSON body that answer an error thrown while handling a request. */
export function errorReply(err: unknown): { status: number; body: unknown } {
  const e = isImmuneError(err) ? err : toImmuneError(err as FastifyError);
  return { status: e.status, body: e.toJSON() };
}

/**
 * Maps fastify's own errors (body parsing, limits, media types) onto the product's error table; one
 * table for every fastify app of the product (the control plane, the server API, the OTLP receiver).
 * `accepts` names the media types the app's 415 answer tells the client to send.
 */
export function toImmuneError(err: FastifyError | ImmuneError, accepts = 'application/json (or application/x-ndjson for batches)'): ImmuneError {
  if (isImmuneError(err)) return err;
  const code = err.code ?? '';
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ImmuneError('IMM_ERR_BODY_TOO_LARGE', `request body exceeds the limit of ${err.message.match(/\d+/)?.[0] ?? 'BODY_LIMIT_BYTES'} bytes`);
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ImmuneError('IMM_ERR_UNSUPPORTED_MEDIA', `unsupported Content-Type: send ${accepts}`);
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return new ImmuneError('IMM_ERR_MALFORMED_JSON', 'the JSON body is empty');
  if (code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
    return new ImmuneError('IMM_ERR_MALFORMED_JSON', `the body is not valid JSON (${err.message})`);
  }
  if (code === 'FST_ERR_VALIDATION' || err.validation) return new ImmuneError('IMM_ERR_VALIDATION', err.message);
  if (err.statusCode === 415) return new ImmuneError('IMM_ERR_UNSUPPORTED_MEDIA', err.message);
  if (err.statusCode === 413) return new ImmuneError('IMM_ERR_BODY_TOO_LARGE', err.message);
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return new ImmuneError('IMM_ERR_VALIDATION', err.message);
  return new ImmuneError('IMM_ERR_INTERNAL', 'internal error; see the server log');
}
