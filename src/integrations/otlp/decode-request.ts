import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { ImmuneError } from '../../domain/errors.js';
import { decodeJsonTraceRequest } from './decode-json.js';
import { decodeProtobufTraceRequest } from './decode-protobuf.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, type DecodedTraceExport } from './otlp-types.js';

const gunzipAsync = promisify(gunzip);

export type OtlpEncoding = 'protobuf' | 'json';

/**
 * The OTLP/HTTP encoding named by a Content-Type header. application/x-protobuf is
 * what the spec and every SDK send; application/protobuf is its IANA-registered
 * spelling. Parameters (charset) are ignored. Anything else is a 415.
 */
export function encodingOf(contentType: string | undefined): OtlpEncoding {
  const mime = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (mime === 'application/x-protobuf' || mime === 'application/protobuf') return 'protobuf';
  if (mime === 'application/json') return 'json';
  throw new ImmuneError(
    'IMM_ERR_UNSUPPORTED_MEDIA',
    mime === '' ? 'Content-Type is missing; OTLP/HTTP needs application/x-protobuf or application/json' : `Content-Type '${mime}' is not accepted; use application/x-protobuf or application/json`,
    { field: 'content-type' },
  );
}

/**
 * The content coding named by a Content-Encoding header. OTLP/HTTP defines gzip
 * only; identity and a missing header mean the body is plain.
 */
export function contentCodingOf(contentEncoding: string | undefined): 'identity' | 'gzip' {
  const enc = (contentEncoding ?? '').trim().toLowerCase();
  if (enc === '' || enc === 'identity') return 'identity';
  if (enc === 'gzip' || enc === 'x-gzip') return 'gzip';
  // RFC 9110 §15.5.16: an unsupported content coding is a 415.
  throw new ImmuneError('IMM_ERR_UNSUPPORTED_MEDIA', `Content-Encoding '${enc}' is not accepted; use gzip or none`, { field: 'content-encoding' });
}

/** Undoes Content-Encoding. The inflated size is capped so a small "zip bomb" cannot allocate gigabytes. */
export async function decodeContentEncoding(body: Buffer, contentEncoding: string | undefined, maxInflatedBytes: number): Promise<Buffer> {
  if (contentCodingOf(contentEncoding) === 'identity') return body;
  try {
    return await gunzipAsync(body, { maxOutputLength: maxInflatedBytes });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ImmuneError('IMM_ERR_BODY_TOO_LARGE', `gzip body inflates to more than ${maxInflatedBytes} bytes`, { field: 'content-encoding', limit: maxInflatedBytes }, { cause: e });
    }
    throw new ImmuneError('IMM_ERR_VALIDATION', `gzip body cannot be inflated: ${(e as Error).message}`, { field: 'content-encoding' }, { cause: e });
  }
}

/** Decodes an ExportTraceServiceRequest body (already inflated) in the given encoding. */
export function decodeTraceRequest(body: Uint8Array, encoding: OtlpEncoding, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): DecodedTraceExport {
  return encoding === 'protobuf' ? decodeProtobufTraceRequest(body, limits) : decodeJsonTraceRequest(body, limits);
}
