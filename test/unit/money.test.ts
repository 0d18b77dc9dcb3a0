/**
 * The amount maximum of kernel/money.ts: 10^14 − 1 minor units (999999999999.99), because Redis's
 * Lua writes numbers with 14 significant digits and would round anything larger in events and
 * stored refunds. One rule for every entry point: major units (payments, batch files,
 * subscriptions) through parseMajorAmount, minor units (refunds) through minorAmountInputSchema.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AMOUNT_MAJOR_MAX,
  AMOUNT_MINOR_MAX,
  AMOUNT_MINOR_TOO_LARGE,
  amountMinor,
  formatMajor,
  minorAmountInputSchema,
  parseMajorAmount,
} from '../../src/kernel/money.ts';
import { parseInstruction } from '../../src/input/instruction-body.ts';
import { parseSubscriptionBody } from '../../src/subscriptions/import.ts';
import { parseSubscriptionPatch } from '../../src/subscriptions/patch-input.ts';

describe('the amount maximum', () => {
  it('is the largest amount Lua writes back exactly: 10^14 − 1 minor units', () => {
    expect(AMOUNT_MINOR_MAX).toBe(10 ** 14 - 1);
    expect(AMOUNT_MAJOR_MAX).toBe('999999999999.99');
    expect(formatMajor(amountMinor(AMOUNT_MINOR_MAX))).toBe(AMOUNT_MAJOR_MAX);
    // Lua's `%.14g` writes any integer of at most 14 digits exactly; one more and it rounds.
    expect(String(AMOUNT_MINOR_MAX)).toHaveLength(14);
    expect(String(AMOUNT_MINOR_MAX + 1)).toHaveLength(15);
  });

  it('major units: the maximum is accepted, one minor unit more is refused naming the maximum', () => {
    expect(parseMajorAmount('999999999999.99')).toEqual({ ok: true, amount: AMOUNT_MINOR_MAX });
    expect(parseMajorAmount('0999999999999.99')).toEqual({ ok: true, amount: AMOUNT_MINOR_MAX });
    for (const input of ['1000000000000', '1000000000000.00', '1234567890123.45', '9'.repeat(20)]) {
      expect(parseMajorAmount(input)).toEqual({
        ok: false,
        error: `amount "${input}" is more than the maximum, 999999999999.99`,
      });
    }
  });

  it('major units: every amount up to the maximum round-trips, every one above is refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: AMOUNT_MINOR_MAX }), (minor) => {
        expect(parseMajorAmount(formatMajor(amountMinor(minor)))).toEqual({
          ok: true,
          amount: minor,
        });
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: AMOUNT_MINOR_MAX + 1, max: Number.MAX_SAFE_INTEGER }),
        (minor) => {
          const parsed = parseMajorAmount(formatMajor(amountMinor(minor)));
          expect(parsed.ok).toBe(false);
          if (!parsed.ok)
            expect(parsed.error).toMatch(/is more than the maximum, 999999999999\.99$/);
        },
      ),
    );
  });

  it('minor units (refunds): 1 to the maximum, a clear message above it', () => {
    expect(minorAmountInputSchema.parse(1)).toBe(1);
    expect(minorAmountInputSchema.parse(AMOUNT_MINOR_MAX)).toBe(AMOUNT_MINOR_MAX);
    for (const n of [AMOUNT_MINOR_MAX + 1, 10 ** 15, Number.MAX_SAFE_INTEGER]) {
      const r = minorAmountInputSchema.safeParse(n);
      expect(r.success).toBe(false);
      expect(r.error?.issues.map((i) => i.message)).toEqual([AMOUNT_MINOR_TOO_LARGE]);
    }
    expect(AMOUNT_MINOR_TOO_LARGE).toBe(
      'amount must be at most 99999999999999 minor units (999999999999.99)',
    );
    expect(minorAmountInputSchema.safeParse(0).success).toBe(false);
    expect(minorAmountInputSchema.safeParse(1.5).success).toBe(false);
  });

  it('every entry point in major units refuses the same amount: payments, subscriptions', () => {
    const charge = {
      type: 'charge',
      email: 'ada@example.com',
      currency: 'NGN',
      card_token: 'tok_abc',
    };
    expect(parseInstruction({ ...charge, amount: '999999999999.99' }).ok).toBe(true);
    expect(parseInstruction({ ...charge, amount: '1234567890123.45' })).toEqual({
      ok: false,
      issues: [
        {
          field: 'amount',
          message: 'amount "1234567890123.45" is more than the maximum, 999999999999.99',
        },
      ],
    });
    const payout = {
      type: 'payout',
      account_number: '0123456789',
      bank_code: '058',
      bank_name: 'GTBank',
      account_name: 'Ada Obi',
      currency: 'NGN',
      narration: 'x',
    };
    expect(parseInstruction({ ...payout, amount: '1000000000000' })).toMatchObject({
      ok: false,
      issues: [{ field: 'amount', message: expect.stringMatching(/maximum, 999999999999\.99$/) }],
    });
    const subscription = {
      id: 'big',
      customer_email: 'ada@example.com',
      card_token: 'tok_abc',
      currency: 'NGN',
      interval: 'month',
      anchor: '2025-01-31T09:00:00Z',
      timezone: 'UTC',
    };
    expect(parseSubscriptionBody({ ...subscription, amount: '999999999999.99' }).ok).toBe(true);
    expect(parseSubscriptionBody({ ...subscription, amount: '1000000000000' })).toMatchObject({
      ok: false,
      issues: [{ field: 'amount', message: expect.stringMatching(/maximum, 999999999999\.99$/) }],
    });
    expect(parseSubscriptionPatch({ amount: '999999999999.99' }).ok).toBe(true);
    expect(parseSubscriptionPatch({ amount: '1000000000000' })).toMatchObject({
      ok: false,
      issues: [{ field: 'amount', message: expect.stringMatching(/maximum, 999999999999\.99$/) }],
    });
  });
});
