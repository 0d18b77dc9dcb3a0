/**
 * Subscription management, shared by the CLI (`billing subs …`) and HTTP (`/subscriptions`):
 * create (JSON) and import (CSV), list and show; the actions and changes are in manage.ts. Input
 * is validated in `import.ts` (every problem names its field, or its line and column for CSV);
 * the card token is sealed here (and in manage.ts for a new one) and never appears in a view, a
 * message or a log line. A file is validated completely before anything is stored: one invalid
 * row rejects the whole file.
 *
 * Time: a subscription created under a test clock (test mode only) is created at the clock's
 * time, and a trial must end after it (test-clocks.ts).
 */
import { z } from 'zod';
import { UnreadableRecordError } from '../kernel/errors.ts';
import type { Logger } from '../infra/logger.ts';
import { shown } from '../input/fields.ts';
import { anchorInZone, instantMs } from './calendar.ts';
import {
  parseSubscriptionBody,
  parseSubscriptionsCsv,
  type FieldIssue,
  type InputIssue,
  type SubscriptionInput,
} from './import.ts';
import { createdEvent } from './lifecycle.ts';
import { TestClockGoneError } from './ports.ts';
import {
  createSubscription,
  type NewSubscription,
  type Subscription,
  SUBSCRIPTION_STATUSES,
} from './record.ts';
import type { SubscriptionServiceDeps } from './service-deps.ts';
import { toSubscriptionView, type SubscriptionView } from './view.ts';

export {
  subscriptionServiceDeps,
  type ServiceApp,
  type SubscriptionServiceDeps,
} from './service-deps.ts';
export { toSubscriptionView, type SubscriptionView } from './view.ts';
export {
  actionRefusalMessage,
  applyAction,
  PAST,
  patchSubscription,
  REFUSAL_ERROR_CODE,
  type ActionName,
  type ActionOptions,
  type ActionResult,
  type PatchResult,
  type Refusal,
} from './manage.ts';

/** What a subscription's request hash covers. */
function canonicalRequest(input: SubscriptionInput): string {
  return JSON.stringify([
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
    // Only when given, so the hashes of subscriptions created before these fields still match.
    ...(input.trialEnd !== undefined ? [['trial_end', instantMs(input.trialEnd)]] : []),
    ...(input.testClock !== undefined ? [['test_clock', input.testClock]] : []),
  ]);
}

/**
 * Whether a stored subscription was created by this request: its hash is the request's under
 * DATA_ENCRYPTION_KEY or, during a rotation, the previous key.
 */
function sameRequest(deps: SubscriptionServiceDeps, sub: Subscription, input: SubscriptionInput) {
  return (
    sub.requestHash !== undefined && deps.hasher.matches(sub.requestHash, canonicalRequest(input))
  );
}

function toNew(deps: SubscriptionServiceDeps, input: SubscriptionInput): NewSubscription {
  return {
    id: input.id,
    customerEmail: input.customerEmail,
    cardTokenSealed: deps.sealer.seal(input.cardToken),
    amount: input.amount,
    currency: input.currency,
    // Stored in one form (the request hash keeps the form given, as it always did).
    schedule: {
      ...input.schedule,
      anchor: anchorInZone(input.schedule.anchor, input.schedule.timezone),
    },
    metadata: input.metadata,
    ...(input.trialEnd !== undefined
      ? { trial: { end: instantMs(input.trialEnd), noticeMs: deps.trialWillEndNoticeMs } }
      : {}),
    ...(input.testClock !== undefined ? { testClock: input.testClock } : {}),
    requestHash: deps.hasher.digest(canonicalRequest(input)),
  };
}

/** When a new subscription is created: now, or its test clock's time; else why it cannot be. */
type CreationTime = { now: number } | { issue: FieldIssue } | { advancing: true };

