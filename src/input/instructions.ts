/**
 * Payment instructions: rows of a bulk batch file and the body of `POST /payments` (docs/product.md §6.1
 * charges, 6.2 payouts): which fields each type has, their schemas (built from `fields.ts`), and
 * the typed row one record becomes. The record parser (`record.ts`) maps a header or a body onto
 * these fields and words problems for its source; CSV framing (quotes, line numbers, byte limits,
 * UTF-8) lives in `csv-reader.ts`. This file sees already-split fields.
 *
 * Messages never quote a `card_token` value: card data must not reach logs or error reports.
 */
import { z } from 'zod';
import type { InstructionType } from '../kernel/intent.ts';
import {
  amountMinorSchema,
  CHARGE_CURRENCIES,
  PAYOUT_CURRENCIES,
  type PayoutCurrency,
} from '../kernel/money.ts';
import { ROW_REFERENCE_MAX } from '../kernel/ids.ts';
import {
  amountSchema,
  cardTokenSchema,
  currencySchema,
  emailSchema,
  idSchema,
  META_VALUE_MAX,
  NO_CONTROL,
  shown,
  textSchema,
} from './fields.ts';
import {
  asRowIssues,
  parseRecord,
  resolveNames,
  type FieldLayout,
  type Issue,
  type ParsedFields,
  type RawValues,
  type RecordSpec,
  type RowIssue,
} from './record.ts';

export { META_KEY_MAX, META_PREFIX } from './fields.ts';
export type { RowIssue } from './record.ts';

/** Columns of a charge file, in the order the README documents them. */
export const CHARGE_COLUMNS = [
  'reference',
  'email',
  'amount',
  'currency',
  'card_token',
  'narration',
] as const;
/** Columns of a payout file, in the order the README documents them. */
export const PAYOUT_COLUMNS = [
  'reference',
  'account_number',
  'bank_code',
  'bank_name',
  'account_name',
  'amount',
  'currency',
  'narration',
  'payment_mode',
] as const;
/** A column name of each file type, and of either. */
export type ChargeColumn = (typeof CHARGE_COLUMNS)[number];
export type PayoutColumn = (typeof PAYOUT_COLUMNS)[number];
export type KnownColumn = ChargeColumn | PayoutColumn;

/** Columns whose header must be present. `payment_mode` is optional in the header but required
 * per row for KES/GHS, which is a row check. */
export const REQUIRED_COLUMNS: Readonly<Record<InstructionType, readonly KnownColumn[]>> = {
  charge: ['email', 'amount', 'currency', 'card_token'],
  payout: [
    'account_number',
    'bank_code',
    'bank_name',
    'account_name',
    'amount',
    'currency',
    'narration',
  ],
};

/** Sayswitch's `paymentMode`: a bank transfer or a mobile-money wallet. */
export const PAYMENT_MODES = ['bank', 'momo'] as const;
export type PaymentMode = (typeof PAYMENT_MODES)[number];
/** Sayswitch requires `paymentMode` for these; NGN payouts are bank transfers only. */
const MODE_REQUIRED: readonly PayoutCurrency[] = ['KES', 'GHS'];

/** NUBAN account numbers are exactly 10 digits; a 9-digit one is usually a spreadsheet that ate a leading zero. */
const NUBAN_LENGTH = 10;
const ACCOUNT_NUMBER_MAX = 20;

// ---------------------------------------------------------------------------------------------
// Field schemas. Each takes the raw string (or undefined when blank or absent) of one field.

const referenceSchema = idSchema('reference', ROW_REFERENCE_MAX);
const chargeEmailSchema = emailSchema('email');

const accountNumberSchema = z
  .string({ error: 'account_number is required' })
  .regex(/^\d+$/, 'account_number must contain digits only (no spaces, dashes or "+")')
  .max(ACCOUNT_NUMBER_MAX, `account_number is longer than ${ACCOUNT_NUMBER_MAX} digits`);

const bankCodeSchema = z
  .string({ error: 'bank_code is required' })
  .regex(/^[A-Za-z0-9_-]+$/, 'bank_code may contain only letters, digits, "_" and "-"');

const paymentModeSchema = z.enum(PAYMENT_MODES, {
  error: (iss) => `payment_mode "${shown(iss.input)}" must be "bank" or "momo"`,
});

const chargeFieldsSchema = z.object({
  reference: referenceSchema.optional(),
  email: chargeEmailSchema,
  amount: amountSchema,
  currency: currencySchema(CHARGE_CURRENCIES, 'charges'),
  card_token: cardTokenSchema,
  narration: textSchema('narration').optional(),
});

const payoutFieldsSchema = z.object({
  reference: referenceSchema.optional(),
  account_number: accountNumberSchema,
  bank_code: bankCodeSchema,
  bank_name: textSchema('bank_name'),
  account_name: textSchema('account_name'),
  amount: amountSchema,
  currency: currencySchema(PAYOUT_CURRENCIES, 'payouts'),
  narration: textSchema('narration'),
  payment_mode: paymentModeSchema.optional(),
});

