/**
 * Every error a caller can see has a stable code, a message and an HTTP status.
 * The table is the single source: docs/ERRORS.md is checked against it by a test.
 */
export const ERROR_CODES = {
  IMM_ERR_VALIDATION: { status: 400, summary: 'A field is missing, has the wrong type or is out of range.' },
  IMM_ERR_MALFORMED_JSON: { status: 400, summary: 'The body is not valid JSON (or NDJSON).' },
  IMM_ERR_BODY_TOO_LARGE: { status: 413, summary: 'The body exceeds the configured size limit.' },
  IMM_ERR_UNSUPPORTED_MEDIA: { status: 415, summary: 'The Content-Type is not accepted on this route.' },
  IMM_ERR_UNAUTHORIZED: { status: 401, summary: 'The credential is missing or wrong.' },
  IMM_ERR_FORBIDDEN: { status: 403, summary: 'The credential is valid but may not do this (read-only viewer, or CSRF check failed).' },
  IMM_ERR_UNKNOWN_AGENT: { status: 404, summary: 'No agent with this id is known.' },
  IMM_ERR_NOT_FOUND: { status: 404, summary: 'No such resource.' },
  IMM_ERR_NOT_PENDING: { status: 409, summary: 'The agent is not awaiting approval.' },
  IMM_ERR_NOT_REJECTED: { status: 409, summary: 'The agent is not in the rejected list.' },
  IMM_ERR_ILLEGAL_TRANSITION: { status: 409, summary: 'The lifecycle does not allow this change from the agent\'s current state.' },
  IMM_ERR_TIMESTAMP_RANGE: { status: 422, summary: 'The timestamp is too far in the past or in the future.' },
  IMM_ERR_CONFIG: { status: 500, summary: 'A setting is invalid; the process refuses to start.' },
  IMM_ERR_STORE_UNAVAILABLE: { status: 503, summary: 'The store cannot be reached right now.' },
  IMM_ERR_INTERNAL: { status: 500, summary: 'An unexpected error; it is logged with the request id.' },
} as const satisfies Record<string, { status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 500 | 503; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
export type ErrorStatus = (typeof ERROR_CODES)[ErrorCode]['status'];

/** An error a request or a command can fail with; rendered as {ok:false, error, code, ...details}. */
export class ImmuneError extends Error {
  readonly code: ErrorCode;
  readonly status: ErrorStatus;
  readonly details: Record<string, unknown>;
  /** True when retrying the same operation later may succeed (store outages). */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ImmuneError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = details;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): Record<string, unknown> {
    return { ok: false, error: this.message, code: this.code, ...this.details };
  }
}

export function isImmuneError(e: unknown): e is ImmuneError {
  return e instanceof ImmuneError;
}
