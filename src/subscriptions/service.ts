/**
 * Subscription management, shared by the CLI (`billing subs …`) and HTTP (`/subscriptions`):
 * create (JSON) and import (CSV), list, show, pause, resume, cancel. Input is validated here with
 * zod, field by field, so every problem names its column (and line, for CSV); the card token is
 * sealed here and only here, and never appears in a view, a message or a log line.
 *
 * CSV format (docs/subscriptions.md): UTF-8 (BOM accepted), header row required, column names
 * case-insensitive, `id,customer_email,card_token,amount,currency,interval,interval_count,
 * anchor,timezone` plus any `meta_*` columns; `interval_count` may be left out (1). A file is
 * validated completely before anything is stored: one invalid row rejects the whole file.
 */
import { createHmac } from 'node:crypto';
import { parse as parseCsv, type CsvError as CsvParseError } from 'csv-parse/sync';
import { z } from 'zod';
import {
  BILLING_INTERVALS,
  MAX_INTERVAL_COUNT,
  scheduleSchema,
  type Schedule,
} from './calendar.ts';
import type { Clock } from '../kernel/clock.ts';
import { idComponentSchema, SUBSCRIPTION_ID_MAX } from '../kernel/ids.ts';
import {
  CHARGE_CURRENCIES,
  formatMajor,
  parseMajorAmount,
  type AmountMinor,
} from '../kernel/money.ts';
import {
  cancelSubscription,
  createSubscription,
  isRefusal,
  nextChargeAt,
  pauseSubscription,
  resumeSubscription,
  type ActionRefusal,
  type Decision,
  type NewSubscription,
  type Subscription,
  type SubscriptionStatus,
  SUBSCRIPTION_STATUSES,
} from './rules.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { enqueueDunningRetries } from './jobs.ts';
import type { RedisIntentStore } from '../payments/store/intent-store.ts';
import type { Sealer } from '../kernel/ports.ts';
import { RedisSubscriptionStore } from './store/subscription-store.ts';

export interface SubscriptionServiceDeps {
  subs: RedisSubscriptionStore;
  /** For `show`: the states of the subscription's recent charges. */
  intents: RedisIntentStore;
  /** Resume re-schedules open dunning retries. */
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  /** Keys the request hash, so a stored hash reveals nothing about a card token. */
  hashKey: Buffer;
  logger: Logger;
}

/** What the service needs of the application (the composition root's `App` fits). */
export interface ServiceApp {
  config: { redis: { prefix: string }; dataEncryptionKey: Buffer };
  redis: ConstructorParameters<typeof RedisSubscriptionStore>[0];
  store: RedisIntentStore;
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
}

/** Builds the service's dependencies from the application's adapters. */
export function subscriptionServiceDeps(app: ServiceApp): SubscriptionServiceDeps {
  return {
    subs: new RedisSubscriptionStore(app.redis, app.config.redis.prefix),
    intents: app.store,
    dispatcher: app.dispatcher,
    sealer: app.sealer,
    clock: app.clock,
    hashKey: app.config.dataEncryptionKey,
    logger: app.logger,
  };
}

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
] as const;
type Column = (typeof SUBSCRIPTION_COLUMNS)[number];
const OPTIONAL_COLUMNS: readonly Column[] = ['interval_count'];
const META_PREFIX = 'meta_';
const META_KEY = /^[A-Za-z0-9_-]{1,64}$/;
const EMAIL_MAX = 254;

/** One problem with an input; `line` is set for CSV (the header is line 1). */
export interface InputIssue {
  line?: number;
  column?: string;
  message: string;
}

function shown(input: unknown): string {
  return typeof input === 'string' ? input : typeof input;
}

