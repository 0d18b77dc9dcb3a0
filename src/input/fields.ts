/**
 * Field schemas shared by every input (batch files, `POST /payments`, subscription import and
 * `POST /subscriptions`), whatever the source: a CSV cell or a JSON string. Each schema takes the
 * raw string of one field, or `undefined` when it is blank or absent, so that "is required" is
 * reported for both. Messages name the field and never quote a `card_token` value: card data must
 * not reach logs or error reports. A message that quotes any other value does so through
 * {@link shown}, which removes a card number typed into the wrong field.
 *
 * The record parser (`record.ts`) decides which fields a record has and how its source words a
 * problem; these schemas only say what one value may be.
 */
import { z } from 'zod';
import { parseMajorAmount, type AmountMinor } from '../kernel/money.ts';
import { idComponentSchema } from '../kernel/ids.ts';
import { isCardNumber, withoutCardNumbers } from '../kernel/card-number.ts';

/** Whether a value is a card number: the test behind the card_token refusal below. */
export { isCardNumber };

/** Merchant fields (`meta_region`) carry this prefix, matched case-insensitively; the part after it
 * is the meta key, kept as written. */
export const META_PREFIX = 'meta_';
/** A meta key is a short label: it becomes a results-file column and a metadata key. */
export const META_KEY_MAX = 64;
/** Longest meta value, in characters. */
export const META_VALUE_MAX = 1024;
/** Longest email address (RFC 5321 path limit). */
export const EMAIL_MAX = 254;
/** Longest card token: Sayswitch's encrypted card string is far shorter. */
export const CARD_TOKEN_MAX = 4096;

const META_KEY = /^[A-Za-z0-9_-]+$/;
/** No line break, tab or other control character. */
export const NO_CONTROL = /^\P{Cc}*$/u;

/**
 * A value as a message quotes it: the string with any card number in it replaced by
 * `[card number removed]` (kernel/card-number.ts), so that a card number sent as an amount, an
 * email, a currency or a header is never echoed. Inputs are strings here; anything else is a
 * programming error, named by its type. Every message that repeats what a sender wrote uses this.
 */
export function shown(input: unknown): string {
  return typeof input === 'string' ? withoutCardNumbers(input) : typeof input;
}

/** Why free text is refused for a control character (textSchema, and schemas that trim first). */
export const controlCharacterMessage = (field: string) =>
  `${field} contains a line break, tab or other control character`;

/** Free text on one line: a narration, a bank or account name. */
export function textSchema(field: string) {
  return z
    .string({ error: `${field} is required` })
    .regex(NO_CONTROL, controlCharacterMessage(field));
}

/** An id that becomes part of an intent key: a row reference, a subscription id. */
export function idSchema(field: string, max: number) {
  return z.string({ error: `${field} is required` }).pipe(idComponentSchema(field, max));
}

/** An email address (`email` of a charge, `customer_email` of a subscription). */
export function emailSchema(field: string) {
  return z
    .email({
      error: (iss) =>
        iss.input === undefined
          ? `${field} is required`
          : `${field} "${shown(iss.input)}" is not valid`,
    })
    .max(EMAIL_MAX, `${field} is longer than ${EMAIL_MAX} characters`);
}

/** Why a card number is refused: names the field, never a digit of the value. */
export const CARD_NUMBER_REFUSED =
  "card_token looks like a card number: send the encrypted card string from Sayswitch's " +
  'card-encryption step, never the card number itself';

/**
 * The card string from Sayswitch's encryption step: opaque, so only its shape is checked (printable
 * ASCII without spaces, at most {@link CARD_TOKEN_MAX} characters), and its value is never repeated
 * in a message. A raw card number is refused first, so that is the problem reported for it (the
 * record parser keeps the first problem per field), even when it is written with spaces.
 */
export const cardTokenSchema = z
  .string({ error: 'card_token is required' })
  .refine((v) => !isCardNumber(v), { error: CARD_NUMBER_REFUSED })
  .regex(/^[\x21-\x7e]+$/, 'card_token must be printable ASCII without spaces')
  .max(CARD_TOKEN_MAX, `card_token is longer than ${CARD_TOKEN_MAX} characters`);

/** Major-unit decimal string → minor units, through the one money parser. */
export const amountSchema = z
  .string({ error: 'amount is required' })
  .transform((input, ctx): AmountMinor => {
    const parsed = parseMajorAmount(input);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.error });
      return z.NEVER;
    }
    return parsed.amount;
  });

/**
 * One of `allowed`. `usedFor` ("charges", "payouts") is named in the message when the same
 * record kind could take other currencies in another role.
 */
export function currencySchema<const C extends readonly [string, ...string[]]>(
  allowed: C,
  usedFor?: string,
) {
  const where = usedFor === undefined ? '' : ` for ${usedFor}`;
  return z.enum(allowed, {
    error: (iss) =>
      iss.input === undefined
        ? 'currency is required'
        : `currency "${shown(iss.input)}" is not allowed${where} (use ${allowed.join(', ')})`,
  });
}

/** How a source calls a field in messages: a CSV column or a JSON field. */
export type FieldNoun = 'column' | 'field';

/**
 * Why `key` (the part of `name` after {@link META_PREFIX}) cannot be a meta key, or undefined
 * when it can: 1 to {@link META_KEY_MAX} of letters, digits, `_` and `-`, and not `__proto__`,
 * which would set the prototype of a metadata object instead of a value.
 */
export function metaKeyProblem(noun: FieldNoun, name: string, key: string): string | undefined {
  const quoted = `${noun} "${shown(name)}"`;
  if (key === '') return `${quoted} needs a name after "${META_PREFIX}"`;
  if (key === '__proto__') return `${quoted} is a reserved name`;
  if (key.length > META_KEY_MAX) {
    return `${quoted} is longer than ${META_KEY_MAX} characters after "${META_PREFIX}"`;
  }
  if (!META_KEY.test(key)) {
    return `${quoted} may contain only letters, digits, "_" and "-" after "${META_PREFIX}"`;
  }
  return undefined;
}

/** Why a meta value (any text) is refused, or undefined. */
export function metaValueProblem(key: string, value: string): string | undefined {
  return value.length > META_VALUE_MAX
    ? `${META_PREFIX}${key} is longer than ${META_VALUE_MAX} characters`
    : undefined;
}
