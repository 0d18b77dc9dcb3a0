/**
 * Payment instructions: rows of a bulk batch file and the body of `POST /payments` (PRODUCT.md 6.1 charges, 6.2 payouts): which columns each type has,
 * how a header row maps onto them, and the zod schemas that turn one record's strings into a typed
 * row. CSV framing (quotes, line numbers, byte limits, UTF-8) lives in `validate-csv.ts`; this file
 * sees already-split fields.
 *
 * Messages never quote a `card_token` value: card data must not reach logs or error reports.
 */
import { z } from 'zod';
import type { IntentType } from '../kernel/intent.ts';
import {
  amountMinorSchema,
  CHARGE_CURRENCIES,
  parseMajorAmount,
  PAYOUT_CURRENCIES,
  type PayoutCurrency,
} from '../kernel/money.ts';
import { idComponentSchema, ROW_REFERENCE_MAX } from '../kernel/ids.ts';

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
export const REQUIRED_COLUMNS: Readonly<Record<IntentType, readonly KnownColumn[]>> = {
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

const COLUMNS: Readonly<Record<IntentType, readonly KnownColumn[]>> = {
  charge: CHARGE_COLUMNS,
  payout: PAYOUT_COLUMNS,
};

/** Merchant columns echoed to the results file carry this prefix (matched case-insensitively). */
export const META_PREFIX = 'meta_';
/** A meta key (the part after `meta_`) is a spreadsheet header, not an identifier; keep it short. */
export const META_KEY_MAX = 64;

/** Sayswitch's `paymentMode`: a bank transfer or a mobile-money wallet. */
export const PAYMENT_MODES = ['bank', 'momo'] as const;
export type PaymentMode = (typeof PAYMENT_MODES)[number];
/** Sayswitch requires `paymentMode` for these; NGN payouts are bank transfers only. */
const MODE_REQUIRED: readonly PayoutCurrency[] = ['KES', 'GHS'];

/** NUBAN account numbers are exactly 10 digits; a 9-digit one is usually a spreadsheet that ate a leading zero. */
const NUBAN_LENGTH = 10;
const ACCOUNT_NUMBER_MAX = 20;
const EMAIL_MAX = 254;

/** One problem with a header or a record, before the line number is attached. */
export interface RowIssue {
  /** Canonical column name (`amount`, `meta_region`) or the header's own spelling for unknown ones. */
  column?: string;
  message: string;
}

// ---------------------------------------------------------------------------------------------
// Field schemas. Each takes the raw string (or undefined when blank or absent) of one column.

const NO_CONTROL = /^\P{Cc}*$/u;

/** Inputs are strings here; anything else is a programming error, named by its type. */
function shown(input: unknown): string {
  return typeof input === 'string' ? input : typeof input;
}

function requiredText(column: string) {
  return z
    .string({ error: `${column} is required` })
    .regex(NO_CONTROL, `${column} contains a line break, tab or other control character`);
}

const referenceSchema = idComponentSchema('reference', ROW_REFERENCE_MAX);

const emailSchema = z
  .email({
    error: (iss) =>
      iss.input === undefined ? 'email is required' : `email "${shown(iss.input)}" is not valid`,
  })
  .max(EMAIL_MAX, `email is longer than ${EMAIL_MAX} characters`);

/** The card string from Sayswitch's encryption step: opaque, so only its shape is checked, and
 * its value is never repeated in a message. */
const cardTokenSchema = z
  .string({ error: 'card_token is required' })
  .regex(/^[\x21-\x7e]+$/, 'card_token must be printable ASCII without spaces');

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

function currencySchema<const C extends readonly [string, ...string[]]>(allowed: C, kind: string) {
  return z.enum(allowed, {
    error: (iss) =>
      iss.input === undefined
        ? 'currency is required'
        : `currency "${shown(iss.input)}" is not allowed for ${kind} (use ${allowed.join(', ')})`,
  });
}

/** Major-unit decimal string → minor units, through the one money parser. */
const amountFieldSchema = z.string({ error: 'amount is required' }).transform((input, ctx) => {
  const parsed = parseMajorAmount(input);
  if (!parsed.ok) {
    ctx.addIssue({ code: 'custom', message: parsed.error });
    return z.NEVER;
  }
  return parsed.amount;
});

const chargeFieldsSchema = z.object({
  reference: referenceSchema.optional(),
  email: emailSchema,
  amount: amountFieldSchema,
  currency: currencySchema(CHARGE_CURRENCIES, 'charges'),
  card_token: cardTokenSchema,
  narration: requiredText('narration').optional(),
});

const payoutFieldsSchema = z.object({
  reference: referenceSchema.optional(),
  account_number: accountNumberSchema,
  bank_code: bankCodeSchema,
  bank_name: requiredText('bank_name'),
  account_name: requiredText('account_name'),
  amount: amountFieldSchema,
  currency: currencySchema(PAYOUT_CURRENCIES, 'payouts'),
  narration: requiredText('narration'),
  payment_mode: paymentModeSchema.optional(),
});

// ---------------------------------------------------------------------------------------------
// Row schemas: the validated shape, also usable to re-check a row read back from a spill store.

const lineSchema = z.number().int().positive();
const metaSchema = z.record(z.string(), z.string());

/** A validated charge row. `line` is the physical line of the file where the record starts. */
export const chargeRowSchema = z.object({
  line: lineSchema,
  reference: referenceSchema.optional(),
  email: emailSchema,
  amount: amountMinorSchema,
  currency: z.enum(CHARGE_CURRENCIES),
  cardToken: cardTokenSchema,
  narration: requiredText('narration').optional(),
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
  bankName: requiredText('bank_name'),
  accountName: requiredText('account_name'),
  amount: amountMinorSchema,
  currency: z.enum(PAYOUT_CURRENCIES),
  narration: requiredText('narration'),
  paymentMode: z.enum(PAYMENT_MODES),
  meta: metaSchema,
});
/** A validated payout row; see {@link payoutRowSchema}. */
export type PayoutRow = z.output<typeof payoutRowSchema>;

/** The row type of a batch type. */
export type RowOf<T extends IntentType> = T extends 'charge' ? ChargeRow : PayoutRow;
/** A row of either type. */
export type BatchRow = ChargeRow | PayoutRow;

// ---------------------------------------------------------------------------------------------
// Header.

/** Where each field of a record goes: a known column or a meta key. */
export type ColumnSlot = { kind: 'known'; column: KnownColumn } | { kind: 'meta'; key: string };

/** A header that maps onto the type's columns. */
export interface HeaderLayout {
  type: IntentType;
  /** One slot per field, in file order. */
  slots: readonly ColumnSlot[];
  /** Canonical column name per field (`amount`, `meta_region`), for error reports. */
  names: readonly string[];
  /** Meta keys (without `meta_`) in header order: the results file echoes them in this order. */
  metaKeys: readonly string[];
}

/** A usable header, or every problem with it. */
export type HeaderResult = { ok: true; layout: HeaderLayout } | { ok: false; issues: RowIssue[] };

function otherType(type: IntentType): IntentType {
  return type === 'charge' ? 'payout' : 'charge';
}

/**
 * Maps a header record onto the columns of `type`. Names are trimmed and matched
 * case-insensitively; `meta_*` columns are kept; anything else, a duplicate, or a missing
 * required column is an issue. A header with no known column at all gets one issue that says so,
 * rather than one per column, because it is usually a file without a header or of another kind.
 */
export function resolveHeader(type: IntentType, header: readonly string[]): HeaderResult {
  const known = COLUMNS[type];
  const knownSet = new Set<string>(known);
  const otherSet = new Set<string>(COLUMNS[otherType(type)]);
  const issues: RowIssue[] = [];
  const slots: ColumnSlot[] = [];
  const names: string[] = [];
  const metaKeys: string[] = [];
  const seen = new Map<string, number>();
  let knownCount = 0;

  header.forEach((raw, index) => {
    const name = raw.trim();
    const lower = name.toLowerCase();
    const position = index + 1;
    if (name === '') {
      issues.push({ message: `header column ${position} has no name` });
    } else if (!NO_CONTROL.test(name)) {
      issues.push({
        column: name,
        message: `header column ${position} contains a control character`,
      });
    }
    const previous = seen.get(lower);
    if (name !== '' && previous !== undefined) {
      issues.push({
        column: name,
        message: `column "${name}" appears twice in the header (columns ${previous} and ${position})`,
      });
    }
    seen.set(lower, position);

    if (knownSet.has(lower)) {
      knownCount++;
      slots.push({ kind: 'known', column: lower as KnownColumn });
      names.push(lower);
    } else if (lower.startsWith(META_PREFIX)) {
      const key = name.slice(META_PREFIX.length);
      if (key === '__proto__') {
        // Would set the prototype of the row's meta object instead of a value.
        issues.push({ column: name, message: `column "${name}" is a reserved name` });
      } else if (key === '') {
        issues.push({
          column: name,
          message: `column "${name}" needs a name after "${META_PREFIX}"`,
        });
      } else if (key.length > META_KEY_MAX) {
        issues.push({
          column: name,
          message: `column "${name}" is longer than ${META_KEY_MAX} characters after "${META_PREFIX}"`,
        });
      }
      slots.push({ kind: 'meta', key });
      names.push(`${META_PREFIX}${key}`);
      metaKeys.push(key);
    } else {
      if (name !== '') {
        const hint = otherSet.has(lower)
          ? ` ("${lower}" is a ${otherType(type)} column: is this a ${otherType(type)} file?)`
          : '';
        issues.push({
          column: name,
          message: `unknown column "${name}"${hint}; prefix your own columns with "${META_PREFIX}"`,
        });
      }
      slots.push({ kind: 'meta', key: name });
      names.push(name);
    }
  });

  if (knownCount === 0) {
    const found = header.map((h) => `"${h.trim()}"`).join(', ');
    return {
      ok: false,
      issues: [
        {
          message:
            `the first line is not a ${type} header: expected columns ${known.join(', ')} ` +
            `(and optional ${META_PREFIX}*), found ${found}`,
        },
      ],
    };
  }

  for (const column of REQUIRED_COLUMNS[type]) {
    if (!seen.has(column)) {
      issues.push({ column, message: `required column "${column}" is missing from the header` });
    }
  }

  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, layout: { type, slots, names, metaKeys } };
}

