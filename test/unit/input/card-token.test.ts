/**
 * The card_token rule of `input/fields.ts`, shared by every input: a raw card number (12–19
 * digits, spaces or dashes between them allowed, Luhn-valid) is refused with a message that names
 * the field and carries no digit of the value; opaque tokens, including all-digit strings that
 * fail the Luhn check, are accepted. Through the record parser too: JSON and CSV alike.
 */
import { describe, expect, it } from 'vitest';
import {
  CARD_NUMBER_REFUSED,
  CARD_TOKEN_MAX,
  cardTokenSchema,
  isCardNumber,
} from '../../../src/input/fields.ts';
import { parseInstruction } from '../../../src/input/instruction-body.ts';

/** Appends the Luhn check digit to `body`. */
function withCheckDigit(body: string): string {
  for (let d = 0; d <= 9; d++) {
    const candidate = `${body}${d}`;
    let sum = 0;
    for (let i = 0; i < candidate.length; i++) {
      let n = Number(candidate[candidate.length - 1 - i]);
      if (i % 2 === 1) {
        n *= 2;
        if (n > 9) n -= 9;
      }
      sum += n;
    }
    if (sum % 10 === 0) return candidate;
  }
  throw new Error('unreachable');
}

/** A Luhn-valid number of `length` digits (a Visa-like prefix, then a pattern). */
function pan(length: number): string {
  return withCheckDigit(`4${'0123456789'.repeat(2)}`.slice(0, length - 1));
}

/** The check digit turned wrong: the same shape, Luhn-invalid. */
function notLuhn(valid: string): string {
  const last = Number(valid.at(-1));
  return `${valid.slice(0, -1)}${(last + 1) % 10}`;
}

/** `digits` in groups of four joined by `sep`. */
function grouped(digits: string, sep: string): string {
  return digits.match(/.{1,4}/g)!.join(sep);
}

function refusal(value: string): string[] {
  const r = cardTokenSchema.safeParse(value);
  if (r.success) throw new Error(`expected a refusal of a ${value.length}-character value`);
  return r.error.issues.map((i) => i.message);
}

describe('card_token: a raw card number is refused', () => {
  const lengths = [12, 13, 14, 15, 16, 17, 18, 19];

  it.each(lengths)('a Luhn-valid %i-digit number, plain, spaced or dashed', (length) => {
    const digits = pan(length);
    expect(digits).toHaveLength(length);
    for (const written of [
      digits,
      grouped(digits, ' '),
      grouped(digits, '-'),
      grouped(digits, ' - '),
      ` ${digits} `,
    ]) {
      expect(isCardNumber(written)).toBe(true);
      const messages = refusal(written);
      // The first problem (the one the record parser reports) is that it is a card number.
      expect(messages[0]).toBe(CARD_NUMBER_REFUSED);
      for (const m of messages) {
        expect(m).toMatch(/^card_token /);
        expect(m).not.toMatch(/\d/);
      }
    }
  });

  it('well-known test cards', () => {
    for (const card of [
      '4111111111111111',
      '5204 7300 0000 2449',
      '5061-0200-0000-0000-094',
      '378282246310005',
      '6011000990139424',
    ]) {
      expect(refusal(card)[0]).toBe(CARD_NUMBER_REFUSED);
    }
  });

  it('the message names the field and shows no digit, so no part of the number is echoed', () => {
    expect(CARD_NUMBER_REFUSED).toMatch(/^card_token /);
    expect(CARD_NUMBER_REFUSED).not.toMatch(/\d/);
  });
});

describe('card_token: tokens are accepted', () => {
  it('opaque tokens, including ones that contain a card-length digit run', () => {
    for (const token of [
      'tok_0123456789abcdef',
      'enc_card_9f3a1c0d2e7b4a61',
      '65f4e77888ecb93880620401924296fed45e8ddae81e9580a0c6aad50b8c9b2d359fe46bd36f9420f42e6e',
      'ss-tkn-fin1refv13noydilm77dhske',
      'eyJhbGciOiJBMjU2R0NNIn0.4111111111111111.c2lnbmF0dXJl',
      'tok_4111111111111111',
      '4111111111111111x',
    ]) {
      expect(isCardNumber(token)).toBe(false);
      expect(cardTokenSchema.safeParse(token).success).toBe(true);
    }
  });

  it('an all-digit token that fails the Luhn check is accepted (it is no card number)', () => {
    for (let length = 12; length <= 19; length++) {
      const digits = notLuhn(pan(length));
      expect(isCardNumber(digits)).toBe(false);
      expect(cardTokenSchema.safeParse(digits).success).toBe(true);
    }
  });

  it('Luhn-valid digit strings outside 12–19 digits are not card numbers', () => {
    for (const digits of [withCheckDigit('4111111111'), withCheckDigit('41111111111111111111')]) {
      expect(digits.length === 11 || digits.length === 21).toBe(true);
      expect(isCardNumber(digits)).toBe(false);
      expect(cardTokenSchema.safeParse(digits).success).toBe(true);
    }
  });

  it(`keeps the documented maximum length of ${CARD_TOKEN_MAX} characters`, () => {
    expect(CARD_TOKEN_MAX).toBe(4096);
    expect(cardTokenSchema.safeParse('t'.repeat(CARD_TOKEN_MAX)).success).toBe(true);
    expect(refusal('t'.repeat(CARD_TOKEN_MAX + 1))).toEqual([
      'card_token is longer than 4096 characters',
    ]);
  });
});

describe('card_token through the record parser', () => {
  const charge = {
    type: 'charge',
    email: 'ada@example.com',
    amount: '25.00',
    currency: 'NGN',
  };

  it('a JSON body with a card number gets one issue naming the field, without the digits', () => {
    for (const card of ['4111111111111111', '4111 1111 1111 1111', '4111-1111-1111-1111']) {
      const parsed = parseInstruction({ ...charge, card_token: card });
      expect(parsed).toEqual({
        ok: false,
        issues: [{ field: 'card_token', message: CARD_NUMBER_REFUSED }],
      });
      expect(JSON.stringify(parsed)).not.toContain('1111');
    }
  });
});
