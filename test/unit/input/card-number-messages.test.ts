/**
 * A card number typed into a field other than `card_token` is refused by that field's own rule,
 * and no message quotes it: every quoted value goes through kernel/card-number.ts, which shows
 * `[card number removed]` instead, from JSON and CSV alike (the 422 bodies, batch errors, results
 * files and the console all carry these messages). Other values are still quoted as written.
 */
import { parsePauseBody, parseSubscriptionPatch } from '../../../src/subscriptions/patch-input.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateCsv } from '../../../src/batches/validate-csv.ts';
import {
  CARD_NUMBER_REMOVED,
  luhnValid,
  withoutCardNumbers,
} from '../../../src/kernel/card-number.ts';
import { parseMajorAmount } from '../../../src/kernel/money.ts';
import { shown } from '../../../src/input/fields.ts';
import { parseInstruction } from '../../../src/input/instruction-body.ts';
import { parseSubscriptionBody, parseSubscriptionsCsv } from '../../../src/subscriptions/import.ts';

/** A Luhn-valid number of 12 to 19 digits. */
const cardDigits = fc
  .tuple(fc.integer({ min: 12, max: 19 }), fc.stringMatching(/^\d{19}$/))
  .map(([length, pool]) => {
    const body = pool.slice(0, length - 1);
    for (let d = 0; d <= 9; d++) if (luhnValid(`${body}${d}`)) return `${body}${d}`;
    throw new Error('unreachable');
  });

/** The card number as people write it: plain, in groups of four by space or dash. */
const written = fc
  .tuple(cardDigits, fc.constantFrom('', ' ', '-', ' - '))
  .map(([digits, sep]) => ({ digits, text: digits.match(/.{1,4}/g)!.join(sep) }));

/** Any text without digits (so that the digits found can only be the card number's). */
const noDigits = fc.string().map((s) => s.replace(/\d/g, ''));

/** No run of 8 or more of the number's digits, however grouped, appears in `text`. */
function expectNoDigitsOf(text: string, digits: string) {
  const compact = text.replace(/[ -]/g, '');
  for (let i = 0; i + 8 <= digits.length; i++)
    expect(compact).not.toContain(digits.slice(i, i + 8));
}

const CHARGE = {
  type: 'charge',
  email: 'ada@example.com',
  amount: '25.00',
  currency: 'NGN',
  card_token: 'tok_fine_0123456789',
};
const PAYOUT = {
  type: 'payout',
  account_number: '0123456789',
  bank_code: '058',
  bank_name: 'GTBank',
  account_name: 'Ada Obi',
  amount: '25.00',
  currency: 'GHS',
  narration: 'x',
  payment_mode: 'bank',
};
const SUBSCRIPTION = {
  id: 'sub-1',
  customer_email: 'ada@example.com',
  card_token: 'tok_fine_0123456789',
  amount: '1500',
  currency: 'NGN',
  interval: 'month',
  anchor: '2025-01-31T09:00:00Z',
  timezone: 'UTC',
};

describe('withoutCardNumbers / shown', () => {
  it('removes a card number, whole or inside a value, and leaves other values as written', () => {
    expect(shown('4111111111111111')).toBe(CARD_NUMBER_REMOVED);
    expect(shown('4111 1111 1111 1111')).toBe(CARD_NUMBER_REMOVED);
    expect(shown('ada 4111-1111-1111-1111@x')).toBe(`ada ${CARD_NUMBER_REMOVED}@x`);
    expect(shown('4111111111111111.00')).toBe(`${CARD_NUMBER_REMOVED}.00`);
    for (const kept of ['1,500.00', 'XYZ', '4111111111111112', 'tok4111111111111111', '12345']) {
      expect(shown(kept)).toBe(kept);
    }
    expect(shown(42)).toBe('number');
    expect(parseMajorAmount('1,500.00')).toEqual({
      ok: false,
      error:
        'amount "1,500.00" must be digits with at most 2 decimals (no sign, exponent, spaces or separators)',
    });
  });

  it('no digit run of any card number survives', () => {
    fc.assert(
      fc.property(written, noDigits, noDigits, ({ digits, text }, before, after) => {
        // Whole, or standing on its own inside text (a digit run next to it would make it
        // another, longer number, judged as a whole).
        expectNoDigitsOf(withoutCardNumbers(text), digits);
        expectNoDigitsOf(withoutCardNumbers(`${before}x ${text} x${after}`), digits);
        expectNoDigitsOf(withoutCardNumbers(`${before}<${text}>${after}`), digits);
      }),
    );
  });
});

