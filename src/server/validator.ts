import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import { ImmuneError } from '../domain/errors.js';
import { describeSchemaError } from '../domain/vitals.js';

/**
 * Validates requests with the same TypeBox schemas that generate the OpenAPI
 * document, and fails with IMM_ERR_VALIDATION naming the field. Query strings
 * and path parameters are converted from text first ("5" → 5). Schemas marked
 * `x-handler-validates` are checked by their handler (ingest batches name the
 * failing index).
 */
export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  if ((schema as Record<string, unknown>)['x-handler-validates']) return (data: unknown) => ({ value: data });
  const check = Compile(schema);
  const convert = httpPart === 'querystring' || httpPart === 'params';
  return (data: unknown) => {
    let value = convert ? Value.Convert(schema, data) : data;
    if (value === undefined && httpPart === 'body') value = {};
    if (check.Check(value)) return { value };
    const { field, reason } = describeSchemaError(check, value);
    const where = httpPart === 'querystring' ? 'query parameter' : httpPart === 'params' ? 'path parameter' : 'field';
    return { error: new ImmuneError('IMM_ERR_VALIDATION', `${where} '${field}' ${reason}`, { field }) as unknown as Error };
  };
};