/** Field schemas: each takes the raw string (undefined when blank or absent). */
const fieldSchemas = {
  id: idComponentSchema('id', SUBSCRIPTION_ID_MAX),
  customer_email: z
    .email({
      error: (iss) =>
        iss.input === undefined
          ? 'customer_email is required'
          : `customer_email "${shown(iss.input)}" is not valid`,
    })
    .max(EMAIL_MAX, `customer_email is longer than ${EMAIL_MAX} characters`),
  // Opaque: only its shape is checked, and its value is never repeated in a message.
  card_token: z
    .string({ error: 'card_token is required' })
    .regex(/^[\x21-\x7e]+$/, 'card_token must be printable ASCII without spaces')
    .max(4096, 'card_token is longer than 4096 characters'),
  amount: z.string({ error: 'amount is required' }).transform((input, ctx): AmountMinor => {
    const parsed = parseMajorAmount(input);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.error });
      return z.NEVER;
    }
    return parsed.amount;
  }),
  currency: z.enum(CHARGE_CURRENCIES, {
    error: (iss) =>
      iss.input === undefined
        ? 'currency is required'
        : `currency "${shown(iss.input)}" is not allowed (use ${CHARGE_CURRENCIES.join(', ')})`,
  }),
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
  anchor: z
    .string({ error: 'anchor is required' })
    .refine((a) => scheduleSchema.shape.anchor.safeParse(a).success, {
      error: (iss) =>
        `anchor "${shown(iss.input)}" must be an ISO 8601 instant with Z or an offset, e.g. 2025-01-31T09:00:00+01:00`,
    }),
  timezone: z
    .string({ error: 'timezone is required' })
    .refine((tz) => scheduleSchema.shape.timezone.safeParse(tz).success, {
      error: (iss) => `timezone "${shown(iss.input)}" is not an IANA zone (e.g. Africa/Lagos)`,
    }),
} satisfies Record<Column, z.ZodType>;

/** A validated input: everything but the sealed token. */
export interface SubscriptionInput {
  id: string;
  customerEmail: string;
  cardToken: string;
  amount: AmountMinor;
  currency: Subscription['currency'];
  schedule: Schedule;
  metadata: Record<string, string>;
}

/** Validates one record given as column → raw value (blank values already undefined). */
export function parseSubscriptionFields(
  fields: Partial<Record<Column, string>>,
  metadata: Record<string, string>,
): { ok: true; input: SubscriptionInput } | { ok: false; issues: InputIssue[] } {
  const issues: InputIssue[] = [];
  const out: Partial<Record<Column, unknown>> = {};
  for (const column of SUBSCRIPTION_COLUMNS) {
    const res = fieldSchemas[column].safeParse(fields[column]);
    if (res.success) out[column] = res.data;
    else for (const i of res.error.issues) issues.push({ column, message: i.message });
  }
  if (issues.length > 0) return { ok: false, issues };
  return {
    ok: true,
    input: {
      id: out.id as string,
      customerEmail: out.customer_email as string,
      cardToken: out.card_token as string,
      amount: out.amount as AmountMinor,
      currency: out.currency as Subscription['currency'],
      schedule: {
        anchor: out.anchor as string,
        timezone: out.timezone as string,
        interval: out.interval as Schedule['interval'],
        intervalCount: out.interval_count as number,
      },
      metadata,
    },
  };
}

/**
 * Validates a `POST /subscriptions` body: the CSV fields as JSON strings (`interval_count` may be
 * a number), metadata as `metadata: { … }` and/or `meta_*` fields.
 */
export function parseSubscriptionBody(
  body: unknown,
): { ok: true; input: SubscriptionInput } | { ok: false; issues: InputIssue[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, issues: [{ message: 'the body must be a JSON object' }] };
  }
  const issues: InputIssue[] = [];
  const fields: Partial<Record<Column, string>> = {};
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    if (name === 'metadata') {
      const meta = z.record(z.string().regex(META_KEY), z.string().max(1024)).safeParse(value);
      if (!meta.success) {
        issues.push({
          column: 'metadata',
          message: 'metadata must be an object of strings with keys of letters, digits, "_" or "-"',
        });
      } else Object.assign(metadata, meta.data);
      continue;
    }
    if (name.toLowerCase().startsWith(META_PREFIX)) {
      const key = name.slice(META_PREFIX.length);
      if (!META_KEY.test(key) || typeof value !== 'string') {
        issues.push({ column: name, message: `${name} must be a string with a short key` });
      } else metadata[key] = value;
      continue;
    }
    if (!(SUBSCRIPTION_COLUMNS as readonly string[]).includes(name)) {
      issues.push({ column: name, message: `unknown field ${name}` });
      continue;
    }
    if (name === 'interval_count' && typeof value === 'number') {
      fields.interval_count = String(value);
      continue;
    }
    if (typeof value !== 'string') {
      issues.push({ column: name, message: `${name} must be a string` });
      continue;
    }
    if (value.trim() !== '') fields[name as Column] = value.trim();
  }
  const parsed = parseSubscriptionFields(fields, metadata);
  if (!parsed.ok) issues.push(...parsed.issues);
  if (issues.length > 0 || !parsed.ok) return { ok: false, issues };
  return parsed;
}

