/**
 * Unresolved renewals hold billing (rule 9, record.ts). A charge whose payment is `unknown`,
 * `pending`, `requires_action` or `needs_review` may have moved money, or may yet, and only the
 * gateway can say which: no new period is charged on top of it and no dunning retry opens a new
 * attempt after it. Pure, like the other rules.
 *
 * Who sets a hold: the outcome consumer, from `payment.pending`, `payment.requires_action` and
 * `payment.needs_review` (after reading the intent, so a replayed event of a payment that has
 * since become final holds nothing), and the tick, which reads the intents of its open charges
 * before billing on top of them (`unknown` publishes no event). Who lifts it: the charge's final
 * outcome (`onChargeSucceeded`, `onChargeFailed` in outcomes.ts), nothing else.
 */
import {
  awaitingOf,
  billingHold,
  isHoldingState,
  NOTHING,
  subscriptionEvent,
  type ChargeHold,
  type Decision,
  type HoldingState,
  type OpenCharge,
  type Subscription,
} from './record.ts';
import { attemptReference, type IntentKey } from '../kernel/ids.ts';
import type { BillingEvent } from '../kernel/events.ts';
import type { IntentState } from '../kernel/intent.ts';

/** A charge of the subscription seen unresolved: its intent's current attempt and state. */
export interface UnresolvedCharge {
  key: IntentKey;
  period: number;
  attempt: number;
  state: HoldingState;
  /** When the intent entered that state. */
  since: number;
  now: number;
}

const byPeriod = (a: OpenCharge, b: OpenCharge) => a.period - b.period;

/**
 * Rule 9: the charge of `c.key` is unresolved. Holds billing on it (or records its new state);
 * `subscription.billing_held` reports each (attempt, state) once. A report about an older attempt
 * than the one already held changes nothing.
 */
export function onChargeUnresolved(sub: Subscription, c: UnresolvedCharge): Decision {
  if (sub.status === 'canceled') return NOTHING;
  const prev = sub.openCharges.find((o) => o.key === c.key)?.hold;
  if (prev && (prev.attempt > c.attempt || (prev.attempt === c.attempt && prev.state === c.state)))
    return NOTHING;
  const hold: ChargeHold = {
    state: c.state,
    attempt: c.attempt,
    since: prev?.attempt === c.attempt ? prev.since : c.since,
  };
  const entry: OpenCharge = { key: c.key, period: c.period, hold };
  const next: Subscription = {
    ...sub,
    updatedAt: c.now,
    openCharges: [...sub.openCharges.filter((o) => o.key !== c.key), entry].sort(byPeriod),
  };
  const reference = attemptReference(c.key, c.attempt);
  return {
    next,
    events: [
      subscriptionEvent(`evt_${reference}_held_${c.state}`, 'subscription.billing_held', c.now, {
        subscriptionId: sub.id,
        key: c.key,
        reference,
        attempt: c.attempt,
        period: c.period,
        state: c.state,
        awaiting: awaitingOf(c.state),
        since: hold.since,
        status: next.status,
      }),
    ],
    retries: [],
  };
}

/**
 * Takes the charge of `key` out of the open charges once `attempt`'s final outcome is applied;
 * a held one reports `subscription.billing_resumed` (built by {@link resumedEvent} once the rest
 * of the decision is known). An outcome of an older attempt than the one held leaves it held.
 */
export function closeCharge(
  sub: Subscription,
  key: IntentKey,
  attempt: number,
): { openCharges: OpenCharge[]; held?: OpenCharge & { hold: ChargeHold } } {
  const entry = sub.openCharges.find((o) => o.key === key);
  if (!entry) return { openCharges: sub.openCharges };
  if (entry.hold && entry.hold.attempt > attempt) return { openCharges: sub.openCharges };
  return {
    openCharges: sub.openCharges.filter((o) => o !== entry),
    ...(entry.hold ? { held: { ...entry, hold: entry.hold } } : {}),
  };
}

/**
 * `subscription.billing_resumed`: the held charge is final. `held` says whether billing stays held
 * all the same: by another unresolved charge, or by dunning after a failure (rule 7).
 */
export function resumedEvent(
  next: Subscription,
  closed: OpenCharge & { hold: ChargeHold },
  attempt: number,
  outcome: 'succeeded' | 'failed',
  now: number,
): BillingEvent {
  const reference = attemptReference(closed.key, attempt);
  return subscriptionEvent(`evt_${reference}_resumed`, 'subscription.billing_resumed', now, {
    subscriptionId: next.id,
    key: closed.key,
    reference,
    attempt,
    period: closed.period,
    outcome,
    heldState: closed.hold.state,
    heldSince: closed.hold.since,
    held: billingHold(next) !== undefined || next.dunning.length > 0,
    status: next.status,
  });
}

/** What the tick read of one open charge's intent (undefined: the intent does not exist). */
export interface ChargeSnapshot {
  state: IntentState;
  attempt: number;
  updatedAt: number;
}

/** What the tick does with a subscription whose open charges it read. */
export type OpenChargesCheck =
  /** Bill on top: the record with the charges known paid (or never created) taken out. */
  | { kind: 'clear'; sub: Subscription }
  /** An open charge is unresolved: store the hold, bill nothing. */
  | { kind: 'hold'; decision: Decision & { next: Subscription } }
  /**
   * An open charge failed and the consumer has not applied it yet: bill nothing now (dunning is
   * about to hold billing, rule 7) and look again next tick.
   */
  | { kind: 'await'; key: IntentKey };

/**
 * Rule 9 at billing time: the intents of `sub.openCharges`, read after the record (so a charge
 * read unresolved was unresolved when the record was current). A charge not in `snapshot` is
 * left as it is.
 */
export function checkOpenCharges(
  sub: Subscription,
  snapshot: ReadonlyMap<string, ChargeSnapshot | undefined>,
  now: number,
): OpenChargesCheck {
  const keep: OpenCharge[] = [];
  const unresolved: UnresolvedCharge[] = [];
  let failed: IntentKey | undefined;
  for (const c of sub.openCharges) {
    if (!snapshot.has(c.key)) {
      keep.push(c);
      continue;
    }
    const i = snapshot.get(c.key);
    // No intent: a claim that died before creating it; its periods are claimed again if due.
    if (!i || i.state === 'succeeded' || i.state === 'reversed') continue;
    keep.push(c);
    if (isHoldingState(i.state))
      unresolved.push({
        key: c.key,
        period: c.period,
        attempt: i.attempt,
        state: i.state,
        since: i.updatedAt,
        now,
      });
    else if (i.state === 'failed') failed ??= c.key;
  }
  let next: Subscription =
    keep.length === sub.openCharges.length ? sub : { ...sub, updatedAt: now, openCharges: keep };
  if (unresolved.length > 0) {
    // Every unresolved charge is recorded (and reported), not just the first.
    const events: BillingEvent[] = [];
    for (const u of unresolved) {
      const d = onChargeUnresolved(next, u);
      if (d.next) next = d.next;
      events.push(...d.events);
    }
    return { kind: 'hold', decision: { next, events, retries: [] } };
  }
  if (failed) return { kind: 'await', key: failed };
  return { kind: 'clear', sub: next };
}
