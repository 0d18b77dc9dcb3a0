/**
 * The only place the adapter reads the gateway's words to decide what an answer means
 * (docs/sayswitch-wire.md "Recognition by wording"). Sayswitch publishes no error codes and does
 * not document how it answers a duplicate reference or a lookup of an unknown one, so two failure
 * answers can only be told from the others by what they say:
 *
 * - a **duplicate reference** (a submission answered 400 / 422 / 409 / 200 `success: false`): the
 *   reference exists at the gateway, so the adapter looks it up instead of failing;
 * - a **not-found** lookup answered 200 `success: false` (a 404 with an envelope needs no words).
 *
 * Both rules are deliberately narrow: a sentence must say the duplicate (or not-found) thing AND
 * name the reference (or, for not-found, the transaction) it is about, so that "The email has
 * already been taken", "Duplicate transaction" (a velocity-check decline) or "Merchant not found"
 * stay what they were (fatal or outcome_unknown). Extend the patterns when production shows a new
 * wording, with a positive and a negative case in test/unit/gateway/wording.test.ts.
 */

/** Words saying "this value was used before". */
export const DUPLICATE_WORDING =
  /already\s+(?:been\s+)?(?:taken|exists?|used)|duplicate|not\s+unique/i;

/** The subject a duplicate sentence must name to be about our reference. */
export const REFERENCE_SUBJECT = /\bref(?:erence)?\b/i;

/** A field-error key naming the reference (`reference`, `data.reference`, `body.reference`). */
export const REFERENCE_FIELD = /(?:^|\.)reference$/i;

/** Words saying "there is no such thing". */
export const NOT_FOUND_WORDING =
  /\bnot\s+found\b|\bno\s+(?:\w+\s+){0,2}found\b|\bdoes\s*n[o']?t\s+exist\b|\bno\s+query\s+results\b/i;

/** The subject a not-found sentence must name to be about the looked-up transaction, payout or refund. */
export const LOOKUP_SUBJECT =
  /\b(?:transaction|payout|transfer|payment|charge|refund|reference|record)s?\b/i;

/** Splits free text into sentences or clauses (`;`, new lines, a full stop and a space). */
function clauses(text: string): string[] {
  return text.split(/[;\n]|(?<=\.)\s+/).filter((c) => c.trim() !== '');
}

/** Strings of a field-error value: `"msg"`, `["msg", …]`. */
function messagesOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** What a failure body says: its free texts and its per-field errors. */
interface Said {
  texts: string[];
  fields: [field: string, messages: string[]][];
}

/**
 * Reads `message`, `error` and `errors` of a failure body: strings are free text, objects are
 * field errors (`{ reference: ["The reference has already been taken."] }`, Laravel's shape),
 * arrays of strings are free text too.
 */
function said(body: unknown): Said {
  const out: Said = { texts: [], fields: [] };
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return out;
  const b = body as Record<string, unknown>;
  for (const key of ['message', 'error', 'errors'] as const) {
    const value = b[key];
    if (typeof value === 'string' || Array.isArray(value)) {
      out.texts.push(...messagesOf(value));
    } else if (value !== null && typeof value === 'object') {
      for (const [field, v] of Object.entries(value as Record<string, unknown>)) {
        const messages = messagesOf(v);
        if (messages.length > 0) out.fields.push([field, messages]);
      }
    }
  }
  return out;
}

/**
 * Whether a failure body says the submitted reference was used before: a field error on
 * `reference` in {@link DUPLICATE_WORDING}, or a sentence of `message` / `error` / `errors` with
 * both {@link DUPLICATE_WORDING} and {@link REFERENCE_SUBJECT}.
 */
export function saysDuplicateReference(body: unknown): boolean {
  const { texts, fields } = said(body);
  for (const [field, messages] of fields) {
    if (REFERENCE_FIELD.test(field) && messages.some((m) => DUPLICATE_WORDING.test(m))) return true;
  }
  return texts.flatMap(clauses).some((c) => DUPLICATE_WORDING.test(c) && REFERENCE_SUBJECT.test(c));
}

/**
 * Whether a lookup's failure body says the reference is unknown: a sentence of `message` /
 * `error` / `errors` (a field error reads as `field: message`) with both
 * {@link NOT_FOUND_WORDING} and {@link LOOKUP_SUBJECT}.
 */
export function saysNotFound(body: unknown): boolean {
  const { texts, fields } = said(body);
  const sentences = [
    ...texts,
    ...fields.flatMap(([field, messages]) => messages.map((m) => `${field}: ${m}`)),
  ].flatMap(clauses);
  return sentences.some((c) => NOT_FOUND_WORDING.test(c) && LOOKUP_SUBJECT.test(c));
}
