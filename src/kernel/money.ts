/**
 * Money in integer minor units. Sayswitch's wire format (a decimal string in major units) is
 * produced and parsed only at the gateway edge and the CSV edge, through the functions here.
 */
import { z } from 'zod';
import { withoutCardNumbers } from './card-number.ts';

export const CHARGE_CURRENCIES = ['NGN', 'USD', 'GBP', 'EUR'] as const;
export const PAYOUT_CURRENCIES = ['NGN', 'KES', 'GHS'] as const;
export const CURRENCIES = ['NGN', 'USD', 'GBP', 'EUR', 'KES', 'GHS'] as const;
export type Currency = (typeof CURRENCIES)[number];
export type ChargeCurrency = (typeof CHARGE_CURRENCIES)[number];
export type PayoutCurrency = (typeof PAYOUT_CURRENCIES)[number];
export const currencySchema = z.enum(CURRENCIES);

/** An amount in minor units (kobo, cents, pesewas): a non-negative safe integer. */
export type AmountMinor = number & { readonly __brand: 'AmountMinor' };

/** Brands a number as minor units, refusing anything but a non-negative safe integer. */
export function amountMinor(n: number): AmountMinor {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a minor-unit amount: ${n}`);
  return n as AmountMinor;
}

export const amountMinorSchema = z
  .number()
  .int()
  .nonnegative()
  .refine(Number.isSafeInteger, 'must be a safe integer')
  .transform((n) => n as AmountMinor);

/**
 * The largest amount a merchant may ask for, in minor units: 10^14 − 1, i.e. 999999999999.99 in
 * major units. Redis's Lua writes numbers with 14 significant digits (`tostring`, `cjson.encode`
 * in the intent, refund and batch scripts), so 10^14 minor units or more would come out rounded
 * (123456789012345 as 123456789012340, or as `1.2345678901234e+14`) in events and stored
 * refunds. Every entry point refuses more, through {@link parseMajorAmount} (payments, batch
 * files, subscriptions: major units) or {@link minorAmountInputSchema} (refunds: minor units).
 */
export const AMOUNT_MINOR_MAX = 99_999_999_999_999;
/** {@link AMOUNT_MINOR_MAX} in major units, as messages and the docs write it. */
export const AMOUNT_MAJOR_MAX = formatMajor(AMOUNT_MINOR_MAX as AmountMinor);

/** Why an amount in minor units is refused as too large: names the field and the maximum. */
export const AMOUNT_MINOR_TOO_LARGE = `amount must be at most ${AMOUNT_MINOR_MAX} minor units (${AMOUNT_MAJOR_MAX})`;

/**
 * An amount a caller gives in minor units (a refund's `amount`): a whole number from 1 to
 * {@link AMOUNT_MINOR_MAX}.
 */
export const minorAmountInputSchema = z
  .number({ error: 'amount must be a number of minor units' })
  .int('amount must be a whole number of minor units')
  .positive('amount must be above 0')
  .max(AMOUNT_MINOR_MAX, AMOUNT_MINOR_TOO_LARGE)
  .transform((n) => n as AmountMinor);

/** Strict input form: digits, optionally a dot and one or two digits. No sign, exponent or separators. */
const STRICT_MAJOR = /^(\d+)(?:\.(\d{1,2}))?$/;

export type ParseAmountResult = { ok: true; amount: AmountMinor } | { ok: false; error: string };

/**
 * Parses a merchant-supplied major-unit amount (CSV, HTTP): `1500`, `1500.5`, `1500.50`, at most
 * {@link AMOUNT_MAJOR_MAX}. Signs, exponents, thousands separators, whitespace, zero and empty are
 * refused. A message quotes the input without any card number in it (kernel/card-number.ts): a
 * card number pasted into the amount column must not come back in an error.
 */
export function parseMajorAmount(input: string): ParseAmountResult {
  if (input === '') return { ok: false, error: 'amount is empty' };
  const m = STRICT_MAJOR.exec(input);
  if (!m) {
    return {
      ok: false,
      error: `amount "${withoutCardNumbers(input)}" must be digits with at most 2 decimals (no sign, exponent, spaces or separators)`,
    };
  }
  const whole = m[1] ?? '0';
  const frac = (m[2] ?? '').padEnd(2, '0');
  // Exact up to the maximum; a longer digit string may round, but never down to the maximum.
  const minor = Number(whole) * 100 + Number(frac);
  if (minor > AMOUNT_MINOR_MAX) {
    return {
      ok: false,
      error: `amount "${withoutCardNumbers(input)}" is more than the maximum, ${AMOUNT_MAJOR_MAX}`,
    };
  }
  if (minor === 0) return { ok: false, error: 'amount must be greater than zero' };
  return { ok: true, amount: minor as AmountMinor };
}

/**
 * Parses an amount as Sayswitch returns it: a decimal string or a JSON number in major units.
 * Lenient on form (the gateway is not the merchant); still exact, never via floating point maths
 * on the string. Returns undefined when it is not an amount.
 */
export function parseGatewayAmount(input: string | number): AmountMinor | undefined {
  const s = typeof input === 'number' ? formatNumberExact(input) : input.trim();
  if (s === undefined) return undefined;
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return undefined;
  const fracDigits = m[2] ?? '';
  // More than two decimals: accept only trailing zeros ("10.120"), otherwise it is not money we know.
  if (fracDigits.length > 2 && !/^0*$/.test(fracDigits.slice(2))) return undefined;
  const minor = Number(m[1]) * 100 + Number(fracDigits.slice(0, 2).padEnd(2, '0'));
  return Number.isSafeInteger(minor) ? (minor as AmountMinor) : undefined;
}

function formatNumberExact(n: number): string | undefined {
  if (!Number.isFinite(n) || n < 0) return undefined;
  // toFixed(2) then compare back: a number like 10.12 is 10.1199999… in binary, fixed is exact enough
  // for two decimals, and we refuse numbers with more precision than that.
  const fixed = n.toFixed(2);
  return Math.abs(Number(fixed) - n) < 1e-9 ? fixed : undefined;
}

/** Formats minor units as Sayswitch's decimal string in major units: 150050 → "1500.50", 150000 → "1500". */
export function formatMajor(amount: AmountMinor): string {
  const whole = Math.floor(amount / 100);
  const frac = amount % 100;
  return frac === 0 ? String(whole) : `${whole}.${String(frac).padStart(2, '0')}`;
}
