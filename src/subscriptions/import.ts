/**
 * Subscription input: the fields of an import file row and of a `POST /subscriptions` body
 * (docs/subscriptions.md), built on the shared input module: field schemas from
 * `input/fields.ts`, the record parser of `input/record.ts` (JSON problems name fields, CSV
 * problems lines and columns) and the streaming reader of `input/csv-reader.ts`. The schedule
 * fields (interval, anchor, timezone) are the calendar's, so this record kind lives here.
 *
 * CSV format: UTF-8 (BOM accepted), header row required, column names case-insensitive,
 * `id,customer_email,card_token,amount,currency,interval,interval_count,anchor,timezone` plus any
 * `meta_*` columns; `interval_count` may be left out (1), and so may the optional `trial_end` and
 * `test_clock` columns. With `trial_end` the `anchor` may be blank: the first period starts when
 * the trial ends (rule 10, record.ts), so an anchor given with it must be the same instant.
 * Values are trimmed. A file is validated completely before anything is stored: one invalid row
 * rejects the whole file.
 */
import { z } from 'zod';
import { CHARGE_CURRENCIES, type AmountMinor } from '../kernel/money.ts';
import { SUBSCRIPTION_ID_MAX } from '../kernel/ids.ts';
import {
  amountSchema,
  cardTokenSchema,
  currencySchema,
  emailSchema,
  idSchema,
  shown,
} from '../input/fields.ts';
import {
  jsonBodySchema,
  asRowIssues,
  parseJsonRecord,
  parseRecord,
  resolveNames,
  validateValues,
  type FieldIssue,
  type FieldLayout,
  type Issue,
  type RawValues,
  type RecordSpec,
  type RowIssue,
} from '../input/record.ts';
import { issueAt, type CsvInput } from '../input/csv-reader.ts';
import { readCsvTable, type CsvTableEnd } from '../input/csv-table.ts';
import {
  BILLING_INTERVALS,
  MAX_INTERVAL_COUNT,
  instantMs,
  scheduleSchema,
  type Schedule,
} from './calendar.ts';
import type { Subscription } from './record.ts';

export type { FieldIssue } from '../input/record.ts';

/** Columns of the import file and fields of `POST /subscriptions`, in documented order. */
export const SUBSCRIPTION_COLUMNS = [
  'id',
  'customer_email',
  'card_token',
  'amount',
  'currency',
  'interval',
  'interval_count',
  'anchor',
  'timezone',
  'trial_end',
  'test_clock',
] as const;
type Column = (typeof SUBSCRIPTION_COLUMNS)[number];
const OPTIONAL_COLUMNS: readonly Column[] = ['interval_count', 'trial_end', 'test_clock'];

/** One problem of an import file; `line` is the physical line (the header is line 1). */
export interface InputIssue {
  line?: number;
  column?: string;
  message: string;
}

/**
 * The instants input may name: every one is shown as RFC 3339, whose years have four digits, and
 * in a time zone up to 14 hours from UTC, so a day is kept from each end. Beyond them luxon reads
 * `+010000-01-01T00:00:00Z` (ISO 8601's expanded years) and the answers would carry dates no
 * client parses (`9999-12-31T23:59:59Z` is year 10000 in Lagos).
 */
export const INSTANT_RANGE = { from: '0001-01-02', to: '9999-12-30' } as const;
const INSTANT_MIN_MS = Date.parse(`${INSTANT_RANGE.from}T00:00:00Z`);
const INSTANT_MAX_MS = Date.parse(`${INSTANT_RANGE.to}T23:59:59.999Z`);

/** Whether `a` is an ISO 8601 instant with Z or an offset (in range or not). */
export const isInstant = (a: string): boolean => scheduleSchema.shape.anchor.safeParse(a).success;

/** An ISO 8601 instant with Z or an offset (an anchor, a trial's end, a resume time). */
export function instantSchema(field: string) {
  return z
    .string({
      error: (iss) =>
        iss.input === undefined ? `${field} is required` : `${field} must be a string`,
    })
    .refine(isInstant, {
      error: (iss) =>
        `${field} "${shown(iss.input)}" must be an ISO 8601 instant with Z or an offset, e.g. 2025-01-31T09:00:00+01:00`,
    })
    .refine(
      (a) => {
        if (!isInstant(a)) return true;
        const ms = instantMs(a);
        return ms >= INSTANT_MIN_MS && ms <= INSTANT_MAX_MS;
      },
      {
        error: (iss) =>
          `${field} "${shown(iss.input)}" must be from ${INSTANT_RANGE.from} to ${INSTANT_RANGE.to} (UTC)`,
      },
    );
}

