/**
 * Management input at the boundary (HTTP and CLI): the body of `PATCH /subscriptions/:id` and of
 * the pause and cancel actions. Built from the shared field rules (`input/fields.ts`: amount,
 * currency, card token — which refuses card numbers and never repeats a token — meta keys and
 * values) and the schedule's (calendar.ts). Every problem names its field; an unknown field is a
 * problem, and so is a field that cannot change (`id`, `timezone`, …).
 */
import { z } from 'zod';
import { CHARGE_CURRENCIES, type AmountMinor, type ChargeCurrency } from '../kernel/money.ts';
import {
  amountSchema,
  cardTokenSchema,
  currencySchema,
  metaKeyProblem,
  metaValueProblem,
  shown,
} from '../input/fields.ts';
import { NOT_AN_OBJECT, WHOLE_BODY, type FieldIssue } from '../input/record.ts';
import { BILLING_INTERVALS, MAX_INTERVAL_COUNT, type BillingInterval } from './calendar.ts';
import { instantMs } from './calendar.ts';
import { instantSchema, isInstant } from './import.ts';

/** A `PATCH` body, validated; the card token not sealed yet. */
export interface PatchInput {
  amount?: AmountMinor;
  currency?: ChargeCurrency;
  cardToken?: string;
  interval?: BillingInterval;
  intervalCount?: number;
  anchor?: string;
  metadata?: Record<string, string | null>;
  cancelAtPeriodEnd?: boolean;
  /** An ISO 8601 instant with an offset, or `now`. */
  trialEnd?: string;
}

/** The fields `PATCH /subscriptions/:id` takes, in documented order. */
export const PATCH_FIELDS = [
  'amount',
  'currency',
  'card_token',
  'interval',
  'interval_count',
  'anchor',
  'metadata',
  'cancel_at_period_end',
  'trial_end',
] as const;

/** Fields of a subscription that no change can touch (create another subscription instead). */
const FIXED = ['id', 'customer_email', 'timezone', 'test_clock'] as const;

const intervalCountSchema = z
  .union([z.number(), z.string().regex(/^\d{1,4}$/)], {
    error: `interval_count must be a whole number from 1 to ${MAX_INTERVAL_COUNT}`,
  })
  .transform((v) => Number(v))
  .refine((n) => Number.isInteger(n) && n >= 1 && n <= MAX_INTERVAL_COUNT, {
    error: `interval_count must be a whole number from 1 to ${MAX_INTERVAL_COUNT}`,
  });

const fieldSchemas = {
  amount: amountSchema,
  currency: currencySchema(CHARGE_CURRENCIES),
  card_token: cardTokenSchema,
  interval: z.enum(BILLING_INTERVALS, {
    error: (iss) => `interval "${shown(iss.input)}" must be one of ${BILLING_INTERVALS.join(', ')}`,
  }),
  interval_count: intervalCountSchema,
  anchor: instantSchema('anchor'),
  cancel_at_period_end: z.boolean({ error: 'cancel_at_period_end must be true or false' }),
  trial_end: z
    .string()
    .refine((v) => v === 'now' || isInstant(v), {
      error: (iss) =>
        `trial_end "${shown(iss.input)}" must be now or an ISO 8601 instant with Z or an offset, e.g. 2025-01-31T09:00:00+01:00`,
    })
    .refine(
      (v) => v === 'now' || !isInstant(v) || instantSchema('trial_end').safeParse(v).success,
      {
        error: (iss) => instantSchema('trial_end').safeParse(iss.input).error?.issues[0]?.message,
      },
    )
    .describe(
      'a new end of the trial, during the trial only: an instant not in the past, or "now" to end it now (the anchor moves with it)',
    ),
} as const;

/**
 * The bodies {@link parseSubscriptionPatch}, {@link parsePauseBody} and {@link parseCancelBody}
 * accept, for the OpenAPI document, from the same field schemas (the parsers validate).
 */
export const subscriptionPatchBodySchema = z.strictObject({
  ...Object.fromEntries(Object.entries(fieldSchemas).map(([k, v]) => [k, v.optional()])),
  metadata: z
    .record(z.string(), z.string().nullable())
    .optional()
    .describe('keys to set, or null to remove one'),
});
export const pauseBodySchema = z.strictObject({
  resume_at: instantSchema('resume_at')
    .nullable()
    .optional()
    .describe('when it resumes by itself; null or absent: until resumed'),
});
export const cancelBodySchema = z.strictObject({
  at_period_end: z
    .boolean()
    .optional()
    .describe('cancel when the period paid for ends instead of now'),
});

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function firstIssue(field: string, error: z.ZodError): FieldIssue {
  return { field, message: error.issues[0]?.message ?? `${field} is invalid` };
}

/** `metadata`: keys to set (strings) or remove (null). */
function parseMetadata(
  value: unknown,
): { ok: true; value: Record<string, string | null> } | { ok: false; issue: FieldIssue } {
  const bad = (message: string) => ({ ok: false as const, issue: { field: 'metadata', message } });
  if (!isObject(value))
    return bad('metadata must be an object of keys to strings (or null to remove one)');
  const out: Record<string, string | null> = {};
  for (const [key, v] of Object.entries(value)) {
    const keyProblem = metaKeyProblem('field', key, key);
    if (keyProblem !== undefined)
      return bad(
        `metadata key "${shown(key)}" may contain only letters, digits, "_" and "-" (1 to 64)`,
      );
    if (v !== null && typeof v !== 'string') return bad(`metadata.${key} must be a string or null`);
    const valueProblem = v === null ? undefined : metaValueProblem(key, v);
    if (valueProblem !== undefined) return bad(valueProblem);
    out[key] = v;
  }
  return { ok: true, value: out };
}

