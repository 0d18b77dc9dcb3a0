/**
 * (About 400 lines: every management action shares the load-mutate-save and view code here.)
 *
 * Subscription management, shared by the CLI (`billing subs …`) and HTTP (`/subscriptions`):
 * create (JSON) and import (CSV), list, show, pause, resume, cancel. Input is validated in
 * `import.ts` (every problem names its field, or its line and column for CSV); the card token is
 * sealed here and only here, and never appears in a view, a message or a log line. A file is
 * validated completely before anything is stored: one invalid row rejects the whole file.
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../kernel/clock.ts';
import { formatMajor } from '../kernel/money.ts';
import {
  parseSubscriptionBody,
  parseSubscriptionsCsv,
  type FieldIssue,
  type InputIssue,
  type SubscriptionInput,
} from './import.ts';
import {
  cancelSubscription,
  isRefusal,
  pauseSubscription,
  resumeSubscription,
  type ActionRefusal,
} from './actions.ts';
import {
  awaitingOf,
  billingHold,
  createSubscription,
  heldReference,
  nextChargeAt,
  type Decision,
  type NewSubscription,
  type Subscription,
  type SubscriptionStatus,
  SUBSCRIPTION_STATUSES,
} from './record.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { enqueueDunningRetries } from './jobs.ts';
import type { IntentStore, Sealer } from '../kernel/ports.ts';
import type { SubscriptionStore } from './ports.ts';

export interface SubscriptionServiceDeps {
  subs: SubscriptionStore;
  /** For `show`: the states of the subscription's recent charges. */
  intents: IntentStore;
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
  config: { dataEncryptionKey: Buffer };
  /** The subscription store, built once by the composition root. */
  subscriptions: SubscriptionStore;
  store: IntentStore;
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
}

/** The service's dependencies from the application's ports. */
export function subscriptionServiceDeps(app: ServiceApp): SubscriptionServiceDeps {
  return {
    subs: app.subscriptions,
    intents: app.store,
    dispatcher: app.dispatcher,
    sealer: app.sealer,
    clock: app.clock,
    hashKey: app.config.dataEncryptionKey,
    logger: app.logger,
  };
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
  | { status: 'invalid'; issues: FieldIssue[] };

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

/**
 * Imports a CSV of subscriptions: validates the whole file, refuses it if any row is invalid or
 * reuses an existing id with different details, then creates the new ones. Importing the same
 * file again creates nothing (every row is `existing`).
 */
export async function importSubscriptions(
  deps: SubscriptionServiceDeps,
  text: string | Buffer,
): Promise<ImportResult> {
  const parsed = await parseSubscriptionsCsv(text);
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

/** The public view: the fields of docs/product.md §7, no card token. */
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
  /**
   * The next charge of any kind: a dunning retry while one is open, else the next period; null
   * while paused, canceled, or held by an unresolved renewal.
   */
  next_charge_at: string | null;
  /**
   * Set while a renewal's payment is unresolved and holds billing (docs/subscriptions.md
   * "Unresolved renewals hold billing"): which charge, its state, and who it waits for
   * (`customer`: a 3-D Secure challenge, whose link is in `payment.requires_action`; `gateway`;
   * `operator`: the payment needs review).
   */
  billing_held: {
    key: string;
    reference: string;
    state: string;
    awaiting: 'customer' | 'gateway' | 'operator';
    since: string;
  } | null;
  /** Start of the first period not yet billed. */
  next_period_start: string;
  metadata: Record<string, string>;
  dunning: { key: string; attempt: number; retry: number; retry_at: string; reason: string }[];
  skipped_periods: number;
  /**
   * A renewal for which the gateway returned a reusable card authorization: that one exists (the
   * authorization stays sealed on that payment; renewals do not use it yet).
   */
  reusable_authorization?: { key: string; recorded_at: string };
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
  const held = billingHold(sub);
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
    billing_held: held
      ? {
          key: held.key,
          reference: heldReference(held),
          state: held.hold.state,
          awaiting: awaitingOf(held.hold.state),
          since: iso(held.hold.since),
        }
      : null,
    metadata: sub.metadata,
    dunning: sub.dunning.map((d) => ({
      key: d.key,
      attempt: d.attempt,
      retry: d.step + 1,
      retry_at: iso(d.dueAt),
      reason: d.reason,
    })),
    skipped_periods: sub.skippedPeriods,
    ...(sub.reusableAuthorization !== undefined
      ? {
          reusable_authorization: {
            key: sub.reusableAuthorization.key,
            recorded_at: iso(sub.reusableAuthorization.at),
          },
        }
      : {}),
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
 * Pauses, resumes or cancels (rule 8, actions.ts). Repeating an action changes
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