describe('every message that quotes a value', () => {
  it('JSON (POST /payments, POST /subscriptions): amount, email, currency, payment_mode, interval, …', () => {
    fc.assert(
      fc.property(written, ({ digits, text }) => {
        const bodies: [Record<string, unknown>, string][] = [
          [{ ...CHARGE, amount: text }, 'amount'],
          [{ ...CHARGE, email: text }, 'email'],
          [{ ...CHARGE, currency: text }, 'currency'],
          [{ ...PAYOUT, currency: text }, 'currency'],
          [{ ...PAYOUT, payment_mode: text }, 'payment_mode'],
          [{ ...CHARGE, [text]: 'x' }, text],
        ];
        for (const [body, field] of bodies) {
          const parsed = parseInstruction(body);
          // 12 to 14 plain digits are an amount (at most the maximum): accepted, nothing quoted.
          if (field !== 'amount') expect(parsed.ok, field).toBe(false);
          if (!parsed.ok) expectNoDigitsOf(JSON.stringify(parsed), digits);
        }
        for (const field of [
          'customer_email',
          'amount',
          'currency',
          'interval',
          'interval_count',
          'anchor',
          'timezone',
        ]) {
          const parsed = parseSubscriptionBody({ ...SUBSCRIPTION, [field]: text });
          if (field !== 'amount') expect(parsed.ok, field).toBe(false);
          if (!parsed.ok) expectNoDigitsOf(JSON.stringify(parsed), digits);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('CSV: a row error names its line and column, a headerless first row its cells, no digits', async () => {
    await fc.assert(
      fc.asyncProperty(written, async ({ digits, text }) => {
        const cell = `"${text}"`;
        const rows = await validateCsv(
          [
            [
              'reference,email,amount,currency,card_token',
              `r1,ada@example.com,${cell},NGN,tok_x`,
              `r2,${cell},10,NGN,tok_x`,
              `r3,ada@example.com,10,${cell},tok_x`,
            ].join('\n'),
          ],
          { type: 'charge' },
        );
        // 12 to 14 plain digits are an amount (at most the maximum): line 2 may be valid.
        const others = rows.errors.filter((e) => e.line !== 2);
        expect(rows.errors.filter((e) => e.line === 2).map((e) => e.column)).toEqual(
          rows.errors.length === 3 ? ['amount'] : [],
        );
        expect(others.map((e) => [e.line, e.column])).toEqual([
          [3, 'email'],
          [4, 'currency'],
        ]);
        for (const e of others) expect(e.message).toContain(`"${CARD_NUMBER_REMOVED}"`);
        expectNoDigitsOf(JSON.stringify(rows.errors), digits);

        const headerless = await validateCsv([`r1,ada@example.com,10,NGN,${cell}\n`], {
          type: 'charge',
        });
        expect(headerless.errors).toHaveLength(1);
        expect(headerless.errors[0]!.message).toMatch(/^the first line is not a charge header/);
        expectNoDigitsOf(JSON.stringify(headerless.errors), digits);
      }),
      { numRuns: 30 },
    );
  });

  it('CSV: a duplicate reference that is a card number', async () => {
    const result = await validateCsv(
      [
        [
          'reference,email,amount,currency,card_token',
          '4111111111111111,ada@example.com,10,NGN,tok_x',
          '4111111111111111,ada@example.com,10,NGN,tok_x',
        ].join('\n'),
      ],
      { type: 'charge' },
    );
    expect(result.errors).toEqual([
      {
        line: 3,
        column: 'reference',
        message: `reference "${CARD_NUMBER_REMOVED}" is already used on line 2 (references must be unique in a file, ignoring case)`,
      },
    ]);
  });

  it('CSV: a duplicate subscription id that is a card number (billing subs import)', async () => {
    const card = '4111111111111111';
    const row = `${card},ada@example.com,tok_x,10,NGN,month,2025-01-31T09:00:00Z,Africa/Lagos`;
    const result = await parseSubscriptionsCsv(
      ['id,customer_email,card_token,amount,currency,interval,anchor,timezone', row, row].join(
        '\n',
      ),
    );
    expect(result).toEqual({
      ok: false,
      errors: [
        {
          line: 3,
          column: 'id',
          message: `id "${CARD_NUMBER_REMOVED}" is already used on line 2 (ids are unique in a file, ignoring case)`,
        },
      ],
    });
  });

  it('subscription changes and actions: a card number as an unknown field or metadata key', () => {
    const card = '4111111111111111';
    const results = [
      parseSubscriptionPatch({ [card]: 'x' }),
      parseSubscriptionPatch({ metadata: { [`${card}!`]: 'x' } }),
      parsePauseBody({ [card]: null }),
    ];
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect(JSON.stringify(r)).not.toContain(card);
      expect(JSON.stringify(r)).toContain(CARD_NUMBER_REMOVED);
    }
  });
});