/** Validates a `PATCH /subscriptions/:id` body; every problem by field. */
export function parseSubscriptionPatch(
  body: unknown,
): { ok: true; input: PatchInput } | { ok: false; issues: FieldIssue[] } {
  if (!isObject(body))
    return {
      ok: false,
      issues: [NOT_AN_OBJECT],
    };
  const issues: FieldIssue[] = [];
  const input: PatchInput = {};
  for (const [name, value] of Object.entries(body)) {
    if ((FIXED as readonly string[]).includes(name)) {
      issues.push({
        field: name,
        message: `${name} cannot be changed (create another subscription instead)`,
      });
      continue;
    }
    if (name === 'metadata') {
      const m = parseMetadata(value);
      if (m.ok) input.metadata = m.value;
      else issues.push(m.issue);
      continue;
    }
    // Own names only: `in` also finds `constructor`, `toString`… on Object.prototype.
    if (!Object.hasOwn(fieldSchemas, name)) {
      issues.push({
        field: shown(name),
        message: `unknown field "${shown(name)}"; a change takes ${PATCH_FIELDS.join(', ')}`,
      });
      continue;
    }
    const key = name as keyof typeof fieldSchemas;
    const stringOnly = key !== 'interval_count' && key !== 'cancel_at_period_end';
    if (stringOnly && typeof value !== 'string') {
      issues.push({ field: name, message: `${name} must be a string` });
      continue;
    }
    const parsed = fieldSchemas[key].safeParse(typeof value === 'string' ? value.trim() : value);
    if (!parsed.success) {
      issues.push(firstIssue(name, parsed.error));
      continue;
    }
    assign(input, key, parsed.data);
  }
  if (issues.length === 0 && Object.keys(input).length === 0)
    issues.push({
      field: WHOLE_BODY,
      message: `nothing to change: give at least one of ${PATCH_FIELDS.join(', ')}`,
    });
  return issues.length > 0 ? { ok: false, issues } : { ok: true, input };
}

function assign(input: PatchInput, key: keyof typeof fieldSchemas, value: unknown): void {
  switch (key) {
    case 'amount':
      input.amount = value as AmountMinor;
      break;
    case 'currency':
      input.currency = value as ChargeCurrency;
      break;
    case 'card_token':
      input.cardToken = value as string;
      break;
    case 'interval':
      input.interval = value as BillingInterval;
      break;
    case 'interval_count':
      input.intervalCount = value as number;
      break;
    case 'anchor':
      input.anchor = value as string;
      break;
    case 'cancel_at_period_end':
      input.cancelAtPeriodEnd = value as boolean;
      break;
    case 'trial_end':
      input.trialEnd = value as string;
      break;
  }
}

/** Validates the body of a pause: `{ "resume_at": <instant> | null }`, or nothing. */
export function parsePauseBody(
  body: unknown,
): { ok: true; resumeAt?: number | null } | { ok: false; issues: FieldIssue[] } {
  const r = parseActionBody<number | null>(body, 'resume_at', (v) => {
    if (v === null) return { ok: true, value: null };
    if (typeof v !== 'string')
      return {
        ok: false,
        issue: { field: 'resume_at', message: 'resume_at must be an ISO 8601 instant or null' },
      };
    const parsed = instantSchema('resume_at').safeParse(v.trim());
    if (!parsed.success) return { ok: false, issue: firstIssue('resume_at', parsed.error) };
    return { ok: true, value: instantMs(parsed.data) };
  });
  if (!r.ok) return r;
  return r.value === undefined ? { ok: true } : { ok: true, resumeAt: r.value };
}

/** Validates the body of a cancel: `{ "at_period_end": true | false }`, or nothing. */
export function parseCancelBody(
  body: unknown,
): { ok: true; atPeriodEnd?: boolean } | { ok: false; issues: FieldIssue[] } {
  const r = parseActionBody<boolean>(body, 'at_period_end', (v) =>
    typeof v === 'boolean'
      ? { ok: true, value: v }
      : {
          ok: false,
          issue: { field: 'at_period_end', message: 'at_period_end must be true or false' },
        },
  );
  if (!r.ok) return r;
  return r.value === undefined ? { ok: true } : { ok: true, atPeriodEnd: r.value };
}

type One<T> = { ok: true; value: T } | { ok: false; issue: FieldIssue };

/** A body of at most one field, `field`; an absent body or `{}` gives no value. */
function parseActionBody<T>(
  body: unknown,
  field: string,
  parse: (v: unknown) => One<T>,
): { ok: true; value?: T } | { ok: false; issues: FieldIssue[] } {
  if (body === undefined || body === null || body === '') return { ok: true };
  if (!isObject(body))
    return {
      ok: false,
      issues: [NOT_AN_OBJECT],
    };
  const issues: FieldIssue[] = [];
  let value: { v: T } | undefined;
  for (const [name, v] of Object.entries(body)) {
    if (name !== field) {
      issues.push({
        field: shown(name),
        message: `unknown field "${shown(name)}"; this action takes ${field}`,
      });
      continue;
    }
    const r = parse(v);
    if (r.ok) value = { v: r.value };
    else issues.push(r.issue);
  }
  if (issues.length > 0) return { ok: false, issues };
  return value === undefined ? { ok: true } : { ok: true, value: value.v };
}
