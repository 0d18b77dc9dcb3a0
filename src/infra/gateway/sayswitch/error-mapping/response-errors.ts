/**
 * Responses mapped to an error kind: first by HTTP status and envelope ({@link classifyResponse}),
 * then, once the body is parsed, the answers the adapter cannot use (wrong shape, another
 * reference, an unresolved duplicate). One half of the error mapping; the other half,
 * transport-errors.ts, reads failures with no response. Decisions use statuses and parsed fields;
 * the gateway's words are read only through wording.ts (a duplicate reference, a 200 not-found).
 * Error messages are fixed text plus the endpoint, never the body.
 */
import {
  BillingError,
  FatalError,
  OutcomeUnknownError,
  UnreadableAnswerError,
  RateLimitedError,
} from '../../../../kernel/errors.ts';
import { envelopeMessage, envelopeOk } from '../schemas.ts';
import { TransportFault, type CallContext } from './call-context.ts';
import { saysDuplicateReference, saysNotFound } from './wording.ts';

/** Default wait after a 429 without a usable `Retry-After`. */
export const DEFAULT_RETRY_AFTER_MS = 1000;

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
type ResponseClass =
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
  return new UnreadableAnswerError(
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
 * lookup calls, fatal for reads; except a submission's that says the reference is a duplicate →
 * duplicate, and a lookup's that says the reference is unknown → not_found, both by wording.ts);
 * 429 → rate_limited; 5xx and 408 → outcome_unknown; 409 on a submission → duplicate, and so is a
 * 400 or 422 whose body says the reference is a duplicate (wording.ts); 404 on a lookup →
 * not_found (only when the body is a gateway envelope: a bare 404 from a proxy or a wrong path
 * must not read as "never sent"); 422 naming the reference → declined; 401/403 → fatal with
 * authFailure; a 3xx on a submission → outcome_unknown; any other 3xx or 4xx on a lookup →
 * unreadable (a check that learned nothing); other 4xx and 3xx → fatal. An unreadable body is
 * outcome_unknown wherever the body matters.
 */
export function classifyResponse(
  status: number,
  headers: Readonly<Record<string, unknown>>,
  decoded: DecodedBody,
  ctx: CallContext,
  nowMs: number = Date.now(),
): ResponseClass {
  // Built only on the paths that return an error: an Error captures a stack, which showed up in
  // the throughput profile when every 2xx built one.
  const fault = () => new TransportFault(`http_${status}`, status);
  if (status === 429) {
    const retryAfterMs = parseRetryAfterMs(headers['retry-after'], nowMs);
    return {
      type: 'error',
      error: new RateLimitedError(
        `rate limited by ${ctx.endpoint}; retry after ${retryAfterMs} ms`,
        retryAfterMs,
        fault(),
      ),
    };
  }
  if (status >= 500 || status === 408) {
    return {
      type: 'error',
      error: new OutcomeUnknownError(
        `${ctx.endpoint} answered HTTP ${status}; the outcome is unknown`,
        status === 408 ? 'timeout' : 'server_error',
        fault(),
      ),
    };
  }
  if (status === 401 || status === 403) {
    return {
      type: 'error',
      error: new FatalError(
        `${ctx.endpoint} refused the credentials (HTTP ${status}); check the secret key`,
        status === 401 ? 'unauthorized' : 'forbidden',
        { authFailure: true, cause: fault() },
      ),
    };
  }
  if (status >= 200 && status < 300) {
    if (!decoded.ok) return { type: 'error', error: unreadable(decoded.reason, status, ctx) };
    if (envelopeOk(decoded.body) === false) {
      // A failure envelope with HTTP 200: two are answers, recognised by their words only.
      if (ctx.operation === 'submission' && saysDuplicateReference(decoded.body)) {
        return { type: 'duplicate' };
      }
      if (ctx.operation === 'lookup' && saysNotFound(decoded.body)) return { type: 'not_found' };
      const error =
        ctx.operation === 'read'
          ? new FatalError(`${ctx.endpoint} refused the request`, 'gateway_refused', {
              cause: fault(),
            })
          : new UnreadableAnswerError(
              `${ctx.endpoint} answered HTTP ${status} with a failure envelope`,
              'unrecognised_response',
              fault(),
            );
      return { type: 'error', error };
    }
    return { type: 'ok', body: decoded.body };
  }
  if (status === 409 && ctx.operation === 'submission') return { type: 'duplicate' };
  if (
    (status === 400 || status === 422) &&
    ctx.operation === 'submission' &&
    decoded.ok &&
    saysDuplicateReference(decoded.body)
  ) {
    // Before the 422 decline: a duplicate names the reference too, and is no decline.
    return { type: 'duplicate' };
  }
  if (status === 404 && ctx.operation === 'lookup') {
    if (!decoded.ok) return { type: 'error', error: unreadable(decoded.reason, status, ctx) };
    if (envelopeOk(decoded.body) !== false) {
      return {
        type: 'error',
        error: new UnreadableAnswerError(
          `${ctx.endpoint} answered HTTP 404 without a gateway envelope; is the path configured right?`,
          'unrecognised_not_found',
          fault(),
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
  if (ctx.operation === 'lookup') {
    // A lookup refused or redirected (400, 405, 409, 415, 422, any 3xx …) says nothing about the
    // payment: a check that learned nothing, counted against the schedule (payments/reconcile.ts),
    // so a payment whose lookups keep being refused ends in needs_review. As fatal, each check's
    // job failed and the sweep enqueued another, and the payment stayed unknown for good.
    // Credentials (401/403, above) stay fatal: the queues pause and the alert names the key.
    return {
      type: 'error',
      error: new UnreadableAnswerError(
        `${ctx.endpoint} answered HTTP ${status}, which says nothing about the payment`,
        refusalCode(status),
        fault(),
      ),
    };
  }
  if (status >= 300 && status < 400 && ctx.operation === 'submission') {
    // A redirect is no refusal: 303 See Other is HTTP's "processed, the result is over there",
    // and a front end's 301/302 may sit behind a backend that already acted. Not followed (a
    // redirected POST could be replayed elsewhere), and not fatal either: a fatal first
    // submission is `failed` (payments/resubmission.ts), which would be a failure inferred.
    return {
      type: 'error',
      error: new OutcomeUnknownError(
        `${ctx.endpoint} answered a redirect (HTTP ${status}); the outcome is unknown`,
        'unexpected_redirect',
        fault(),
      ),
    };
  }
  return {
    type: 'error',
    error: new FatalError(
      `${ctx.endpoint} refused the request (HTTP ${status})`,
      refusalCode(status),
      { cause: fault() },
    ),
  };
}

/** The code of a 3xx or 4xx the contract has no other reading for. */
function refusalCode(status: number): string {
  return (
    FATAL_STATUS_CODES[status] ??
    (status >= 300 && status < 400 ? 'unexpected_redirect' : `http_${status}`)
  );
}

/** A 2xx body that did not match the endpoint's schema: we cannot tell what happened. */
export function unexpectedBodyError(status: number, ctx: CallContext): BillingError {
  return new UnreadableAnswerError(
    `${ctx.endpoint} answered HTTP ${status} with a body of unexpected shape; the outcome is unknown`,
    'unexpected_body',
    new TransportFault('unexpected_body', status),
  );
}

/**
 * A parsed answer about another reference than the one asked for: it says nothing about ours, so
 * our outcome is unknown. `endpoint` is the path template.
 */
export function referenceMismatchError(endpoint: string): BillingError {
  return new UnreadableAnswerError(
    `${endpoint} answered about a different reference`,
    'reference_mismatch',
  );
}

/** The stable code of {@link DuplicateReferenceUnresolvedError}. */
export const DUPLICATE_REFERENCE_UNRESOLVED = 'duplicate_reference_unresolved';

/**
 * A submission answered "duplicate reference" (any shape: 409, 400/422 or 200 `success: false`
 * in the duplicate wording) whose lookup then found nothing (the read side lags) or gave no
 * answer: whether money moved is unknown (outcome_unknown), but the reference EXISTS at the
 * gateway. `referenceExists: true` (and the code `duplicate_reference_unresolved`, thrown for
 * nothing else) says so, so that a later `not_found` from a lookup of this reference is never
 * read as "never sent" (docs/sayswitch-wire.md "Duplicate reference").
 */
export class DuplicateReferenceUnresolvedError extends OutcomeUnknownError {
  /** The gateway said it has this reference: never resubmit it as unsent. */
  readonly referenceExists = true as const;

  constructor(cause?: unknown) {
    super(
      'the gateway refused the reference as a duplicate but its lookup does not show it',
      DUPLICATE_REFERENCE_UNRESOLVED,
      cause,
    );
    this.name = 'DuplicateReferenceUnresolvedError';
  }
}

/**
 * Whether `err` says the reference exists at the gateway (a {@link DuplicateReferenceUnresolvedError},
 * or anything carrying `referenceExists: true`). Read structurally, so a caller needs no import.
 */
export function referenceExistsAtGateway(err: unknown): boolean {
  return (
    err !== null &&
    typeof err === 'object' &&
    (err as { referenceExists?: unknown }).referenceExists === true
  );
}

/** A duplicate whose lookup found nothing: the gateway has the reference and does not show it. */
export function duplicateUnresolvedError(): BillingError {
  return new DuplicateReferenceUnresolvedError();
}

/**
 * What a duplicate's lookup throwing `err` means for the submission: the reference is known to
 * exist, so whatever the lookup's failure (a 5xx, a timeout, an answer about another reference, a
 * rate limit, a refusal), the submission's outcome is unknown and must be verified, never failed
 * or resubmitted as unsent: {@link DuplicateReferenceUnresolvedError} with `err` as its cause.
 * Only a refusal of our credentials (401/403) passes through, so the queue is paused as for any
 * call.
 */
export function duplicateLookupError(err: unknown): unknown {
  if (err instanceof BillingError && err.authFailure) return err;
  return new DuplicateReferenceUnresolvedError(err);
}

/**
 * A lookup or read whose response classified as something other than an answer (a duplicate or a
 * decline, which {@link classifyResponse} gives only for submissions). `call` names the call and
 * its path template, e.g. `verify /api/v1/transaction/verify/{reference}`.
 */
export function noAnswerError(call: string): BillingError {
  return new UnreadableAnswerError(`${call} gave no answer`, 'unexpected_body');
}

/**
 * A submission answered "not found", which {@link classifyResponse} gives only for lookups: kept
 * so that an unexpected result can never read as "nothing happened".
 */
export function submissionNotFoundError(what: 'charge' | 'payout'): BillingError {
  return new OutcomeUnknownError(
    `${what} answered not found; the outcome is unknown`,
    'unexpected_body',
  );
}