function requestHash(hashKey: Buffer, input: SubscriptionInput): string {
  const canonical = JSON.stringify([
    input.id,
    input.customerEmail,
    input.cardToken,
    input.amount,
    input.currency,
    input.schedule.anchor,
    input.schedule.timezone,
    input.schedule.interval,
    input.schedule.intervalCount,
    Object.entries(input.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ]);
  return createHmac('sha256', hashKey).update(canonical).digest('hex');
}

function toNew(deps: SubscriptionServiceDeps, input: SubscriptionInput): NewSubscription {
  return {
    id: input.id,
    customerEmail: input.customerEmail,
    cardTokenSealed: deps.sealer.seal(input.cardToken),
    amount: input.amount,
    currency: input.currency,
    schedule: input.schedule,
    metadata: input.metadata,
    requestHash: requestHash(deps.hashKey, input),
  };
}

export type CreateSubscriptionResult =
  | { status: 'created' | 'existing'; subscription: Subscription }
  | { status: 'conflict'; subscription: Subscription }
  | { status: 'invalid'; issues: InputIssue[] };

/**
 * Creates a subscription from a JSON body. Idempotent on `id`: the same id and body return the
 * stored subscription (`existing`); the same id with a different body is a `conflict`.
 */
export async function createSubscriptionFromBody(
  deps: SubscriptionServiceDeps,
  body: unknown,
): Promise<CreateSubscriptionResult> {
  const parsed = parseSubscriptionBody(body);
  if (!parsed.ok) return { status: 'invalid', issues: parsed.issues };
  const fresh = createSubscription(toNew(deps, parsed.input), deps.clock.now());
  const res = await deps.subs.create(fresh);
  if (res.created) {
    logCreated(deps.logger, res.sub);
    return { status: 'created', subscription: res.sub };
  }
  return {
    status: res.sub.requestHash === fresh.requestHash ? 'existing' : 'conflict',
    subscription: res.sub,
  };
}

function logCreated(logger: Logger, sub: Subscription) {
  logger.info(
    {
      subscriptionId: sub.id,
      interval: sub.schedule.interval,
      intervalCount: sub.schedule.intervalCount,
      timezone: sub.schedule.timezone,
      amount: sub.amount,
      currency: sub.currency,
      nextPeriodStart: sub.nextPeriodStart,
    },
    'subscription created',
  );
}

export type ImportResult =
  | { ok: false; errors: InputIssue[] }
  | { ok: true; rows: number; created: string[]; existing: string[] };

interface ParsedRecord {
  info: { lines: number };
  record: string[];
}

function newlinesIn(record: readonly string[]): number {
  let n = 0;
  for (const f of record) for (let i = f.indexOf('\n'); i !== -1; i = f.indexOf('\n', i + 1)) n++;
  return n;
}

/** Parses and validates an import file completely; nothing is stored. */
export function parseSubscriptionsCsv(
  text: string | Buffer,
):
  | { ok: true; rows: { line: number; input: SubscriptionInput }[] }
  | { ok: false; errors: InputIssue[] } {
  let records: ParsedRecord[];
  try {
    records = parseCsv(text, {
      bom: true,
      info: true,
      skip_empty_lines: true,
      relax_column_count: true,
    }) as unknown as ParsedRecord[];
  } catch (err) {
    const e = err as CsvParseError & { lines?: number };
    // The parser's message quotes no field values; its code and line say what and where.
    return {
      ok: false,
      errors: [{ line: e.lines ?? 1, message: `the file is not valid CSV (${e.code})` }],
    };
  }
  const header = records[0];
  if (!header) return { ok: false, errors: [{ line: 1, message: 'the file is empty' }] };

  const errors: InputIssue[] = [];
  const slots: ({ column: Column } | { meta: string } | undefined)[] = [];
  const seen = new Set<string>();
  header.record.forEach((raw) => {
    const name = raw.trim().toLowerCase();
    if (seen.has(name)) {
      errors.push({ line: 1, column: name, message: `column ${name} appears twice` });
      slots.push(undefined);
      return;
    }
    seen.add(name);
    if ((SUBSCRIPTION_COLUMNS as readonly string[]).includes(name)) {
      slots.push({ column: name as Column });
    } else if (name.startsWith(META_PREFIX) && META_KEY.test(name.slice(META_PREFIX.length))) {
      slots.push({ meta: raw.trim().slice(META_PREFIX.length) });
    } else {
      errors.push({
        line: 1,
        column: raw.trim(),
        message: `unknown column "${raw.trim()}" (use ${SUBSCRIPTION_COLUMNS.join(', ')} or meta_*)`,
      });
      slots.push(undefined);
    }
  });
  for (const column of SUBSCRIPTION_COLUMNS) {
    if (!seen.has(column) && !OPTIONAL_COLUMNS.includes(column)) {
      errors.push({ line: 1, column, message: `required column ${column} is missing` });
    }
  }
  if (errors.length > 0) return { ok: false, errors };

  const rows: { line: number; input: SubscriptionInput }[] = [];
  const ids = new Map<string, number>();
  for (const { info, record } of records.slice(1)) {
    const line = info.lines - newlinesIn(record);
    if (record.length !== slots.length) {
      errors.push({
        line,
        message: `expected ${slots.length} fields (as in the header), found ${record.length}`,
      });
      continue;
    }
    const fields: Partial<Record<Column, string>> = {};
    const metadata: Record<string, string> = {};
    record.forEach((value, i) => {
      const slot = slots[i];
      const v = value.trim();
      if (!slot || v === '') return;
      if ('column' in slot) fields[slot.column] = v;
      else metadata[slot.meta] = v;
    });
    const parsed = parseSubscriptionFields(fields, metadata);
    if (!parsed.ok) {
      for (const issue of parsed.issues) errors.push({ line, ...issue });
      continue;
    }
    const key = parsed.input.id.toLowerCase();
    const previous = ids.get(key);
    if (previous !== undefined) {
      errors.push({
        line,
        column: 'id',
        message: `id "${parsed.input.id}" is already used on line ${previous} (ids are unique in a file, ignoring case)`,
      });
      continue;
    }
    ids.set(key, line);
    rows.push({ line, input: parsed.input });
  }
  if (rows.length === 0 && errors.length === 0) {
    errors.push({ line: 1, message: 'the file has a header but no subscriptions' });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, rows };
}

/**
 * Imports a CSV of subscriptions: validates the whole file, refuses it if any row is invalid or
 * reuses an existing id with different details, then creates the new ones. Importing the same
 * file again creates nothing (every row is `existing`).
 */
export async function importSubscriptions(
  deps: SubscriptionServiceDeps,
  text: string | Buffer,
): Promise<ImportResult> {
  const parsed = parseSubscriptionsCsv(text);
  if (!parsed.ok) return parsed;
  const now = deps.clock.now();
  const fresh = parsed.rows.map(({ input }) => createSubscription(toNew(deps, input), now));
  const stored = await deps.subs.getMany(fresh.map((s) => s.id));
  const errors: InputIssue[] = [];
  const existing: string[] = [];
  const toCreate: Subscription[] = [];
  fresh.forEach((sub, i) => {
    const found = stored[i];
    const line = parsed.rows[i]?.line;
    if (!found) toCreate.push(sub);
    else if (found.sub.requestHash === sub.requestHash) existing.push(sub.id);
    else
      errors.push({
        ...(line !== undefined ? { line } : {}),
        column: 'id',
        message: `subscription ${sub.id} already exists with different details`,
      });
  });
  if (errors.length > 0) return { ok: false, errors };
  const created = await deps.subs.createMany(toCreate);
  const createdIds: string[] = [];
  toCreate.forEach((sub, i) => {
    if (created[i]) {
      createdIds.push(sub.id);
      logCreated(deps.logger, sub);
    } else existing.push(sub.id);
  });
  return { ok: true, rows: parsed.rows.length, created: createdIds, existing };
}

/** The public view: PRODUCT.md section 7's fields, no card token. */
export interface SubscriptionView {
  id: string;
  customer_email: string;
  amount: string;
  amount_minor: number;
  currency: string;
  interval: string;
  interval_count: number;
  anchor: string;
  timezone: string;
  status: SubscriptionStatus;
  /** The latest period paid for. */
  current_period_start: string | null;
  current_period_end: string | null;
  /** The next charge of any kind: a dunning retry while one is open, else the next period. */
  next_charge_at: string | null;
  /** Start of the first period not yet billed. */
  next_period_start: string;
  metadata: Record<string, string>;
  dunning: { key: string; attempt: number; retry: number; retry_at: string; reason: string }[];
  skipped_periods: number;
  created_at: string;
  updated_at: string;
  paused_at?: string;
  canceled_at?: string;
  cancel_reason?: string;
  charges?: { key: string; state: string; attempt: number; reason?: string }[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Builds the public view of a subscription. */
export function toSubscriptionView(sub: Subscription): SubscriptionView {
  const next = nextChargeAt(sub);
  return {
    id: sub.id,
    customer_email: sub.customerEmail,
    amount: formatMajor(sub.amount),
    amount_minor: sub.amount,
    currency: sub.currency,
    interval: sub.schedule.interval,
    interval_count: sub.schedule.intervalCount,
    anchor: sub.schedule.anchor,
    timezone: sub.schedule.timezone,
    status: sub.status,
    current_period_start: sub.currentPeriod ? iso(sub.currentPeriod.start) : null,
    current_period_end: sub.currentPeriod ? iso(sub.currentPeriod.end) : null,
    next_charge_at: next === null ? null : iso(next),
    next_period_start: iso(sub.nextPeriodStart),
    metadata: sub.metadata,
    dunning: sub.dunning.map((d) => ({
      key: d.key,
      attempt: d.attempt,
      retry: d.step + 1,
      retry_at: iso(d.dueAt),
      reason: d.reason,
    })),
    skipped_periods: sub.skippedPeriods,
    created_at: iso(sub.createdAt),
    updated_at: iso(sub.updatedAt),
    ...(sub.pausedAt !== undefined ? { paused_at: iso(sub.pausedAt) } : {}),
    ...(sub.canceledAt !== undefined ? { canceled_at: iso(sub.canceledAt) } : {}),
    ...(sub.cancelReason !== undefined ? { cancel_reason: sub.cancelReason } : {}),
  };
}

/** One subscription with its most recent charges, or undefined. */
export async function showSubscription(
  deps: SubscriptionServiceDeps,
  id: string,
  recentCharges = 10,
): Promise<SubscriptionView | undefined> {
  const found = await deps.subs.get(id);
  if (!found) return undefined;
  const keys = await deps.subs.intentKeys(id, recentCharges);
  const intents = await Promise.all(keys.map((k) => deps.intents.get(k)));
  return {
    ...toSubscriptionView(found.sub),
    charges: intents.flatMap((i) =>
      i
        ? [
            {
              key: i.key,
              state: i.state,
              attempt: i.attempt,
              ...(i.reason !== undefined ? { reason: i.reason } : {}),
            },
          ]
        : [],
    ),
  };
}

export const listQuerySchema = z.object({
  status: z.enum(SUBSCRIPTION_STATUSES).optional(),
  limit: z.number().int().min(1).max(1_000).default(50),
  after: z.string().optional(),
});

/** A page of subscriptions by id; `next` is the cursor of the following page. */
export async function listSubscriptions(
  deps: SubscriptionServiceDeps,
  query: z.input<typeof listQuerySchema>,
): Promise<{ items: SubscriptionView[]; next?: string }> {
  const q = listQuerySchema.parse(query);
  const items: SubscriptionView[] = [];
  let after = q.after;
  // A status filter reads pages until it has `limit` matches or runs out.
  for (;;) {
    const ids = await deps.subs.listIds({ ...(after !== undefined ? { after } : {}), limit: 500 });
    if (ids.length === 0) return { items };
    const found = await deps.subs.getMany(ids);
    for (const [i, f] of found.entries()) {
      if (!f || (q.status !== undefined && f.sub.status !== q.status)) continue;
      items.push(toSubscriptionView(f.sub));
      if (items.length === q.limit) {
        const more = i < ids.length - 1 || ids.length === 500;
        return more ? { items, next: f.sub.id } : { items };
      }
    }
    after = ids[ids.length - 1];
  }
}

export type ActionName = 'pause' | 'resume' | 'cancel';
export type ActionResult =
  | { status: 'ok'; changed: boolean; subscription: Subscription }
  | { status: 'not_found' }
  | { status: 'refused'; code: ActionRefusal['refused']; subscription: Subscription };

const ACTIONS: Record<ActionName, (sub: Subscription, now: number) => Decision | ActionRefusal> = {
  pause: pauseSubscription,
  resume: resumeSubscription,
  cancel: cancelSubscription,
};

/**
 * Pauses, resumes or cancels (subscriptions/rules.ts rule 8). Repeating an action changes
 * nothing; pausing or resuming a canceled subscription is refused.
 */
export async function applyAction(
  deps: SubscriptionServiceDeps,
  id: string,
  action: ActionName,
): Promise<ActionResult> {
  const now = deps.clock.now();
  const res = await deps.subs.mutate<Decision | ActionRefusal>(id, (sub) => {
    const d = ACTIONS[action](sub, now);
    return isRefusal(d) ? { decision: { events: [] }, value: d } : { decision: d, value: d };
  });
  if (!res.found) return { status: 'not_found' };
  if (isRefusal(res.value))
    return { status: 'refused', code: res.value.refused, subscription: res.sub };
  if (res.value.retries.length > 0) {
    await enqueueDunningRetries(deps.dispatcher, res.value.retries, now);
  }
  if (res.saved) {
    deps.logger.info(
      { subscriptionId: id, action, status: res.sub.status },
      `subscription ${action === 'cancel' ? 'canceled' : action === 'pause' ? 'paused' : 'resumed'}`,
    );
  }
  return { status: 'ok', changed: res.saved, subscription: res.sub };
}
