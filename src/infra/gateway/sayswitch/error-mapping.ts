/**
 * THE one place that turns what happened on the wire into the four error kinds of PRODUCT.md
 * section 5 (table in docs/sayswitch-wire.md "Error kinds"). Decisions use error codes and HTTP
 * statuses only, never `err.message`. Messages are built here from fixed text plus the endpoint,
 * so no secret key, card token or request body can leak into them; the cause attached is a
 * sanitised {@link TransportFault}, never the raw axios error (which carries config and headers).
 */
import {
  type BillingError,
  FatalError,
  OutcomeUnknownError,
  RateLimitedError,
  RetryableError,
} from '../../../kernel/errors.ts';
import { envelopeMessage, envelopeOk } from './schemas.ts';

/** Default wait after a 429 without a usable `Retry-After`. */
export const DEFAULT_RETRY_AFTER_MS = 1000;

/** What the call was: decides how an ambiguous answer reads. */
export type Operation =
  /** Moves money (charge, payout): ambiguity means money may have moved. */
  | 'submission'
  /** Looks a reference up (verify, payout lookup): 404 is an answer. */
  | 'lookup'
  /** Moves no money (banks, account name, wallet). */
  | 'read';

export interface CallContext {
  /** Method and path template, e.g. `POST /api/v1/bank_transfer`. Never contains a body. */
  endpoint: string;
  operation: Operation;
  /** The attempt reference for submissions and lookups. */
  reference?: string;
}

/** A cause that keeps only what is safe to log: the error code and, if any, the HTTP status. */
export class TransportFault extends Error {
  readonly code: string;
  readonly httpStatus: number | undefined;
  constructor(code: string, httpStatus?: number) {
    super(httpStatus === undefined ? code : `${code} (HTTP ${httpStatus})`);
    this.name = 'TransportFault';
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

/** Nothing left the client: no connection was ever made. */
const UNSENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EAI_FAIL',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/** The request may have been delivered and processed; only the answer is missing. */
const AMBIGUOUS_CODES = new Set([
  'ECONNABORTED', // axios timeout (without clarifyTimeoutError)
  'ETIMEDOUT', // axios timeout with clarifyTimeoutError, or a socket timeout
  'ERR_CANCELED', // aborted by our deadline signal
  'ECONNRESET',
  'EPIPE',
  'ESOCKETTIMEDOUT',
  'ERR_BAD_RESPONSE',
  'HPE_INVALID_CONSTANT',
  'HPE_INVALID_HEADER_TOKEN',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_FR_MAX_CONTENT_LENGTH_EXCEEDED',
]);

/**
 * The server refused our TLS protocol version (or offered only one we refuse): a configuration
 * problem that retrying cannot fix.
 */
const TLS_VERSION_CODES = new Set([
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_VERSION_TOO_LOW',
  'ERR_SSL_WRONG_SSL_VERSION',
  'ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY',
  'EPROTO',
]);

/** Certificate checks fail during the handshake, before the request is written. */
const TLS_HANDSHAKE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
]);

/** Misconfiguration detected by the client before anything was sent. */
const CONFIG_CODES = new Set([
  'ERR_INVALID_URL',
  'ERR_BAD_OPTION',
  'ERR_BAD_OPTION_VALUE',
  'ERR_INVALID_CHAR',
]);

