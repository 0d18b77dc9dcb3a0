/**
 * Error kinds of docs/product.md §5. A gateway outcome becomes exactly one of these kinds in
 * `infra/gateway/sayswitch/error-mapping/`; exactly one wrapper (`infra/queues/processor.ts`) turns kinds into
 * BullMQ behaviour. Business outcomes (a decline) are results, never errors.
 */
export type ErrorKind = 'retryable' | 'outcome_unknown' | 'rate_limited' | 'fatal';

export interface BillingErrorOptions {
  kind: ErrorKind;
  code: string;
  retryAfterMs?: number;
  /** 401/403: the merchant's credentials are wrong; pause the queue rather than burn every job. */
  authFailure?: boolean;
  cause?: unknown;
}

/** Base error: stable `code`, a `kind`, never a secret or card data in `message`. */
export class BillingError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly retryAfterMs: number | undefined;
  readonly authFailure: boolean;

  constructor(message: string, opts: BillingErrorOptions) {
    super(message, { cause: opts.cause });
    this.name = 'BillingError';
    this.kind = opts.kind;
    this.code = opts.code;
    this.retryAfterMs = opts.retryAfterMs;
    this.authFailure = opts.authFailure ?? false;
  }
}

/** Provably unsent (connection refused, DNS): safe to retry with the same reference. */
export class RetryableError extends BillingError {
  constructor(message: string, code: string, cause?: unknown) {
    super(message, { kind: 'retryable', code, cause });
    this.name = 'RetryableError';
  }
}

/** The request may have reached the gateway: money may have moved. Verify before anything else. */
export class OutcomeUnknownError extends BillingError {
  constructor(message: string, code: string, cause?: unknown) {
    super(message, { kind: 'outcome_unknown', code, cause });
    this.name = 'OutcomeUnknownError';
  }
}

/**
 * The gateway answered, in a form we cannot read: a 2xx body that does not decrypt, parse or match
 * the schema, an answer about another reference, a failure envelope or a 404 we do not recognise.
 * Outcome unknown like any other; and asking again later is a check that learned nothing final,
 * not a gateway we could not reach (reconcile.ts counts it against the check schedule, so an
 * answer that stays unreadable ends in `needs_review`, not in endless retries).
 */
export class UnreadableAnswerError extends OutcomeUnknownError {
  constructor(message: string, code: string, cause?: unknown) {
    super(message, code, cause);
    this.name = 'UnreadableAnswerError';
  }
}

/** 429: the gateway did not process the request; wait `retryAfterMs`. */
export class RateLimitedError extends BillingError {
  constructor(message: string, retryAfterMs: number, cause?: unknown) {
    super(message, { kind: 'rate_limited', code: 'rate_limited', retryAfterMs, cause });
    this.name = 'RateLimitedError';
  }
}

/** Configuration or validation error: retrying cannot help. */
export class FatalError extends BillingError {
  constructor(
    message: string,
    code: string,
    opts: { authFailure?: boolean; cause?: unknown } = {},
  ) {
    super(message, {
      kind: 'fatal',
      code,
      authFailure: opts.authFailure ?? false,
      cause: opts.cause,
    });
    this.name = 'FatalError';
  }
}

/** Payload decryption or parsing failed: typed, never a half-parsed object. */
export class CryptoError extends Error {
  readonly code: string;
  constructor(message: string, code = 'crypto_error', cause?: unknown) {
    super(message, { cause });
    this.name = 'CryptoError';
    this.code = code;
  }
}

/** The kinds of stored record a loop may find it cannot read ({@link UnreadableRecordError}). */
export type RecordKind = 'intent' | 'subscription' | 'batch' | 'held row' | 'test clock';

/**
 * A stored record this code cannot read: written by another version, hand-edited, half-written,
 * or with values the code cannot compute with. Loops that walk records (the subscription tick,
 * the reconcile sweep, the lists, a test clock's advance) skip it, log it by `id` with `why`, and
 * go on with the others; the passes of the CLI (`billing keys reseal`, `billing payments
 * reindex`) count and name it instead. The record is left as it is for an operator. `why` names
 * what is wrong (not JSON, which fields), never a stored value: the record may hold a card token.
 */
export class UnreadableRecordError extends Error {
  constructor(
    readonly kind: RecordKind,
    readonly id: string,
    readonly why: string,
  ) {
    super(`${kind} ${id} cannot be read: ${why}`);
    this.name = 'UnreadableRecordError';
  }

  /** The error `err` thrown while reading record `id`, with what is wrong and no stored value. */
  static of(kind: RecordKind, id: string, err: unknown): UnreadableRecordError {
    return new UnreadableRecordError(kind, id, whyUnreadable(err));
  }
}

/**
 * What `read` returns, or the UnreadableRecordError it threw in its place (any other error is
 * thrown): for a read of many records that must not fail the others (`readMany`).
 */
export function unreadableInPlace<T>(read: () => T): T | UnreadableRecordError {
  try {
    return read();
  } catch (err) {
    if (err instanceof UnreadableRecordError) return err;
    throw err;
  }
}

/** As {@link unreadableInPlace}, for a read that answers a promise. */
export function settleUnreadable<T>(read: Promise<T>): Promise<T | UnreadableRecordError> {
  return read.catch((err: unknown) => {
    if (err instanceof UnreadableRecordError) return err;
    throw err;
  });
}

/** `r`, or its UnreadableRecordError thrown: a `readMany` answer read as `getMany`'s. */
export function readableOrThrow<T>(r: T | UnreadableRecordError): T {
  if (r instanceof UnreadableRecordError) throw r;
  return r;
}

/**
 * The JSON object `text` stored in record `id` (its `field`, when given), for a pass that only
 * needs its JSON (`billing keys reseal` rewrites one value and keeps the rest as it is);
 * UnreadableRecordError when it is missing, not JSON or not an object.
 */
export function readJsonObject(
  kind: RecordKind,
  id: string,
  text: unknown,
  field?: string,
): Record<string, unknown> {
  const at = field === undefined ? '' : `${field}: `;
  if (typeof text !== 'string') return unreadable(kind, id, `${at}missing`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return unreadable(kind, id, `${at}not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return unreadable(kind, id, `${at}not a JSON object`);
  return value as Record<string, unknown>;
}

function unreadable(kind: RecordKind, id: string, why: string): never {
  throw new UnreadableRecordError(kind, id, why);
}

/** What is wrong with a record, from the error reading it threw: never the values it holds. */
function whyUnreadable(err: unknown): string {
  if (err instanceof SyntaxError) return 'not JSON';
  const issues = (err as { issues?: unknown }).issues;
  if (Array.isArray(issues)) {
    const fields = issues.map((i: { path?: unknown[]; code?: unknown }) => {
      const path = Array.isArray(i.path) && i.path.length > 0 ? i.path.join('.') : '(record)';
      return `${path}: ${String(i.code)}`;
    });
    return `invalid fields (${[...new Set(fields)].slice(0, 5).join(', ')})`;
  }
  // A RangeError of the calendar names the period or the zone, never a card.
  if (err instanceof RangeError) return err.message;
  return err instanceof Error ? err.name : 'unknown error';
}
