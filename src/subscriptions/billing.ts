/**
 * Billing rules (rules 3, 4, 7 and 9, record.ts): which periods a tick bills at `now`, the claim it
 * takes on them, the intent each claimed period gets, and the commit that advances `nextPeriod`
 * once their intents exist. Pure.
 */
import type { Intent, IntentDraft } from '../kernel/payment.ts';
import type { TransitionOptions } from '../kernel/ports.ts';
import { indexAt, periodKey, startAt } from './periods.ts';
import { isBillable, type BillingClaim, type OpenCharge, type Subscription } from './record.ts';

/** What a tick should do with one subscription at `now`. */
export type BillingPlan =
  /** Not billable (paused, canceled, or held by dunning or an unresolved charge). */
  | { kind: 'idle' }
  /** Another tick holds a live claim. */
  | { kind: 'busy'; until: number }
  /** Nothing due yet. */
  | { kind: 'wait'; nextAt: number }
  /** Bill `periods` (in order); `next` becomes `nextPeriod`; `skipped` were over the cap. */
  | { kind: 'bill'; periods: number[]; skipped: number; next: number };

/**
 * Decides which periods are due at `now` (rules 3, 4, 7, 9). A `bill` plan on a record with open
 * charges still needs their intents checked first (holds.ts `checkOpenCharges`): one may have
 * become unresolved since it was billed.
 */
export function planBilling(
  sub: Subscription,
  now: number,
  opts: { catchUpMax: number },
): BillingPlan {
  // A live claim first, whatever else the record says: its tick is creating charges and will
  // commit them; an outcome that made the record unbillable meanwhile (dunning, a hold) must not
  // let another tick release the claim (its commit would be lost, its period claimed again).
  if (sub.claim && sub.claim.until > now) return { kind: 'busy', until: sub.claim.until };
  if (!isBillable(sub)) return { kind: 'idle' };
  if (sub.nextPeriodStart > now) return { kind: 'wait', nextAt: sub.nextPeriodStart };
  const max = Math.max(1, opts.catchUpMax);
  // The last period started by `now`: usually `nextPeriod` itself, a few steps on after a short
  // outage; a long one is located by the calendar in one step instead of walked.
  let last = sub.nextPeriod;
  while (startAt(sub, last + 1) <= now) {
    last += 1;
    if (last - sub.nextPeriod > max) {
      last = indexAt(sub, now);
      break;
    }
  }
  const from = Math.max(sub.nextPeriod, last - max + 1);
  // duePeriods over memoized starts: an empty period (a calendar day a zone skipped) bills nothing.
  const periods: number[] = [];
  for (let n = from; n <= last; n++) if (startAt(sub, n + 1) > startAt(sub, n)) periods.push(n);
  return { kind: 'bill', periods, skipped: from - sub.nextPeriod, next: last + 1 };
}

/**
 * Takes the lease for a `bill` plan; the caller stores it with compare-and-set. The claimed periods
 * become open charges now, before their intents exist, so no outcome of theirs can be applied
 * before they are tracked (rule 9).
 */
export function claimBilling(
  sub: Subscription,
  plan: Extract<BillingPlan, { kind: 'bill' }>,
  claim: { token: string; now: number; leaseMs: number },
): Subscription {
  const known = new Set(sub.openCharges.map((c) => c.key));
  const opened: OpenCharge[] = plan.periods
    .map((period) => ({ key: periodKey(sub, period), period }))
    .filter((c) => !known.has(c.key));
  return {
    ...sub,
    updatedAt: claim.now,
    openCharges:
      opened.length === 0
        ? sub.openCharges
        : [...sub.openCharges, ...opened].sort((a, b) => a.period - b.period),
    claim: {
      token: claim.token,
      from: sub.nextPeriod,
      next: plan.next,
      until: claim.now + claim.leaseMs,
      periods: plan.periods,
      skipped: plan.skipped,
    },
  };
}

/**
 * The periods a claim is creating charges for, and how many it skipped over the cap. A claim
 * stored before it recorded them: the open charges in `[from, next)` (claimBilling opened them).
 */
export function claimedPeriods(
  sub: Subscription,
  claim: BillingClaim,
): { periods: number[]; skipped: number } {
  if (claim.periods !== undefined) return { periods: claim.periods, skipped: claim.skipped ?? 0 };
  const periods = sub.openCharges
    .map((c) => c.period)
    .filter((p) => p >= claim.from && p < claim.next)
    .sort((a, b) => a - b);
  return { periods, skipped: Math.max(0, (periods[0] ?? claim.from) - claim.from) };
}

/**
 * The intent of period `n`: the subscription's amount, currency, card and metadata as the record
 * holds them. Called with the record as claimed: no change of those can be stored while a claim
 * is on the record without finishing it first (in-flight.ts), so every creator of a claimed
 * period's intent builds the same one.
 */
export function chargeDraft(sub: Subscription, n: number): IntentDraft {
  return {
    key: periodKey(sub, n),
    type: 'charge',
    origin: 'subscription',
    amount: sub.amount,
    currency: sub.currency,
    subscriptionId: sub.id,
    payee: {
      kind: 'charge',
      email: sub.customerEmail,
      // Sealed with the same DATA_ENCRYPTION_KEY: copied as is, never opened here.
      cardTokenSealed: sub.cardTokenSealed,
      narration: `subscription ${sub.id}`,
    },
    ...(Object.keys(sub.metadata).length > 0 ? { meta: sub.metadata } : {}),
  };
}

/**
 * Commits a claim once its intents exist: `nextPeriod` advances past the billed periods. Returns
 * undefined when the claim is no longer ours (expired and taken over, or the subscription was
 * canceled): the other party's commit covers the same periods.
 */
export function commitBilling(
  sub: Subscription,
  token: string,
  skipped: number,
  now: number,
): Subscription | undefined {
  const claim = sub.claim;
  if (!claim || claim.token !== token) return undefined;
  const next = Math.max(sub.nextPeriod, claim.next);
  const { claim: _done, ...rest } = sub;
  return {
    ...rest,
    updatedAt: now,
    nextPeriod: next,
    nextPeriodStart: startAt(sub, next),
    skippedPeriods: sub.skippedPeriods + skipped,
  };
}

/** Clears an expired claim that turned out to cover nothing (the due index is then rescored). */
export function releaseClaim(sub: Subscription, now: number): Subscription {
  const { claim: _done, ...rest } = sub;
  return { ...rest, updatedAt: now };
}

/**
 * How a dunning retry opens the next attempt of a failed renewal `intent` (rule 11): on the
 * subscription's current card `cardTokenSealed`. A new attempt is opened only after the gateway's
 * `failed`, so a new card is safe here and nowhere else; `expectAttempt` lets only one opener win.
 * The one place for it: the dunning job (dunning.ts) and an action finishing it (in-flight.ts).
 */
export function retryTransition(intent: Intent, cardTokenSealed: string): TransitionOptions {
  const payee =
    intent.payee.kind === 'charge' && intent.payee.cardTokenSealed !== cardTokenSealed
      ? { ...intent.payee, cardTokenSealed }
      : undefined;
  return {
    newAttempt: true,
    ...(payee ? { payee } : {}),
    expectAttempt: intent.attempt,
    reason: 'dunning_retry',
  };
}