function readCode(err: unknown): string | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/** axios wraps the socket error; the useful code may sit on the error or on its cause. */
function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth++) {
    const code = readCode(current);
    if (code) codes.push(code);
    const errors = (current as { errors?: unknown }).errors;
    // AggregateError (happy-eyeballs connect to several addresses) carries one error per address.
    if (Array.isArray(errors)) for (const e of errors) codes.push(...errorCodes(e));
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** What the client knows about the connection of a failed request. */
export interface TransportHints {
  /**
   * Whether the socket finished connecting (TCP, and the TLS handshake for https) before the
   * failure. The request is written only after that, so `false` proves nothing was sent.
   * Undefined when the client cannot tell.
   */
  transportReady?: boolean | undefined;
}

/**
 * Maps an error thrown by the HTTP client (no response was received) to an error kind:
 * provably unsent → retryable; maybe delivered → outcome_unknown; TLS version refusal or a
 * client-side misconfiguration → fatal. Anything unrecognised is treated as maybe delivered,
 * because that is the only safe assumption for money.
 */
export function mapTransportError(
  err: unknown,
  ctx: CallContext,
  hints: TransportHints = {},
): BillingError {
  const codes = errorCodes(err);
  const where = `${ctx.endpoint}`;
  const neverConnected = hints.transportReady === false;
  // Node reports a TLS alert during the handshake as a bare EPROTO (the reason is only in the
  // message, which we never read). Before the handshake completed it can only be the protocol
  // negotiation failing: a peer below our TLS 1.2 floor, or not speaking TLS at all. Either way a
  // configuration problem. After the handshake it is a broken stream like any other.
  const tlsVersion = codes.find(
    (c) => TLS_VERSION_CODES.has(c) && (c !== 'EPROTO' || neverConnected),
  );
  if (tlsVersion) {
    return new FatalError(
      `TLS protocol version refused talking to ${where}: TLS 1.2+ is required`,
      'tls_version',
      {
        cause: new TransportFault(tlsVersion),
      },
    );
  }
  const config = codes.find((c) => CONFIG_CODES.has(c));
  if (config) {
    return new FatalError(`request to ${where} could not be built (${config})`, 'client_config', {
      cause: new TransportFault(config),
    });
  }
  const unsent = codes.find((c) => UNSENT_CODES.has(c));
  if (unsent && hints.transportReady !== true) {
    return new RetryableError(
      `could not connect to ${where} (${unsent}); nothing was sent`,
      unsent === 'ECONNREFUSED' ? 'connection_refused' : 'dns_or_network',
      new TransportFault(unsent),
    );
  }
  const handshake = codes.find((c) => TLS_HANDSHAKE_CODES.has(c) || c.startsWith('ERR_SSL_'));
  if (handshake) {
    return new RetryableError(
      `TLS handshake with ${where} failed (${handshake}); nothing was sent`,
      'tls_handshake',
      new TransportFault(handshake),
    );
  }
  const first = codes[0] ?? 'unknown';
  if (neverConnected) {
    // A timeout or reset while still connecting or handshaking: the request never left.
    return new RetryableError(
      `connection to ${where} failed before the request was sent (${first})`,
      'connect_failed',
      new TransportFault(first),
    );
  }
  const ambiguous = codes.find((c) => AMBIGUOUS_CODES.has(c) || c === 'EPROTO');
  if (ambiguous) {
    const timeout =
      ambiguous === 'ECONNABORTED' || ambiguous === 'ETIMEDOUT' || ambiguous === 'ERR_CANCELED';
    return new OutcomeUnknownError(
      `${timeout ? 'timed out waiting for' : 'connection lost during'} ${where}; the outcome is unknown`,
      timeout ? 'timeout' : 'connection_lost',
      new TransportFault(ambiguous),
    );
  }
  return new OutcomeUnknownError(
    `request to ${where} failed (${codes[0] ?? 'no error code'}); the outcome is unknown`,
    'transport_error',
    new TransportFault(first),
  );
}

/**
 * Reads `Retry-After` (delta-seconds or an HTTP date) as milliseconds; {@link DEFAULT_RETRY_AFTER_MS}
 * when absent or unreadable.
 */
export function parseRetryAfterMs(header: unknown, nowMs: number = Date.now()): number {
  const value = Array.isArray(header) ? (header[0] as unknown) : header;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0)
    return Math.round(value * 1000);
  if (typeof value !== 'string') return DEFAULT_RETRY_AFTER_MS;
  const trimmed = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  // Only an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"); Date.parse would read "-4" as a year.
  const date = /^[A-Za-z]{3}, /.test(trimmed) ? Date.parse(trimmed) : NaN;
  if (Number.isFinite(date)) return Math.max(0, date - nowMs);
  return DEFAULT_RETRY_AFTER_MS;
}

/** The decoded response body: JSON (decrypted if need be), or why it could not be read. */
export type DecodedBody =
  { ok: true; body: unknown } | { ok: false; reason: 'undecryptable' | 'unparsable' | 'empty' };

/** What a response means, before the client reads its payload. */
export type ResponseClass =
  /** 2xx with a readable body: parse it with the endpoint's schema. */
  | { type: 'ok'; body: unknown }
  /** Lookup: the gateway has no such reference. */
  | { type: 'not_found' }
  /** Submission: the reference was used before; look it up and adopt what it says. */
  | { type: 'duplicate' }
  /** Submission: a 422 that names our reference is a decline, a result rather than an error. */
  | { type: 'declined'; message: string | undefined }
  | { type: 'error'; error: BillingError };

function bodyNamesReference(body: unknown, reference: string): boolean {
  if (body === null || typeof body !== 'object') return false;
  const b = body as Record<string, unknown>;
  if (b.reference === reference) return true;
  const data = b.data;
  if (
    data !== null &&
    typeof data === 'object' &&
    (data as Record<string, unknown>).reference === reference
  ) {
    return true;
  }
  for (const field of ['message', 'error'] as const) {
    const text = b[field];
    if (typeof text === 'string' && text.includes(reference)) return true;
  }
  return false;
}

