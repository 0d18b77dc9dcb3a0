/**
 * The `X-Billing-Signature` header of outbound notifications: `t=<unix seconds>,v1=<hex
 * HMAC-SHA256 of "<t>.<raw body>" keyed with NOTIFY_SECRET>`. The timestamp is signed with the
 * body so a captured request cannot be replayed later than the receiver's tolerance. This file is
 * also the reference for the receiver-side snippet in docs/notifications.md.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Header name, as sent (HTTP header names are case-insensitive). */
export const SIGNATURE_HEADER = 'X-Billing-Signature';

/** How far a signature's timestamp may be from the receiver's clock, by default. */
export const DEFAULT_TOLERANCE_SEC = 300;

const HEX_SHA256 = /^[0-9a-f]{64}$/;

function hmacHex(secret: string, t: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}

/**
 * Signs a notification body. `body` must be the exact bytes sent; `nowSec` is unix seconds
 * (fractions are dropped). Returns the header value `t=…,v1=…`.
 */
export function signNotification(body: string | Buffer, secret: string, nowSec: number): string {
  const t = Math.floor(nowSec);
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
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