/** Rules that span fields; checked on the raw values so they are reported alongside field errors. */
function payoutCrossChecks(values: Readonly<RawValues>): Issue[] {
  const issues: Issue[] = [];
  const currency = values.currency;
  const mode = values.payment_mode;
  if (MODE_REQUIRED.includes(currency as PayoutCurrency)) {
    if (mode === undefined) {
      issues.push({
        name: 'payment_mode',
        message: `payment_mode is required for ${String(currency)} payouts ("bank" or "momo")`,
      });
    }
  } else if (currency === 'NGN') {
    if (mode === 'momo') {
      issues.push({
        name: 'payment_mode',
        message: 'payment_mode "momo" is only available for KES and GHS payouts',
      });
    }
    const account = values.account_number;
    if (account !== undefined && /^\d+$/.test(account) && account.length !== NUBAN_LENGTH) {
      issues.push({
        name: 'account_number',
        message:
          `NGN account_number must be ${NUBAN_LENGTH} digits (NUBAN), got ${account.length}` +
          (account.length === NUBAN_LENGTH - 1 ? '; did a spreadsheet drop a leading zero?' : ''),
      });
    }
  }
  return issues;
}

/** The record kinds of payment instructions, for the record parser. */
export const chargeSpec: RecordSpec<ChargeColumn, typeof chargeFieldsSchema> = {
  kind: 'charge',
  fields: CHARGE_COLUMNS,
  requiredColumns: REQUIRED_COLUMNS.charge as readonly ChargeColumn[],
  schema: chargeFieldsSchema,
  related: { kind: 'payout', fields: PAYOUT_COLUMNS },
};
export const payoutSpec: RecordSpec<PayoutColumn, typeof payoutFieldsSchema> = {
  kind: 'payout',
  fields: PAYOUT_COLUMNS,
  requiredColumns: REQUIRED_COLUMNS.payout as readonly PayoutColumn[],
  schema: payoutFieldsSchema,
  related: { kind: 'charge', fields: CHARGE_COLUMNS },
  crossChecks: payoutCrossChecks,
};

// ---------------------------------------------------------------------------------------------
// Row schemas: the validated shape, also usable to re-check a row read back from a spill store.

const lineSchema = z.number().int().positive();
const metaSchema = z.record(z.string(), z.string());

/** A validated charge row. `line` is the physical line of the file where the record starts. */
export const chargeRowSchema = z.object({
  line: lineSchema,
  reference: referenceSchema.optional(),
  email: chargeEmailSchema,
  amount: amountMinorSchema,
  currency: z.enum(CHARGE_CURRENCIES),
  cardToken: cardTokenSchema,
  narration: textSchema('narration').optional(),
  /** `meta_*` columns keyed without the prefix, in header order. */
  meta: metaSchema,
});
/** A validated charge row; see {@link chargeRowSchema}. */
export type ChargeRow = z.output<typeof chargeRowSchema>;

/** A validated payout row. `paymentMode` is already defaulted (`bank`). */
export const payoutRowSchema = z.object({
  line: lineSchema,
  reference: referenceSchema.optional(),
  accountNumber: accountNumberSchema,
  bankCode: bankCodeSchema,
  bankName: textSchema('bank_name'),
  accountName: textSchema('account_name'),
  amount: amountMinorSchema,
  currency: z.enum(PAYOUT_CURRENCIES),
  narration: textSchema('narration'),
  paymentMode: z.enum(PAYMENT_MODES),
  meta: metaSchema,
});
/** A validated payout row; see {@link payoutRowSchema}. */
export type PayoutRow = z.output<typeof payoutRowSchema>;

/** The row type of a batch type. */
export type RowOf<T extends InstructionType> = T extends 'charge' ? ChargeRow : PayoutRow;
/** A row of either type. */
export type BatchRow = ChargeRow | PayoutRow;

/** A validated charge record as a row. */
export function chargeRow(
  v: z.output<typeof chargeFieldsSchema>,
  meta: Record<string, string>,
  line: number,
): ChargeRow {
  return {
    line,
    reference: v.reference,
    email: v.email,
    amount: v.amount,
    currency: v.currency,
    cardToken: v.card_token,
    narration: v.narration,
    meta,
  };
}

/** A validated payout record as a row, `payment_mode` defaulted to `bank`. */
export function payoutRow(
  v: z.output<typeof payoutFieldsSchema>,
  meta: Record<string, string>,
  line: number,
): PayoutRow {
  return {
    line,
    reference: v.reference,
    accountNumber: v.account_number,
    bankCode: v.bank_code,
    bankName: v.bank_name,
    accountName: v.account_name,
    amount: v.amount,
    currency: v.currency,
    narration: v.narration,
    paymentMode: v.payment_mode ?? 'bank',
    meta,
  };
}

// ---------------------------------------------------------------------------------------------
// CSV header and records.