async function creationTimes(
  deps: SubscriptionServiceDeps,
  inputs: readonly SubscriptionInput[],
): Promise<CreationTime[]> {
  const ids = [...new Set(inputs.flatMap((i) => (i.testClock ? [i.testClock] : [])))];
  // A clock being deleted is gone for a new subscription.
  const clocks = new Map(
    (await deps.subs.clocks.getMany(ids)).flatMap((c, i) =>
      c && c.clock.deleting !== true ? [[ids[i], c.clock]] : [],
    ),
  );
  return inputs.map((input): CreationTime => {
    const id = input.testClock;
    const now = id === undefined ? deps.clock.now() : clocks.get(id)?.frozenTime;
    if (id !== undefined && !deps.testMode)
      return {
        issue: {
          field: 'test_clock',
          message: 'test clocks exist only in test mode (a sk_test_ SAYSWITCH_SECRET_KEY)',
        },
      };
    if (id !== undefined && clocks.get(id)?.status === 'advancing') return { advancing: true };
    if (now === undefined)
      return { issue: { field: 'test_clock', message: `test_clock "${id}" does not exist` } };
    if (input.trialEnd !== undefined && instantMs(input.trialEnd) <= now)
      return {
        issue: {
          field: 'trial_end',
          message: `trial_end must be after ${new Date(now).toISOString()}`,
        },
      };
    return { now };
  });
}

export type CreateSubscriptionResult =
  | { status: 'created' | 'existing'; subscription: Subscription }
  | { status: 'conflict'; subscription: Subscription }
  | { status: 'invalid'; issues: FieldIssue[] }
  /** Its test clock is advancing: try again once it is ready. */
  | { status: 'clock_advancing' };

/**
 * Creates a subscription from a JSON body, with `subscription.created` in the same step.
 * Idempotent on `id`: the same id and body return the stored subscription (`existing`, even once
 * its trial has begun or ended); the same id with a different body is a `conflict`.
 */
export async function createSubscriptionFromBody(
  deps: SubscriptionServiceDeps,
  body: unknown,
): Promise<CreateSubscriptionResult> {
  const parsed = parseSubscriptionBody(body);
  if (!parsed.ok) return { status: 'invalid', issues: parsed.issues };
  const known = await deps.subs.get(parsed.input.id);
  if (known)
    return {
      status: sameRequest(deps, known.sub, parsed.input) ? 'existing' : 'conflict',
      subscription: known.sub,
    };
  const [time] = await creationTimes(deps, [parsed.input]);
  if (!time || 'advancing' in time) return { status: 'clock_advancing' };
  if ('issue' in time) return { status: 'invalid', issues: [time.issue] };
  const fresh = createSubscription(toNew(deps, parsed.input), time.now);
  let res: Awaited<ReturnType<typeof deps.subs.create>>;
  try {
    res = await deps.subs.create(fresh, [createdEvent(fresh)]);
  } catch (err) {
    // Its clock was deleted since it was read: nothing was stored.
    if (err instanceof TestClockGoneError)
      return { status: 'invalid', issues: [{ field: 'test_clock', message: err.message }] };
    throw err;
  }
  if (res.created) {
    logCreated(deps.logger, res.sub);
    return { status: 'created', subscription: res.sub };
  }
  return {
    status: sameRequest(deps, res.sub, parsed.input) ? 'existing' : 'conflict',
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
      ...(sub.trial ? { trialEnd: sub.trial.end } : {}),
      ...(sub.testClock !== undefined ? { testClock: sub.testClock } : {}),
    },
    'subscription created',
  );
}

export type ImportResult =
  | { ok: false; errors: InputIssue[] }
  | { ok: true; rows: number; created: string[]; existing: string[] };

/**
 * Imports a CSV of subscriptions: validates the whole file, refuses it if any row is invalid or
 * reuses an existing id with different details, then creates the new ones (each with
 * `subscription.created`). Importing the same file again creates nothing (every row is
 * `existing`).
 */
