import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ImmuneError } from '../../domain/errors.js';
import { toImmuneError } from '../../server/error-reply.js';
import { contentCodingOf, encodingOf } from './decode-request.js';
import { encodeExportResponse, encodeRpcStatus } from './export-response.js';
import type { OtlpTraceReceiver } from './trace-receiver.js';

export interface OtlpTraceRoutesOptions {
  receiver: OtlpTraceReceiver;
  /** Checks the caller (the ingest X-API-KEY); throws an ImmuneError (401) to refuse. Runs before the body is read. */
  authenticate: (request: FastifyRequest) => void | Promise<void>;
  /** Largest request body as sent (gzip-compressed or not), bytes. Default 4 MiB. */
  bodyLimitBytes?: number;
}

export const OTLP_TRACES_PATH = '/v1/traces';
/** A refused request with a body up to this size keeps its connection (see the onRequest hook). */
const DRAIN_REFUSED_BYTES = 64 * 1024;

/**
 * The OTLP/HTTP trace receiver as a fastify plugin: POST /v1/traces with
 * application/x-protobuf or application/json bodies, optionally gzip-encoded.
 * Register it, don't call it: `app.register(otlpTraceRoutes({ receiver, authenticate }))`,
 * so its raw-body parsers and its OTLP-shaped error responses stay inside its own scope.
 */
export function otlpTraceRoutes(opts: OtlpTraceRoutesOptions): FastifyPluginAsync {
  const bodyLimit = opts.bodyLimitBytes ?? 4 * 1024 * 1024;
  return async function otlpTraces(app: FastifyInstance): Promise<void> {
    // The body is decoded by the receiver (protobuf, JSON, gzip), so every content type arrives as raw bytes.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

    app.setErrorHandler((err: FastifyError | ImmuneError, req, reply) => {
      const e = toImmuneError(err);
      if (e.status >= 500) req.log.error({ err, reqId: req.id }, 'otlp: request failed');
      return sendError(e, req, reply);
    });

    app.addHook('onRequest', async (req, reply) => {
      try {
        await opts.authenticate(req);
        // Checked before the body is read, so a wrong media type or coding costs nothing.
        encodingOf(req.headers['content-type']);
        const coding = req.headers['content-encoding'];
        contentCodingOf(typeof coding === 'string' ? coding : undefined);
      } catch (e) {
        // Refused before the body is read. A small one is read and discarded by Node after the reply,
        // so an exporter still writing it gets this answer and not EPIPE from a closed socket (an
        // OpenTelemetry SDK then reports 401, not 'write EPIPE'). A large or unknown one is not worth
        // reading: the connection closes (left open, its socket held the server's close() for
        // fastify's 72 s keepAliveTimeout).
        const length = Number(req.headers['content-length'] ?? NaN);
        if (!(length <= DRAIN_REFUSED_BYTES)) reply.header('connection', 'close');
        throw e;
      }
    });

    // OpenAPI description only (the body is bytes, validated by the decoders). The host's
    // OpenAPI components must declare the `ingestKey` scheme, as src/server/app.ts does.
    const schema: Record<string, unknown> = { tags: ['ingest'], summary: 'OTLP/HTTP trace export (OpenTelemetry GenAI spans → vitals); see docs/OTLP.md', security: [{ ingestKey: [] }] };
    app.post(OTLP_TRACES_PATH, { bodyLimit, schema }, async (req, reply) => {
      const encoding = encodingOf(req.headers['content-type']);
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const encodingHeader = req.headers['content-encoding'];
      const outcome = await opts.receiver.receiveBody(body, encoding, typeof encodingHeader === 'string' ? encodingHeader : undefined);
      const partial = outcome.rejectedSpans > 0 ? { rejectedSpans: outcome.rejectedSpans, errorMessage: outcome.errorMessage } : undefined;
      const res = encodeExportResponse(encoding, partial);
      return reply.code(200).type(res.contentType).send(res.body);
    });
  };
}

function protobufClient(req: FastifyRequest): boolean {
  try {
    return encodingOf(req.headers['content-type']) === 'protobuf';
  } catch {
    return false;
  }
}

/**
 * OTLP/HTTP wants a google.rpc.Status body on errors to protobuf clients; JSON
 * clients get the product's usual {ok:false, error, code}.
 */
function sendError(e: ImmuneError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.code(e.status);
  if (protobufClient(req)) return reply.type('application/x-protobuf').send(encodeRpcStatus(e.status, `${e.code}: ${e.message}`));
  return reply.type('application/json').send(e.toJSON());
}
