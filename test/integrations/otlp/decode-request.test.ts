import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ImmuneError } from '../../../src/domain/errors.js';
import { decodeContentEncoding, decodeTraceRequest, encodingOf } from '../../../src/integrations/otlp/decode-request.js';
import { exportRequest } from './proto-encode.js';

async function rejects(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ImmuneError);
  expect((e as ImmuneError).code).toBe(code);
  expect((e as ImmuneError).message).toMatch(pattern);
}

describe('encodingOf', () => {
  it('maps OTLP/HTTP media types and ignores parameters and case', () => {
    expect(encodingOf('application/x-protobuf')).toBe('protobuf');
    expect(encodingOf('application/protobuf')).toBe('protobuf');
    expect(encodingOf('Application/JSON; charset=utf-8')).toBe('json');
  });

  it('refuses anything else with a 415 that says what to send', () => {
    for (const ct of ['text/plain', 'application/x-ndjson', 'application/grpc']) {
      expect(() => encodingOf(ct)).toThrow(/use application\/x-protobuf or application\/json/);
    }
    try {
      encodingOf(undefined);
    } catch (e) {
      expect((e as ImmuneError).status).toBe(415);
      expect((e as ImmuneError).message).toMatch(/Content-Type is missing/);
    }
  });
});

describe('decodeContentEncoding', () => {
  const body = Buffer.from('{"resourceSpans":[]}');

  it('passes plain bodies through and inflates gzip', async () => {
    expect(await decodeContentEncoding(body, undefined, 1024)).toBe(body);
    expect(await decodeContentEncoding(body, 'identity', 1024)).toBe(body);
    expect((await decodeContentEncoding(gzipSync(body), 'gzip', 1024)).equals(body)).toBe(true);
    expect((await decodeContentEncoding(gzipSync(body), ' GZIP ', 1024)).equals(body)).toBe(true);
  });

  it('refuses other codings (415), corrupt or truncated gzip (400) and bombs (413)', async () => {
    await rejects(decodeContentEncoding(body, 'deflate', 1024), 'IMM_ERR_UNSUPPORTED_MEDIA', /Content-Encoding 'deflate' is not accepted/);
    await rejects(decodeContentEncoding(body, 'gzip', 1024), 'IMM_ERR_VALIDATION', /gzip body cannot be inflated/);
    const gz = gzipSync(body);
    await rejects(decodeContentEncoding(gz.subarray(0, gz.length - 6), 'gzip', 1024), 'IMM_ERR_VALIDATION', /gzip body cannot be inflated/);
    await rejects(decodeContentEncoding(gzipSync(Buffer.alloc(10_000)), 'gzip', 4096), 'IMM_ERR_BODY_TOO_LARGE', /inflates to more than 4096 bytes/);
  });
});

describe('decodeTraceRequest', () => {
  it('dispatches on the encoding', () => {
    expect(decodeTraceRequest(exportRequest([{ name: 'p' }]), 'protobuf').spans[0].name).toBe('p');
    expect(() => decodeTraceRequest(exportRequest([{ name: 'p' }]), 'json')).toThrow(/not valid JSON/);
  });
});