/** A header that maps onto the type's columns. */
export type HeaderLayout = FieldLayout;

/** A usable header, or every problem with it. */
export type HeaderResult = { ok: true; layout: HeaderLayout } | { ok: false; issues: RowIssue[] };

/**
 * Maps a header record onto the columns of `type`. Names are trimmed and matched
 * case-insensitively; `meta_*` columns are kept; anything else, a duplicate, or a missing
 * required column is an issue. A header with no known column at all gets one issue that says so,
 * rather than one per column, because it is usually a file without a header or of another kind.
 */
export function resolveHeader(type: InstructionType, header: readonly string[]): HeaderResult {
  const { layout, issues } = resolveNames(
    type === 'charge' ? chargeSpec : payoutSpec,
    header,
    'csv',
  );
  return issues.length > 0 ? { ok: false, issues: asRowIssues(issues) } : { ok: true, layout };
}

/** A typed row, or the problems of one record. */
export type RecordResult<R> =
  | { ok: true; row: R }
  | {
      ok: false;
      issues: RowIssue[];
      /** The row's reference when it is well-formed, so duplicates are still found in bad rows. */
      reference?: string;
      /** What the results file may show of the refused row ({@link refusedRowEcho}). */
      echo: RefusedRowEcho;
    };

function wellFormedReference(value: string | undefined): string | undefined {
  return value !== undefined && referenceSchema.safeParse(value).success ? value : undefined;
}

/** A record's parse result as a row, or its issues, its echo and (when well formed) reference. */
function toResult<S extends z.ZodType, R>(
  parsed: ParsedFields<S>,
  row: (data: z.output<S>, meta: Record<string, string>) => R,
): RecordResult<R> {
  if (!parsed.ok) {
    const reference = wellFormedReference(parsed.values.reference);
    const echo = refusedRowEcho(parsed.values.reference, parsed.meta);
    return { ok: false, issues: asRowIssues(parsed.issues), reference, echo };
  }
  return { ok: true, row: row(parsed.data, parsed.meta) };
}

// ---------------------------------------------------------------------------------------------
// Refused rows.

/**
 * What a refused row keeps of its cells for the results file (docs/batches.md "--skip-invalid"):
 * its reference and its `meta_*` values, the columns an operator matches results by. Nothing else
 * of the row (amount, email, card token, account number…) is kept: a refused row may hold them
 * in the wrong column.
 */
export interface RefusedRowEcho {
  reference?: string;
  /** `meta_*` values keyed without the prefix; blank ones left out. */
  meta?: Record<string, string>;
}

/** Ends a value {@link refusedRowEcho} cut short. */
export const CUT_MARK = '…';

/** The first `max` UTF-16 units of `value` and {@link CUT_MARK}, when it is longer; never half a
 * surrogate pair. */
function bounded(value: string, max: number): string {
  if (value.length <= max) return value;
  const end = /[\uD800-\uDBFF]/.test(value.charAt(max - 1)) ? max - 1 : max;
  return `${value.slice(0, end)}${CUT_MARK}`;
}

/**
 * The one rule for what a refused row shows, from its reference cell as the validator read it
 * (blank is none, otherwise as written; undefined when the cell was not read) and its meta values:
 *
 * - the reference, valid or not, cut to {@link ROW_REFERENCE_MAX} characters followed by
 *   {@link CUT_MARK} when longer; left out when it holds a control character or a card number
 *   (kernel/card-number.ts), which could not be shown safely;
 * - each non-blank meta value as written, any card number in it replaced as every message quoting
 *   input replaces it (`shown`), cut to {@link META_VALUE_MAX} characters and {@link CUT_MARK}.
 */
export function refusedRowEcho(
  reference: string | undefined,
  meta: Readonly<Record<string, string>>,
): RefusedRowEcho {
  const echo: RefusedRowEcho = {};
  if (reference !== undefined && NO_CONTROL.test(reference) && shown(reference) === reference) {
    echo.reference = bounded(reference, ROW_REFERENCE_MAX);
  }
  for (const [key, value] of Object.entries(meta)) {
    if (value === '') continue;
    (echo.meta ??= {})[key] = bounded(shown(value), META_VALUE_MAX);
  }
  return echo;
}

/**
 * Validates one record of a `type` file (fields already counted against the header). `skip` holds
 * field indexes the caller has already refused (oversized): they are neither validated nor
 * reported again.
 */
export function parseInstructionRecord<T extends InstructionType>(
  type: T,
  layout: HeaderLayout,
  fields: readonly string[],
  line: number,
  skip?: ReadonlySet<number>,
): RecordResult<RowOf<T>> {
  const result =
    type === 'charge'
      ? toResult(parseRecord(chargeSpec, layout, fields, 'csv', skip), (d, m) =>
          chargeRow(d, m, line),
        )
      : toResult(parseRecord(payoutSpec, layout, fields, 'csv', skip), (d, m) =>
          payoutRow(d, m, line),
        );
  return result as RecordResult<RowOf<T>>;
}
