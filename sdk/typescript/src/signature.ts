import { createHmac, timingSafeEqual } from 'node:crypto';

/** Headers the control plane signs control-URL directives (and webhooks) with. */
export const TIMESTAMP_HEADER = 'x-immune-timestamp';
export const SIGNATURE_HEADER = 'x-immune-signature';

type HeaderBag = Record<string, string | string[] | undefined> | { get(name: string): string | null };

function header(h: HeaderBag, name: string): string {
  const v = typeof (h as { get?: unknown }).get === 'function' ? (h as { get(n: string): string | null }).get(name) : (h as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/**
 * True when `rawBody` was signed by a control plane holding `secret`
 * (WEBHOOK_SECRET): X-Immune-Signature is `sha256=<hex HMAC-SHA256 of
 * "<timestamp>.<body>">` and X-Immune-Timestamp lies within `toleranceSeconds`
 * of now (a captured request cannot be replayed later). Verify the raw bytes
 * as received, before parsing the JSON. `headers` may be Node's
 * IncomingHttpHeaders (lower-case keys) or a fetch Headers object.
 */
export function verifySignature(secret: string, rawBody: string | Uint8Array, headers: HeaderBag, options: { nowSeconds?: number; toleranceSeconds?: number } = {}): boolean {
  if (secret === '') return false;
  const ts = header(headers, TIMESTAMP_HEADER);
  const sig = header(headers, SIGNATURE_HEADER);
  const t = Number(ts);
  if (ts === '' || !Number.isInteger(t)) return false;
  const now = options.nowSeconds ?? Date.now() / 1000;
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return false;
  const body = typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8');
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`);
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
