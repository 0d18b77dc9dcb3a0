/**
 * Managing a subscription: the actions (pause, resume, cancel; rules 8 and 12, actions.ts) and
 * changes (`PATCH`, rule 11, changes.ts), shared by HTTP and the CLI. Each is one compare-and-set
 * on the record with its events in the same step; retries a resume re-arms are enqueued after.
 * A charge the record says is being created (a tick's claim, a dunning retry opening its attempt)
 * is finished first (in-flight.ts), so no charge is created after the action answered.
 * A subscription on a test clock is changed at its clock's time, and not while the clock is
 * advancing (the result would depend on how far it got).
 */
import {
  cancelNow,
  cancelSubscription,
  pauseSubscription,
  resumeSubscription,
  retryNow,
  type ActionRefusal,
} from './actions.ts';
import { changeSubscription, type ChangeRefusal } from './changes.ts';
import type { FieldIssue } from '../input/record.ts';
import { afterFinished, finishInFlight, hasInFlight, type Finished } from './in-flight.ts';
import { enqueueDunningNow, enqueueDunningRetries } from './jobs.ts';
import { applyScheduled, type ScheduledOptions } from './lifecycle.ts';
import { parseSubscriptionPatch } from './patch-input.ts';
import { SubscriptionContentionError } from './ports.ts';
import { retryOf, type Decision, type Subscription } from './record.ts';
import type { SubscriptionServiceDeps } from './service-deps.ts';

export type ActionName = 'pause' | 'resume' | 'cancel' | 'retry';

/** What an action takes besides its name (validated: patch-input.ts). */
export interface ActionOptions {
  /** pause: resume by itself at this instant (`null`: clear a scheduled resume). */
  resumeAt?: number | null;
  /** cancel: at the end of the period paid for instead of now. */
  atPeriodEnd?: boolean;
}

export type ActionResult =
  | { status: 'ok'; changed: boolean; subscription: Subscription }
  | { status: 'not_found' }
  | { status: 'invalid'; issues: FieldIssue[] }
  | {
      status: 'refused';
      code: ActionRefusalCode;
      subscription: Subscription;
    };

/** The time a subscription lives on, or why it cannot be changed now. */
async function timeFor(
  deps: SubscriptionServiceDeps,
  sub: Subscription,
): Promise<{ now: number } | { advancing: true }> {
  if (sub.testClock === undefined) return { now: deps.clock.now() };
  const clock = (await deps.subs.clocks.get(sub.testClock))?.clock;
  if (clock?.status === 'advancing') return { advancing: true };
  return { now: clock?.frozenTime ?? deps.clock.now() };
}

type Decide<R> = (sub: Subscription, now: number) => Decision | R;

/** The record changed under the action with a charge being created it has not finished yet. */
const AGAIN: unique symbol = Symbol('again');

/** Rounds of finishing a charge being created before giving up (the record keeps changing). */
const MAX_ROUNDS = 8;

/**
 * Loads, checks the clock, finishes any charge being created (in-flight.ts: a tick's claim, a
 * dunning retry opening its attempt), then applies `decide` with compare-and-set, storing the
 * finished claim's commit in the same write, and enqueues the retries. So nothing is charged
 * after the action answered, and a charge created before it keeps the terms it was created with.
 */
async function mutateAt<R extends { refused: string }>(
  deps: SubscriptionServiceDeps,
  id: string,
  decide: Decide<R>,
  scheduled: ScheduledOptions = {},
): Promise<
  | { status: 'not_found' }
  | { status: 'advancing'; subscription: Subscription }
  | { status: 'refused'; refusal: R; subscription: Subscription }
  | { status: 'ok'; changed: boolean; subscription: Subscription }
> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const found = await deps.subs.get(id);
    if (!found) return { status: 'not_found' };
    const time = await timeFor(deps, found.sub);
    if ('advancing' in time) return { status: 'advancing', subscription: found.sub };
    const finished: Finished = hasInFlight(found.sub)
      ? await finishInFlight(deps, found.sub, time.now)
      : { openings: [] };
    const res = await deps.subs.mutate<Decision | R | typeof AGAIN>(id, (cur) => {
      const finishedSub = hasInFlight(cur) ? afterFinished(cur, finished, time.now) : cur;
      if (finishedSub === undefined) return { decision: { events: [] }, value: AGAIN };
      // What the tick would have done by now (a cancel at the period's end, a scheduled resume,
      // the trial notice) is done first: the action applies to the subscription as it is at
      // `now`, not as the last tick left it (an undo after `cancel_at` would revive it).
      const due = applyScheduled(finishedSub, time.now, scheduled);
      const sub = due.next ?? finishedSub;
      const own = decide(sub, time.now);
      if ('refused' in own) return { decision: { events: [] }, value: own };
      const d: Decision = {
        ...(own.next ? { next: own.next } : {}),
        events: [...due.events, ...own.events],
        retries: [...due.retries, ...own.retries],
      };
      // The finished claim's commit and the due actions are stored even when the action itself
      // changes nothing.
      const next = d.next ?? (sub !== cur ? sub : undefined);
      return { decision: { ...(next ? { next } : {}), events: d.events }, value: d };
    });
    if (!res.found) return { status: 'not_found' };
    const value = res.value;
    if (value === AGAIN) continue;
    if ('refused' in value) return { status: 'refused', refusal: value, subscription: res.sub };
    if (res.saved && value.retries.length > 0)
      await enqueueDunningRetries(deps.dispatcher, value.retries, time.now);
    return { status: 'ok', changed: value.next !== undefined, subscription: res.sub };
  }
  throw new SubscriptionContentionError(id);
}

/** Each action's past tense, for the answers that say it was done or cannot be. */
export const PAST: Readonly<Record<ActionName, string>> = {
  pause: 'paused',
  resume: 'resumed',
  cancel: 'canceled',
  retry: 'retried',
};

/**
 * Pauses (optionally until `resumeAt`), resumes, cancels (optionally at the period's end) or
 * retries a failed renewal now: rules 8 and 12, actions.ts. Repeating an action changes nothing;
 * pausing, resuming or retrying a canceled subscription is refused, and so is retrying a paused
 * one or one with no failed renewal.
 */
export async function applyAction(
  deps: SubscriptionServiceDeps,
  id: string,
  action: ActionName,
  opts: ActionOptions = {},
): Promise<ActionResult> {
  const decide: Decide<ActionRefusal> = (sub, now) =>
    action === 'pause'
      ? pauseSubscription(sub, now, opts.resumeAt !== undefined ? { resumeAt: opts.resumeAt } : {})
      : action === 'resume'
        ? resumeSubscription(sub, now)
        : action === 'retry'
          ? retryNow(sub, now)
          : cancelSubscription(sub, now, opts.atPeriodEnd === true ? { atPeriodEnd: true } : {});
  const res = await mutateAt(deps, id, decide);
  switch (res.status) {
    case 'not_found':
      return res;
    case 'advancing':
      return { status: 'refused', code: 'test_clock_advancing', subscription: res.subscription };
    case 'refused':
      return res.refusal.refused === 'invalid'
        ? { status: 'invalid', issues: res.refusal.issues }
        : { status: 'refused', code: res.refusal.refused, subscription: res.subscription };
    case 'ok':
      // A test clock's retries are run by its clock when its time reaches them (jobs.ts); a
      // retry asked for now runs now, at the clock's time.
      if (res.changed && action === 'retry' && res.subscription.testClock !== undefined) {
        const due = res.subscription;
        await enqueueDunningNow(
          deps.dispatcher,
          due.dunning.filter((d) => d.dueAt <= due.updatedAt).map((d) => retryOf(due, d)),
        );
      }
      if (res.changed)
        deps.logger.info(
          {
            subscriptionId: id,
            action,
            status: res.subscription.status,
            ...(opts.atPeriodEnd === true ? { atPeriodEnd: true } : {}),
            ...(typeof opts.resumeAt === 'number' ? { resumeAt: opts.resumeAt } : {}),
          },
          `subscription ${action === 'cancel' && opts.atPeriodEnd === true ? 'set to cancel at the period end' : PAST[action]}`,
        );
      return res;
  }
}

/**
 * Cancels a subscription of a test clock being deleted (clocks-service.ts `deleteTestClock`): at
 * the clock's time, reason `test_clock_deleted`, after any charge being created is finished (as
 * every action). `already`: it was canceled before; `advancing`: its clock started advancing.
 */
