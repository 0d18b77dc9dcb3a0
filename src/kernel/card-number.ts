/**
 * What a card number looks like, for the two places that must recognise one: the input rules that
 * refuse a card number where a token belongs (input/fields.ts) and the log masking
 * (infra/logger.ts).
 */

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