export async function importSubscriptions(
  deps: SubscriptionServiceDeps,
  text: string | Buffer,
): Promise<ImportResult> {
  const parsed = await parseSubscriptionsCsv(text);
  if (!parsed.ok) return parsed;
  const inputs = parsed.rows.map((r) => r.input);
  const stored = await deps.subs.getMany(inputs.map((i) => i.id));
  const otherCase = await deps.subs.otherCaseOf(inputs.map((i) => i.id));
  const times = await creationTimes(deps, inputs);
  const errors: InputIssue[] = [];
  const existing: string[] = [];
  const toCreate: Subscription[] = [];
  inputs.forEach((input, i) => {
    const found = stored[i];
    const line = parsed.rows[i]?.line;
    const at = line !== undefined ? { line } : {};
    const time = times[i];
    if (found) {
      if (sameRequest(deps, found.sub, input)) existing.push(input.id);
      else
        errors.push({
          ...at,
          column: 'id',
          message: `subscription ${shown(input.id)} already exists with different details`,
        });
    } else if (otherCase[i] !== undefined)
      errors.push({
        ...at,
        column: 'id',
        message: `id ${shown(input.id)} is subscription ${shown(otherCase[i])}'s in another case (ids are one id ignoring case)`,
      });
    else if (!time || 'advancing' in time)
      errors.push({
        ...at,
        column: 'test_clock',
        message: `test clock ${input.testClock ?? ''} is advancing; import again once it is ready`,
      });
    else if ('issue' in time)
      errors.push({
        ...at,
        ...(time.issue.field !== undefined ? { column: time.issue.field } : {}),
        message: time.issue.message,
      });
    else toCreate.push(createSubscription(toNew(deps, input), time.now));
  });
  if (errors.length > 0) return { ok: false, errors };
  let created: boolean[];
  try {
    created = await deps.subs.createMany(toCreate, (sub) => [createdEvent(sub)]);
  } catch (err) {
    // A clock deleted while the file was imported: the rows on it were not created; others
    // may have been (importing again creates the rest).
    if (err instanceof TestClockGoneError)
      return {
        ok: false,
        errors: [{ column: 'test_clock', message: `${err.message} (deleted during the import)` }],
      };
    throw err;
  }
  const createdIds: string[] = [];
  toCreate.forEach((sub, i) => {
    if (created[i]) {
      createdIds.push(sub.id);
      logCreated(deps.logger, sub);
    } else existing.push(sub.id);
  });
  return { ok: true, rows: parsed.rows.length, created: createdIds, existing };
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
  /** Only this customer's (ignoring case), from the store's email index. */
  customerEmail: z.string().optional(),
  limit: z.number().int().min(1).max(1_000).default(50),
  after: z.string().optional(),
});

/**
 * A subscription a list cannot read or show (another version's shape, a hand edit): left out of
 * the page, logged by id with what is wrong, so one record never fails every page it is on.
 * `GET /subscriptions/:id` still answers for it (an error), and the tick names it too.
 */
function reportUnlisted(logger: Logger, err: UnreadableRecordError): void {
  logger.error(
    { subscriptionId: err.id, why: err.why },
    'subscription cannot be read by this version: left out of the list',
  );
}

/** The list view of `sub`; undefined, reported, when it cannot be computed. */
function viewOrReport(logger: Logger, sub: Subscription): SubscriptionView | undefined {
  try {
    return toSubscriptionView(sub);
  } catch (err) {
    reportUnlisted(logger, UnreadableRecordError.of('subscription', sub.id, err));
    return undefined;
  }
}

/** A status-filtered page reads at most this many times `limit` subscriptions. */
export const LIST_SCAN_FACTOR = 20;

/**
 * A page of subscriptions by id; `next` is the cursor of the following page. A customer's email
 * reads that customer's ids only (the store's index). A status filter is checked on the records
 * read, and one page reads at most LIST_SCAN_FACTOR × `limit` of them: a rare status answers a
 * short (even empty) page with a cursor to go on, never a scan of the store.
 */
export async function listSubscriptions(
  deps: SubscriptionServiceDeps,
  query: z.input<typeof listQuerySchema>,
): Promise<{ items: SubscriptionView[]; next?: string }> {
  const q = listQuerySchema.parse(query);
  const email = q.customerEmail?.toLowerCase();
  const items: SubscriptionView[] = [];
  let after = q.after;
  let budget = q.limit * LIST_SCAN_FACTOR;
  while (budget > 0) {
    const want = Math.min(budget, q.status === undefined ? q.limit : 500);
    const ids = await deps.subs.listIds({
      ...(after !== undefined ? { after } : {}),
      ...(q.customerEmail !== undefined ? { customerEmail: q.customerEmail } : {}),
      limit: want,
    });
    if (ids.length === 0) return { items };
    budget -= ids.length;
    const found = await deps.subs.readMany(ids);
    for (const [i, f] of found.entries()) {
      after = ids[i];
      if (f instanceof UnreadableRecordError) {
        reportUnlisted(deps.logger, f);
        continue;
      }
      if (!f || (q.status !== undefined && f.sub.status !== q.status)) continue;
      if (email !== undefined && f.sub.customerEmail.toLowerCase() !== email) continue;
      const view = viewOrReport(deps.logger, f.sub);
      if (!view) continue;
      items.push(view);
      if (items.length === q.limit) {
        const more = i < ids.length - 1 || ids.length === want;
        return more ? { items, next: f.sub.id } : { items };
      }
    }
    if (ids.length < want) return { items };
  }
  return after === undefined ? { items } : { items, next: after };
}