// ---------------------------------------------------------------------------------------------
// Records.

/** A typed row, or the problems of one record. */
export type RecordResult<R> =
  | { ok: true; row: R }
  | {
      ok: false;
      issues: RowIssue[];
      /** The row's reference when it is well-formed, so duplicates are still found in bad rows. */
      reference?: string;
    };

const NO_SKIP: ReadonlySet<number> = new Set();
const NO_COLUMNS: ReadonlySet<string> = new Set();

/** Whitespace-only counts as absent: a required field that is blank is "required", not "invalid". */
function present(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/**
 * Zod reports every failed check; a person fixing a file needs the first one per column. Columns
 * in `skipped` were refused by the caller and left out, so their "is required" is not news.
 */
function firstIssuePerColumn(
  error: z.ZodError,
  issues: RowIssue[],
  skipped: ReadonlySet<string>,
): void {
  const reported = new Set<string>();
  for (const issue of error.issues) {
    const column = String(issue.path[0] ?? '');
    if (reported.has(column) || skipped.has(column)) continue;
    reported.add(column);
    issues.push({ column, message: issue.message });
  }
}

/** Splits a record into known-column values and meta, using the header's slots. */
function split(
  layout: HeaderLayout,
  fields: readonly string[],
  skip: ReadonlySet<number>,
): {
  values: Record<string, string | undefined>;
  meta: Record<string, string>;
  skipped: ReadonlySet<string>;
} {
  const values: Record<string, string | undefined> = {};
  const meta: Record<string, string> = {};
  let skipped: Set<string> | undefined;
  for (let i = 0; i < layout.slots.length; i++) {
    const slot = layout.slots[i];
    const field = fields[i] ?? '';
    if (slot === undefined) continue;
    if (slot.kind === 'meta') {
      meta[slot.key] = skip.has(i) ? '' : field;
    } else if (skip.has(i)) {
      skipped ??= new Set();
      skipped.add(slot.column);
    } else {
      values[slot.column] = present(field);
    }
  }
  return { values, meta, skipped: skipped ?? NO_COLUMNS };
}

function wellFormedReference(value: string | undefined): string | undefined {
  return value !== undefined && referenceSchema.safeParse(value).success ? value : undefined;
}

/**
 * Validates one charge record (fields already counted against the header). `skip` holds field
 * indexes the caller has already refused (oversized): they are neither validated nor reported again.
 */
export function parseChargeRecord(
  layout: HeaderLayout,
  fields: readonly string[],
  line: number,
  skip: ReadonlySet<number> = NO_SKIP,
): RecordResult<ChargeRow> {
  const { values, meta, skipped } = split(layout, fields, skip);
  const parsed = chargeFieldsSchema.safeParse(values);
  if (!parsed.success) {
    const issues: RowIssue[] = [];
    firstIssuePerColumn(parsed.error, issues, skipped);
    return { ok: false, issues, reference: wellFormedReference(values.reference) };
  }
  const v = parsed.data;
  return {
    ok: true,
    row: {
      line,
      reference: v.reference,
      email: v.email,
      amount: v.amount,
      currency: v.currency,
      cardToken: v.card_token,
      narration: v.narration,
      meta,
    },
  };
}

/** Rules that span columns; checked on the raw values so they are reported alongside field errors. */
function payoutCrossChecks(values: Record<string, string | undefined>, issues: RowIssue[]): void {
  const currency = values.currency;
  const mode = values.payment_mode;
  if (MODE_REQUIRED.includes(currency as PayoutCurrency)) {
    if (mode === undefined) {
      issues.push({
        column: 'payment_mode',
        message: `payment_mode is required for ${String(currency)} payouts ("bank" or "momo")`,
      });
    }
  } else if (currency === 'NGN') {
    if (mode === 'momo') {
      issues.push({
        column: 'payment_mode',
        message: 'payment_mode "momo" is only available for KES and GHS payouts',
      });
    }
    const account = values.account_number;
    if (account !== undefined && /^\d+$/.test(account) && account.length !== NUBAN_LENGTH) {
      issues.push({
        column: 'account_number',
        message:
          `NGN account_number must be ${NUBAN_LENGTH} digits (NUBAN), got ${account.length}` +
          (account.length === NUBAN_LENGTH - 1 ? '; did a spreadsheet drop a leading zero?' : ''),
      });
    }
  }
}

/** Validates one payout record; see {@link parseChargeRecord}. */
export function parsePayoutRecord(
  layout: HeaderLayout,
  fields: readonly string[],
  line: number,
  skip: ReadonlySet<number> = NO_SKIP,
): RecordResult<PayoutRow> {
  const { values, meta, skipped } = split(layout, fields, skip);
  const parsed = payoutFieldsSchema.safeParse(values);
  const issues: RowIssue[] = [];
  if (!parsed.success) firstIssuePerColumn(parsed.error, issues, skipped);
  const crossIssues: RowIssue[] = [];
  payoutCrossChecks(values, crossIssues);
  // A column already refused by its own schema is not reported twice.
  const reported = new Set(issues.map((i) => i.column ?? ''));
  for (const issue of crossIssues) {
    const column = issue.column ?? '';
    if (!reported.has(column) && !skipped.has(column)) issues.push(issue);
  }

  if (!parsed.success || issues.length > 0) {
    return { ok: false, issues, reference: wellFormedReference(values.reference) };
  }
  const v = parsed.data;
  return {
    ok: true,
    row: {
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
    },
  };
}