export async function cancelOnDeletedClock(
  deps: SubscriptionServiceDeps,
  id: string,
): Promise<'canceled' | 'already' | 'not_found' | 'advancing'> {
  const res = await mutateAt<ActionRefusal>(deps, id, (sub, now) =>
    cancelNow(sub, now, { atPeriodEnd: false }, 'test_clock_deleted'),
  );
  if (res.status === 'not_found' || res.status === 'advancing') return res.status;
  return res.status === 'ok' && res.changed ? 'canceled' : 'already';
}

/** Why a change or action is refused in the subscription's state (HTTP 409, CLI exit 1). */
export type Refusal =
  'canceled' | 'charge_open' | 'busy' | 'test_clock_advancing' | 'paused' | 'nothing_to_retry';

/** The API's error code of each refusal: the HTTP answer's and the CLI's `--json` error. */
export const REFUSAL_ERROR_CODE: Readonly<Record<Refusal, string>> = {
  canceled: 'subscription_canceled',
  charge_open: 'charge_open',
  busy: 'subscription_busy',
  test_clock_advancing: 'test_clock_advancing',
  paused: 'subscription_paused',
  nothing_to_retry: 'nothing_to_retry',
};

/** The refusals an action (not a change) can meet. */
export type ActionRefusalCode = Extract<
  Refusal,
  'canceled' | 'paused' | 'nothing_to_retry' | 'test_clock_advancing'
>;

/** What an action's refusal says (HTTP `error.message`, the console's flash). */
export function actionRefusalMessage(
  id: string,
  action: ActionName,
  code: ActionRefusalCode,
): string {
  switch (code) {
    case 'canceled':
      return `subscription ${id} is canceled; it cannot be ${PAST[action]}`;
    case 'paused':
      return `subscription ${id} is paused: resume it first (a paused subscription runs no retries)`;
    case 'nothing_to_retry':
      return `subscription ${id} has no failed renewal to retry (it is in no dunning)`;
    case 'test_clock_advancing':
      return `subscription ${id} lives on a test clock that is advancing; try again once it is ready`;
  }
}

export type PatchResult =
  | { status: 'ok'; changed: boolean; subscription: Subscription }
  | { status: 'not_found' }
  | { status: 'invalid'; issues: FieldIssue[] }
  | {
      status: 'refused';
      code: Refusal;
      subscription: Subscription;
    };

/**
 * `PATCH /subscriptions/:id` (rule 11, changes.ts): validates the body (patch-input.ts), seals a
 * new card token (the same token as now is no change), applies the change with compare-and-set.
 */
export async function patchSubscription(
  deps: SubscriptionServiceDeps,
  id: string,
  body: unknown,
): Promise<PatchResult> {
  const parsed = parseSubscriptionPatch(body);
  if (!parsed.ok) return { status: 'invalid', issues: parsed.issues };
  const { cardToken, ...input } = parsed.input;
  let sealed: string | undefined;
  const decide: Decide<ChangeRefusal> = (sub, now) => {
    // Sealing is randomized: compare with the token held, and seal a new one once.
    const card =
      cardToken === undefined || deps.sealer.unseal(sub.cardTokenSealed) === cardToken
        ? undefined
        : (sealed ??= deps.sealer.seal(cardToken));
    return changeSubscription(
      sub,
      { ...input, ...(card !== undefined ? { cardTokenSealed: card } : {}) },
      now,
    );
  };
  // A due trial notice is moved by a new trial end, not sent for the old one first.
  const res = await mutateAt(
    deps,
    id,
    decide,
    input.trialEnd !== undefined ? { skipTrialNotice: true } : {},
  );
  switch (res.status) {
    case 'not_found':
      return res;
    case 'advancing':
      return { status: 'refused', code: 'test_clock_advancing', subscription: res.subscription };
    case 'refused':
      return res.refusal.refused === 'invalid'
        ? { status: 'invalid', issues: res.refusal.issues }
        : { status: 'refused', code: res.refusal.refused, subscription: res.subscription };
    case 'ok':
      if (res.changed)
        deps.logger.info(
          { subscriptionId: id, fields: Object.keys(parsed.input) },
          'subscription changed',
        );
      return res;
  }
}