function unreadable(
  reason: 'undecryptable' | 'unparsable' | 'empty',
  status: number,
  ctx: CallContext,
): BillingError {
  return new OutcomeUnknownError(
    `response from ${ctx.endpoint} (HTTP ${status}) was ${reason === 'undecryptable' ? 'not decryptable' : reason === 'empty' ? 'empty' : 'not parsable'}; the outcome is unknown`,
    `${reason}_body`,
    new TransportFault(`${reason}_body`, status),
  );
}

/** 4xx statuses that say "your request is wrong"; retrying the same request cannot help. */
const FATAL_STATUS_CODES: Readonly<Record<number, string>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable',
};

/**
 * Classifies an HTTP response per the wire contract:
 * 2xx → ok (a 2xx whose envelope says `false` is an error: outcome_unknown for money-moving and
 * lookup calls, fatal for reads); 429 → rate_limited; 5xx and 408 → outcome_unknown; 409 on a
 * submission → duplicate; 404 on a lookup → not_found (only when the body is a gateway envelope:
 * a bare 404 from a proxy or a wrong path must not read as "never sent"); 422 naming the reference
 * → declined; 401/403 → fatal with authFailure; other 4xx → fatal. An unreadable body is
 * outcome_unknown wherever the body matters.
 */
export function classifyResponse(
  status: number,
  headers: Readonly<Record<string, unknown>>,
  decoded: DecodedBody,
  ctx: CallContext,
  nowMs: number = Date.now(),
): ResponseClass {
  const fault = new TransportFault(`http_${status}`, status);
  if (status === 429) {
    const retryAfterMs = parseRetryAfterMs(headers['retry-after'], nowMs);
    return {
      type: 'error',
      error: new RateLimitedError(
        `rate limited by ${ctx.endpoint}; retry after ${retryAfterMs} ms`,
        retryAfterMs,
        fault,
      ),
    };
  }
  if (status >= 500 || status === 408) {
    return {
      type: 'error',
      error: new OutcomeUnknownError(
        `${ctx.endpoint} answered HTTP ${status}; the outcome is unknown`,
        status === 408 ? 'timeout' : 'server_error',
        fault,
      ),
    };
  }
  if (status === 401 || status === 403) {
    return {
      type: 'error',
      error: new FatalError(
        `${ctx.endpoint} refused the credentials (HTTP ${status}); check the secret key`,
        status === 401 ? 'unauthorized' : 'forbidden',
        { authFailure: true, cause: fault },
      ),
    };
  }
  if (status >= 200 && status < 300) {
    if (!decoded.ok) return { type: 'error', error: unreadable(decoded.reason, status, ctx) };
    if (envelopeOk(decoded.body) === false) {
      const error =
        ctx.operation === 'read'
          ? new FatalError(`${ctx.endpoint} refused the request`, 'gateway_refused', {
              cause: fault,
            })
          : new OutcomeUnknownError(
              `${ctx.endpoint} answered HTTP ${status} with a failure envelope`,
              'unrecognised_response',
              fault,
            );
      return { type: 'error', error };
    }
    return { type: 'ok', body: decoded.body };
  }
  if (status === 409 && ctx.operation === 'submission') return { type: 'duplicate' };
  if (status === 404 && ctx.operation === 'lookup') {
    if (!decoded.ok) return { type: 'error', error: unreadable(decoded.reason, status, ctx) };
    if (envelopeOk(decoded.body) !== false) {
      return {
        type: 'error',
        error: new OutcomeUnknownError(
          `${ctx.endpoint} answered HTTP 404 without a gateway envelope; is the path configured right?`,
          'unrecognised_not_found',
          fault,
        ),
      };
    }
    return { type: 'not_found' };
  }
  if (status === 422 && ctx.operation === 'submission' && ctx.reference !== undefined) {
    if (decoded.ok && bodyNamesReference(decoded.body, ctx.reference)) {
      return { type: 'declined', message: envelopeMessage(decoded.body) };
    }
  }
  const code =
    FATAL_STATUS_CODES[status] ??
    (status >= 300 && status < 400 ? 'unexpected_redirect' : `http_${status}`);
  return {
    type: 'error',
    error: new FatalError(`${ctx.endpoint} refused the request (HTTP ${status})`, code, {
      cause: fault,
    }),
  };
}

/** A 2xx body that did not match the endpoint's schema: we cannot tell what happened. */
export function unexpectedBodyError(status: number, ctx: CallContext): BillingError {
  return new OutcomeUnknownError(
    `${ctx.endpoint} answered HTTP ${status} with a body of unexpected shape; the outcome is unknown`,
    'unexpected_body',
    new TransportFault('unexpected_body', status),
  );
}