/** Rule 10: the anchor is required without a trial, and is the trial's end with one. */
function anchorAndTrial(values: Readonly<RawValues>): Issue[] {
  const { anchor, trial_end: trialEnd } = values;
  if (anchor === undefined && trialEnd === undefined)
    return [{ name: 'anchor', message: 'anchor is required (or trial_end)' }];
  if (anchor === undefined || trialEnd === undefined) return [];
  const valid = (v: string) => scheduleSchema.shape.anchor.safeParse(v).success;
  if (!valid(anchor) || !valid(trialEnd) || instantMs(anchor) === instantMs(trialEnd)) return [];
  return [
    {
      name: 'anchor',
      message:
        'anchor must be left out, or be the same instant as trial_end: the first period starts when the trial ends',
    },
  ];
}

/** Field schemas: each takes the raw string (undefined when blank or absent). */
const subscriptionFieldsSchema = z.object({
  id: idSchema('id', SUBSCRIPTION_ID_MAX),
  customer_email: emailSchema('customer_email'),
  card_token: cardTokenSchema,
  amount: amountSchema,
  currency: currencySchema(CHARGE_CURRENCIES),
  interval: z.enum(BILLING_INTERVALS, {
    error: (iss) =>
      iss.input === undefined
        ? 'interval is required'
        : `interval "${shown(iss.input)}" must be one of ${BILLING_INTERVALS.join(', ')}`,
  }),
  interval_count: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return 1;
      const n = /^\d{1,4}$/.test(v) ? Number(v) : NaN;
      if (!(n >= 1 && n <= MAX_INTERVAL_COUNT)) {
        ctx.addIssue({
          code: 'custom',
          message: `interval_count "${v}" must be a whole number from 1 to ${MAX_INTERVAL_COUNT}`,
        });
        return z.NEVER;
      }
      return n;
    }),
  // Required unless trial_end is given (crossChecks).
  anchor: instantSchema('anchor')
    .optional()
    .describe(
      "the first period's start; required unless trial_end is given, and then left out or the same instant",
    ),
  timezone: z
    .string({ error: 'timezone is required' })
    .refine((tz) => scheduleSchema.shape.timezone.safeParse(tz).success, {
      error: (iss) => `timezone "${shown(iss.input)}" is not an IANA zone (e.g. Africa/Lagos)`,
    }),
  trial_end: instantSchema('trial_end')
    .optional()
    .describe(
      'the end of a free trial: nothing is billed before it, and the first period starts then',
    ),
  test_clock: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'test_clock must be a test clock id (clock_…)')
    .optional(),
});
type SubscriptionFields = z.output<typeof subscriptionFieldsSchema>;

/** The subscription record kind, for the record parser. */
export const subscriptionSpec: RecordSpec<Column, typeof subscriptionFieldsSchema> = {
  kind: 'subscription',
  fields: SUBSCRIPTION_COLUMNS,
  requiredColumns: SUBSCRIPTION_COLUMNS.filter((c) => !OPTIONAL_COLUMNS.includes(c)),
  schema: subscriptionFieldsSchema,
  trim: true,
  jsonNumbers: ['interval_count'],
  crossChecks: anchorAndTrial,
};

/**
 * The `POST /subscriptions` body {@link parseSubscriptionBody} accepts, for the OpenAPI document:
 * the record's own field schemas, `metadata` as an object of strings, `meta_*` fields.
 */
export const subscriptionBodySchema = jsonBodySchema(
  subscriptionSpec,
  {
    metadata: z
      .record(z.string(), z.string())
      .optional()
      .describe(
        'your own metadata (merged with meta_* fields; a key in both needs the same value)',
      ),
  },
  'SubscriptionCreate',
  // anchorAndTrial: an anchor, or a trial whose end is the anchor.
  { anyOf: [{ required: ['anchor'] }, { required: ['trial_end'] }] },
);

/** A validated input: everything but the sealed token. */
export interface SubscriptionInput {
  id: string;
  customerEmail: string;
  cardToken: string;
  amount: AmountMinor;
  currency: Subscription['currency'];
  /** With a trial, `schedule.anchor` is its end (rule 10). */
  schedule: Schedule;
  metadata: Record<string, string>;
  /** The trial's end, as given (ISO 8601). */
  trialEnd?: string;
  testClock?: string;
}

