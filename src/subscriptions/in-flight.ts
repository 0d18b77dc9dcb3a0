/**
 * Charges being created (docs/subscriptions.md "Actions while a charge is being created"): a
 * tick's claim (rule 3; the tick creates the claimed periods' intents after storing it) and a
 * dunning retry's `opening` mark (rule 6; the dunning job opens the next attempt after storing
 * it). Both are stored on the record, compare-and-set, before the charge exists, and the charge
 * is created in another key, so nothing atomic ties a later change of the record to it.
 *
 * So a pause, cancel or change (manage.ts) that finds one **finishes it first**: it creates the
 * claimed intents (idempotent: the same key and the same draft as the tick's, billing.ts
 * `chargeDraft`) or opens the retry's attempt (the intent store's `expectAttempt` lets only one
 * opener win) and enqueues them (deterministic job ids: they collapse with the tick's or the
 * job's own), then stores its change together with the commit of the claim (or the clearing of
 * the mark), with compare-and-set. Whoever was creating the charge finds it created and goes on;
 * a mark stored after the action read the record makes its compare-and-set fail, and the action
 * reads again and finishes that one too. Hence: no charge is created after an action answered,
 * and every charge carries the amount, currency and card the API accepted last before it.
 */
import type { IntentStore } from '../kernel/ports.ts';
import type { Intent } from '../kernel/payment.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import {
  chargeDraft,
  claimedPeriods,
  commitBilling,
  releaseClaim,
  retryTransition,
} from './billing.ts';
import { isBillable, type Subscription } from './record.ts';

export interface InFlightDeps {
  intents: IntentStore;
  dispatcher: Dispatcher;
}

/** What was finished on a record: the claim (by token) and the retries (by key). */
export interface Finished {
  /** The claim finished (`commit`: its intents exist) or given up (`release`: see below). */
  claim?: { token: string; how: 'commit' | 'release' };
  /** The `opening` marks dealt with (the attempt is open now, or cannot be), by key. */
  openings: { key: string; opening: number }[];
}

/** Whether `sub` has a charge being created. */
export function hasInFlight(sub: Subscription): boolean {
  return sub.claim !== undefined || sub.dunning.some((d) => d.opening !== undefined);
}

/**
 * Finishes the charges `sub` (as just read) says are being created, at `now`. A live claim is
 * always finished: its tick is creating the intents and will. A claim whose lease expired is
 * finished only while the record would still bill (the next tick would claim the same periods
 * again); otherwise it is released, as the next tick would (its tick died, or outlived the
 * lease, which the lease forbids).
 */
export async function finishInFlight(
  deps: InFlightDeps,
  sub: Subscription,
  now: number,
): Promise<Finished> {
  const finished: Finished = { openings: [] };
  const submit: Intent[] = [];
  const claim = sub.claim;
  if (claim) {
    if (claim.until > now || isBillable(sub)) {
      for (const n of claimedPeriods(sub, claim).periods) {
        const { intent } = await deps.intents.create(chargeDraft(sub, n), now);
        if (intent.state === 'queued') submit.push(intent);
      }
      finished.claim = { token: claim.token, how: 'commit' };
    } else finished.claim = { token: claim.token, how: 'release' };
  }
  for (const d of sub.dunning) {
    if (d.opening === undefined) continue;
    const intent = await deps.intents.get(d.key);
    if (intent?.state === 'failed' && intent.attempt === d.attempt) {
      // As the dunning job would (dunning.ts): the next attempt, on the record's card.
      const res = await deps.intents.transition(
        d.key,
        'queued',
        now,
        retryTransition(intent, sub.cardTokenSealed),
      );
      if (res.ok) submit.push(res.intent);
      else {
        // The job opened it meanwhile: enqueue it in case the job dies before doing so.
        const opened = await deps.intents.get(d.key);
        if (opened?.state === 'queued' && opened.attempt === d.opening) submit.push(opened);
      }
    } else if (intent?.state === 'queued' && intent.attempt === d.opening) submit.push(intent);
    // Anything else: opened and beyond, or not openable (the job would not open it either).
    finished.openings.push({ key: d.key, opening: d.opening });
  }
  if (submit.length > 0) await deps.dispatcher.submitMany(submit);
  return finished;
}

/**
 * `sub` (the record as it is now) with what was finished recorded: the claim committed or
 * released, the `opening` marks cleared. Undefined when it has a charge being created that was
 * not finished (stored after the read the finishing was done on): read and finish again.
 */
export function afterFinished(
  sub: Subscription,
  finished: Finished,
  now: number,
): Subscription | undefined {
  let next = sub;
  if (sub.claim) {
    const f = finished.claim;
    if (!f || f.token !== sub.claim.token) return undefined;
    next =
      f.how === 'commit'
        ? (commitBilling(sub, f.token, claimedPeriods(sub, sub.claim).skipped, now) ?? sub)
        : releaseClaim(sub, now);
  }
  if (next.dunning.some((d) => d.opening !== undefined)) {
    const done = (key: string, opening: number) =>
      finished.openings.some((o) => o.key === key && o.opening === opening);
    if (next.dunning.some((d) => d.opening !== undefined && !done(d.key, d.opening)))
      return undefined;
    next = {
      ...next,
      dunning: next.dunning.map(({ opening: _done, ...d }) => d),
    };
  }
  return next;
}
