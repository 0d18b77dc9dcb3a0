/**
 * Errors thrown by the HTTP client before any response arrived, mapped to an error kind by their
 * error codes alone (never `err.message`): axios's and Node's codes, and undici's (`UND_ERR_*`,
 * `HPE_*`) for the undici transport, to the same kinds. One half of the error mapping; the other half,
 * response-errors.ts, reads responses. Messages are fixed text plus the endpoint, so no secret
 * key, card token or request body can leak into them.
 */
import {
  type BillingError,
  FatalError,
  OutcomeUnknownError,
  RetryableError,
} from '../../../../kernel/errors.ts';
import { TransportFault, type CallContext } from './call-context.ts';

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

/** undici gave up connecting: the request, written only on a connected socket, never left. */
const CONNECT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT']);

/** Timers that ran out while waiting for the answer (ours or the client's). */
const TIMEOUT_CODES = new Set([
  'ECONNABORTED',
  'ETIMEDOUT',
  'ERR_CANCELED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_ABORTED',
]);

/** The request may have been delivered and processed; only the answer is missing. */
const AMBIGUOUS_CODES = new Set([
  // undici: its timers, a socket closed under the request, a malformed or cut response, the pool
  // closed while the request was on the wire (before it was, `transportReady: false` says so).
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_ABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_INFO',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'UND_ERR_RESPONSE',
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

/**
 * Certificate checks fail during the handshake, before the request is written. These codes arise
 * only in a handshake; any other `ERR_SSL_*` (a bad record MAC, an alert) may come at any time, so
 * it proves nothing was sent only when the client says the socket never became ready.
 */
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
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
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
interface TransportHints {
  /**
   * Whether the socket finished connecting (TCP, and the TLS handshake for https) before the
   * failure. The request is written only after that, so `false` proves nothing was sent.
   * Undefined when the client cannot tell.
   */
  transportReady?: boolean | undefined;
}

/** A TLS error of any kind: a version refusal, a handshake failure, or any OpenSSL or TLS code. */
function isTlsCode(code: string): boolean {
  return (
    TLS_VERSION_CODES.has(code) ||
    TLS_HANDSHAKE_CODES.has(code) ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_')
  );
}

/**
 * Maps an error thrown by the HTTP client (no response was received) to an error kind:
 * provably unsent → retryable; maybe delivered → outcome_unknown; TLS version refusal or a
 * client-side misconfiguration → fatal. Anything unrecognised is treated as maybe delivered,
 * because that is the only safe assumption for money. A TLS error once the socket was ready
 * (`transportReady: true`: the request may have been written) is maybe delivered whatever its
 * code, since it broke a stream that may have carried the request (a corrupted record of the
 * reply, an alert mid-stream); only before that is it a handshake or version failure.
 */
export function mapTransportError(
  err: unknown,
  ctx: CallContext,
  hints: TransportHints = {},
): BillingError {
  const codes = errorCodes(err);
  const where = `${ctx.endpoint}`;
  const neverConnected = hints.transportReady === false;
  if (hints.transportReady === true) {
    const tls = codes.find(isTlsCode);
    if (tls) {
      return new OutcomeUnknownError(
        `TLS error on the ready connection to ${where} (${tls}); the outcome is unknown`,
        'connection_lost',
        new TransportFault(tls),
      );
    }
  }
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
  const handshake = codes.find(
    (c) => TLS_HANDSHAKE_CODES.has(c) || (neverConnected && c.startsWith('ERR_SSL_')),
  );
  if (handshake) {
    return new RetryableError(
      `TLS handshake with ${where} failed (${handshake}); nothing was sent`,
      'tls_handshake',
      new TransportFault(handshake),
    );
  }
  const first = codes[0] ?? 'unknown';
  const connect = codes.find((c) => CONNECT_CODES.has(c));
  if (neverConnected || (connect && hints.transportReady !== true)) {
    // A timeout or reset while still connecting or handshaking: the request never left.
    return new RetryableError(
      `connection to ${where} failed before the request was sent (${first})`,
      'connect_failed',
      new TransportFault(first),
    );
  }
  const ambiguous = codes.find(
    (c) => AMBIGUOUS_CODES.has(c) || c === 'EPROTO' || c.startsWith('HPE_'),
  );
  if (ambiguous) {
    const timeout = TIMEOUT_CODES.has(ambiguous);
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
