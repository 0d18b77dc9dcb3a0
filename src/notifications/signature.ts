/**
 * Signatures of outbound notifications (docs/notifications.md).
 *
 * Standard Webhooks (https://www.standardwebhooks.com): `webhook-id` (the event id),
 * `webhook-timestamp` (unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
 * "<id>.<timestamp>.<raw body>">`), signed with the `standardwebhooks` package. The key is the
 * secret's bytes: base64-decoded for a `whsec_<base64>` NOTIFY_SECRET, else its UTF-8 bytes (whose
 * Standard Webhooks form, for receivers' libraries, is {@link standardWebhookSecret}).
 *
 * During a rotation (NOTIFY_SECRET_PREVIOUS set) every delivery is signed with both secrets, the
 * new one first: `webhook-signature: v1,<new> v1,<old>` (and two `v1=` in the legacy header). A
 * receiver accepts any signature that matches, so one holding either secret verifies it.
 *
 * Legacy, kept for one release (0.x; removed in the next): `X-Billing-Signature: t=<unix
 * seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with NOTIFY_SECRET as a string>`. This file
 * is also the reference for that header's receiver-side snippet in docs/notifications.md.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** Legacy header name, as sent (HTTP header names are case-insensitive). Deprecated. */
export const SIGNATURE_HEADER = 'X-Billing-Signature';

/** The Standard Webhooks headers, as sent. */
export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

const WHSEC = 'whsec_';

/** The signing key of a NOTIFY_SECRET: `whsec_<base64>` decoded, anything else as UTF-8 bytes. */
export function notifySigningKey(secret: string): Buffer {
  return secret.startsWith(WHSEC)
    ? Buffer.from(secret.slice(WHSEC.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

/**
 * The `whsec_<base64>` form of a NOTIFY_SECRET, what a receiver passes to a Standard Webhooks
 * library (`new Webhook(secret)`); a secret already in that form is returned as it is.
 */
export function standardWebhookSecret(secret: string): string {
  return secret.startsWith(WHSEC)
    ? secret
    : `${WHSEC}${Buffer.from(secret, 'utf8').toString('base64')}`;
}

/** Signs notifications per Standard Webhooks with one secret, or two during a rotation. */
export interface StandardWebhookSigner {
  /** The three headers for `body` (the exact bytes sent), message `id`, at `nowSec` (unix seconds). */
  headers(id: string, body: string, nowSec: number): Record<string, string>;
}

/**
 * `secret` is NOTIFY_SECRET; `previous`, NOTIFY_SECRET_PREVIOUS when set: each signature is the
 * package's own (`Webhook.sign`), space-separated as the specification lists several.
 */
export function standardWebhookSigner(secret: string, previous?: string): StandardWebhookSigner {
  const webhooks = [secret, ...(previous === undefined ? [] : [previous])].map(
    (s) => new Webhook(notifySigningKey(s), { format: 'raw' }),
  );
  return {
    headers(id, body, nowSec) {
      const t = Math.floor(nowSec);
      const at = new Date(t * 1000);
      return {
        [WEBHOOK_ID_HEADER]: id,
        [WEBHOOK_TIMESTAMP_HEADER]: String(t),
        [WEBHOOK_SIGNATURE_HEADER]: webhooks.map((w) => w.sign(id, at, body)).join(' '),
      };
    },
  };
}

/** How far a signature's timestamp may be from the receiver's clock, by default. */
export const DEFAULT_TOLERANCE_SEC = 300;

const HEX_SHA256 = /^[0-9a-f]{64}$/;

function hmacHex(secret: string, t: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}

/**
 * Signs a notification body for the legacy header. `body` must be the exact bytes sent; `nowSec`
 * is unix seconds (fractions are dropped). Returns the header value `t=…,v1=…`, with a second
 * `v1=` keyed with `previous` (NOTIFY_SECRET_PREVIOUS) when given.
 */
export function signNotification(
  body: string | Buffer,
  secret: string,
  nowSec: number,
  previous?: string,
): string {
  const t = Math.floor(nowSec);
  const old = previous === undefined ? '' : `,v1=${hmacHex(previous, t, body)}`;
  return `t=${t},v1=${hmacHex(secret, t, body)}${old}`;
}

export interface VerifyOptions {
  /** Largest accepted distance between the header's `t` and `nowSec`, either way. Default 300. */
  toleranceSec?: number;
  /** The receiver's clock, unix seconds. */
  nowSec: number;
}

/**
 * Verifies a notification as a receiver would: the header parses, its timestamp is within the
 * tolerance, and one of its `v1` signatures matches the HMAC of `"<t>.<rawBody>"` (compared in
 * constant time). `rawBody` must be the body as received, before any JSON parsing. Several `v1`
 * entries are accepted so a sender may sign with an old and a new secret during a rotation.
 */
export function verifyNotification(
  rawBody: string | Buffer,
  header: string | undefined,
  secret: string,
  opts: VerifyOptions,
): boolean {
  if (header === undefined || header === '' || secret === '') return false;
  let t: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (name === 'v1' && HEX_SHA256.test(value)) candidates.push(value);
  }
  if (t === undefined || candidates.length === 0) return false;
  const tolerance = opts.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  if (Math.abs(opts.nowSec - t) > tolerance) return false;

  const expected = Buffer.from(hmacHex(secret, t, rawBody), 'hex');
  let ok = false;
  // Every candidate is compared, so timing does not reveal which one (if any) matched.
  for (const c of candidates) {
    if (timingSafeEqual(expected, Buffer.from(c, 'hex'))) ok = true;
  }
  return ok;
}