function toInput(v: SubscriptionFields, metadata: Record<string, string>): SubscriptionInput {
  return {
    id: v.id,
    customerEmail: v.customer_email,
    cardToken: v.card_token,
    amount: v.amount,
    currency: v.currency,
    schedule: {
      // One of them is given (crossChecks), and they are the same instant when both are.
      anchor: v.trial_end ?? v.anchor ?? '',
      timezone: v.timezone,
      interval: v.interval,
      intervalCount: v.interval_count,
    },
    metadata,
    ...(v.trial_end !== undefined ? { trialEnd: v.trial_end } : {}),
    ...(v.test_clock !== undefined ? { testClock: v.test_clock } : {}),
  };
}

/** Validates one record given as column → raw value (blank values already undefined). */
export function parseSubscriptionFields(
  fields: Partial<Record<Column, string>>,
  metadata: Record<string, string>,
): { ok: true; input: SubscriptionInput } | { ok: false; issues: InputIssue[] } {
  const parsed = validateValues(subscriptionSpec, { ...fields }, metadata);
  if (!parsed.ok) return { ok: false, issues: asRowIssues(parsed.issues) };
  return { ok: true, input: toInput(parsed.data, parsed.meta) };
}

/**
 * Validates a `POST /subscriptions` body: the CSV fields as JSON strings (`interval_count` may be
 * a number), metadata as `metadata: { … }` and/or `meta_*` fields. Problems name fields.
 */
export function parseSubscriptionBody(
  body: unknown,
): { ok: true; input: SubscriptionInput } | { ok: false; issues: FieldIssue[] } {
  const parsed = parseJsonRecord(subscriptionSpec, body, { metaObject: 'metadata' });
  if (!parsed.ok) return parsed;
  return { ok: true, input: toInput(parsed.data, parsed.meta) };
}

/** Options of {@link parseSubscriptionsCsv}. */
export interface SubscriptionsCsvOptions {
  /** Longest accepted field, in UTF-8 bytes. Default 4096. */
  maxFieldBytes?: number;
  /** Longest accepted line, in bytes. Default 16384. */
  maxLineBytes?: number;
}

/** Parses and validates an import file completely; nothing is stored. */
export async function parseSubscriptionsCsv(
  input: CsvInput,
  options: SubscriptionsCsvOptions = {},
): Promise<
  | { ok: true; rows: { line: number; input: SubscriptionInput }[] }
  | { ok: false; errors: InputIssue[] }
> {
  const table = readCsvTable<FieldLayout>(input, {
    maxFieldBytes: options.maxFieldBytes,
    maxLineBytes: options.maxLineBytes,
    resolveHeader: (fields) => {
      const header = resolveNames(subscriptionSpec, fields, 'csv');
      return header.issues.length > 0
        ? { issues: asRowIssues(header.issues) }
        : { layout: header.layout };
    },
  });
  const errors: InputIssue[] = [];
  const rows: { line: number; input: SubscriptionInput }[] = [];
  const ids = new Map<string, number>();
  let end: CsvTableEnd<FieldLayout>;
  try {
    for (;;) {
      const step = await table.next();
      if (step.done === true) {
        end = step.value;
        break;
      }
      const { layout, line, fields, misaligned, oversized } = step.value;
      const issues: RowIssue[] = [...step.value.issues];
      if (misaligned) {
        for (const issue of issues) errors.push(issueAt(line, issue));
        continue;
      }
      const parsed = parseRecord(subscriptionSpec, layout, fields, 'csv', oversized);
      if (!parsed.ok) issues.push(...asRowIssues(parsed.issues));
      if (!parsed.ok || issues.length > 0) {
        for (const issue of issues) errors.push(issueAt(line, issue));
        continue;
      }
      const input = toInput(parsed.data, parsed.meta);
      const key = input.id.toLowerCase();
      const previous = ids.get(key);
      if (previous !== undefined) {
        errors.push({
          line,
          column: 'id',
          message: `id "${shown(input.id)}" is already used on line ${previous} (ids are unique in a file, ignoring case)`,
        });
        continue;
      }
      ids.set(key, line);
      rows.push({ line, input });
    }
  } finally {
    await table.return(undefined as never);
  }
  if (end.headerErrors.length > 0) return { ok: false, errors: end.headerErrors };
  if (end.fatal !== undefined) errors.push(end.fatal);
  else if (rows.length === 0 && errors.length === 0) {
    errors.push({ line: end.headerLine, message: 'the file has a header but no subscriptions' });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, rows };
}
