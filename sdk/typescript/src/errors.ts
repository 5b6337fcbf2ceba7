/** What went wrong, so an on_error handler can tell a rejected batch from an outage. */
export type SdkErrorKind =
  /** report() was given a value the control plane would refuse; the record was not queued. */
  | 'invalid'
  /** The control plane refused records (4xx other than 429); they were dropped because resending cannot help. */
  | 'rejected'
  /** The buffer was full and the oldest records were dropped. */
  | 'overflow'
  /** The control plane could not be reached or answered 5xx/429; the records stay queued and are retried. */
  | 'unavailable'
  /** A directive acknowledgement could not be delivered or was refused (e.g. the directive is no longer pending). */
  | 'ack'
  /** The on_directive handler threw; the directive was acknowledged as not applied. */
  | 'directive'
  /** Reports after close() are not sent. */
  | 'closed';

/** Every error the SDK hands to on_error. */
export class ImmuneSdkError extends Error {
  readonly kind: SdkErrorKind;
  /** HTTP status of the answer that caused it, when there was one. */
  readonly status?: number;
  /** The control plane's error code (IMM_ERR_…), when it sent one. */
  readonly code?: string;
  /** Records affected (dropped or kept for retry). */
  readonly records: number;

  constructor(kind: SdkErrorKind, message: string, extra: { status?: number; code?: string; records?: number; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'ImmuneSdkError';
    this.kind = kind;
    this.status = extra.status;
    this.code = extra.code;
    this.records = extra.records ?? 0;
  }
}

/** Thrown by guard() while the control plane holds the agent contained, so an agent loop can stop itself. */
export class QuarantinedError extends Error {
  readonly agentId: string;
  readonly status: string;

  constructor(agentId: string, status: string) {
    super(`agent '${agentId}' is ${status} by Agent Immune: stop executing tasks until it is released or put on probation`);
    this.name = 'QuarantinedError';
    this.agentId = agentId;
    this.status = status;
  }
}
