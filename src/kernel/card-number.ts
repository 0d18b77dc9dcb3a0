/**
 * What a card number looks like: the one rule for every place that must recognise one — the input
 * rules that refuse a card number where a token belongs (input/fields.ts), the error messages that
 * quote what a sender wrote (input/fields.ts `shown`, kernel/money.ts, input/record.ts), and the
 * log masking (infra/logger.ts).
 *
 * A card number is 12 to 19 digits (12 is the shortest PAN in use, some Maestro cards; 19 the
 * longest, ISO/IEC 7812), optionally grouped by spaces or dashes, that pass the Luhn check. A
 * digit run that fails Luhn is not a number any network would charge (nine in ten are not).
 */

/** Fewest and most digits of a card number. */
export const CARD_NUMBER_MIN_DIGITS = 12;
export const CARD_NUMBER_MAX_DIGITS = 19;

/** Digits, optionally grouped by spaces or dashes (any number of them between two digits). */
const SHAPE = String.raw`\d(?:[ -]*\d){${CARD_NUMBER_MIN_DIGITS - 1},${CARD_NUMBER_MAX_DIGITS - 1}}`;
/** The whole value is one card number (blanks around it ignored by the caller). */
const WHOLE = new RegExp(`^${SHAPE}$`);
/**
 * A card number inside text. It stands on its own: not preceded or followed by a letter or digit.
 * `_`, `.`, `@` and the like separate it like a space, so a card number used as (part of) an
 * identifier or an address is found too, while a digit run inside a word (`tok4111…`, hex) is not.
 */
const IN_TEXT = new RegExp(`(?<![A-Za-z0-9])${SHAPE}(?![A-Za-z0-9])`, 'g');
/** Longest value judged as a whole: a card number, however grouped, is far shorter. */
const WHOLE_MAX = 64;

/** The Luhn checksum every issued card number satisfies (and nine in ten other digit runs do not). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * True when the whole of `value` (blanks around it ignored) is a card number. A token that merely
 * contains one (`tok_4111…`) is not: only the whole value is judged.
 */
export function isCardNumber(value: string): boolean {
  const v = value.trim();
  return v.length <= WHOLE_MAX && WHOLE.test(v) && luhnValid(v.replace(/[ -]/g, ''));
}

/**
 * `text` with every card number in it replaced by `replacement(digits)`. Digit runs of the same
 * shape that fail the Luhn check (timestamps, ids) are left as they are.
 */
export function replaceCardNumbers(text: string, replacement: (digits: string) => string): string {
  return text.replace(IN_TEXT, (m) => {
    const digits = m.replace(/[ -]/g, '');
    return luhnValid(digits) ? replacement(digits) : m;
  });
}

/** What an error message shows instead of a card number: no digit of it. */
export const CARD_NUMBER_REMOVED = '[card number removed]';

/**
 * A value a sender wrote, fit to quote in an error message: each card number in it replaced by
 * {@link CARD_NUMBER_REMOVED}. Every message that repeats input goes through this, because a card
 * number typed into the wrong field (an amount, an email, a header) must not come back in an
 * answer, a stored batch error, a results file or a page.
 */
export function withoutCardNumbers(value: string): string {
  return replaceCardNumbers(value, () => CARD_NUMBER_REMOVED);
}

/** How deep {@link mapStrings} goes into objects and arrays. */
const MAP_DEPTH = 4;

/**
 * `value` with `fn` applied to every string in it: object values and array items, and object keys
 * too with `keys`, down to a few levels (deeper values are kept as they are). The log masking
 * (infra/logger.ts) and the API's error details (http/errors.ts) mask card numbers with it.
 */
export function mapStrings(
  value: unknown,
  fn: (s: string) => string,
  opts: { keys?: boolean } = {},
  depth = 0,
): unknown {
  if (typeof value === 'string') return fn(value);
  if (depth > MAP_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, fn, opts, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[opts.keys === true ? fn(k) : k] = mapStrings(v, fn, opts, depth + 1);
  return out;
}
