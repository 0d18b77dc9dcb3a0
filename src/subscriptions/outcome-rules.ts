/**
 * Which rule a payment event of a subscription's charge calls (the outcome consumer,
 * outcome-consumer.ts, applies the decision): a final outcome calls outcomes.ts (rules 5, 6); an
 * unresolved one (rule 9, holds.ts) is checked against the intent as read after the record, so a
 * replayed or overtaken event never holds a payment that is already final.
 */
import type { z } from 'zod';
import type { intentKeySchema } from '../kernel/ids.ts';
import type { Intent } from '../kernel/payment.ts';
import type { IntentStore } from '../kernel/ports.ts';
import { isHoldingState } from './entries.ts';
import { onChargeUnresolved } from './holds.ts';
import { onChargeFailed, onChargeSucceeded, type DunningPolicy } from './outcomes.ts';
import { periodIndexOfKey } from './periods.ts';
import { NOTHING, type Decision, type Subscription } from './record.ts';

export const OUTCOME_TYPES = [
  'payment.succeeded',
  'payment.failed',
  'payment.pending',
  'payment.requires_action',
  'payment.needs_review',
] as const;
export type OutcomeType = (typeof OUTCOME_TYPES)[number];

/** Whether the event reports an unresolved payment (rule 9) rather than a final outcome. */
export const isUnresolved = (kind: OutcomeType) =>
  kind !== 'payment.succeeded' && kind !== 'payment.failed';

/** A payment outcome of a subscription charge, as read from the stream. */
export interface PaymentOutcome {
  kind: OutcomeType;
  subscriptionId: string;
  key: z.output<typeof intentKeySchema>;
  attempt: number;
  reason?: string;
  hasAuthorization?: boolean;
  /** The intent's amount (minor units) and currency, as the payment event carries them. */
  amount?: number;
  currency?: string;
}

/** What a succeeded charge was for: the event's amount, else the intent's (read after). */
function chargedOf(o: PaymentOutcome, intent: Intent | undefined) {
  if (o.amount !== undefined && o.currency !== undefined)
    return { amount: o.amount, currency: o.currency };
  return intent ? { amount: intent.amount, currency: intent.currency } : undefined;
}

/**
 * The period of `key`: as the record's open charge or dunning entry recorded it, else from the
 * key's date (periods.ts, across schedule segments).
 */
function periodOfKey(sub: Subscription, key: string): number | undefined {
  return (
    sub.openCharges.find((c) => c.key === key)?.period ??
    sub.dunning.find((d) => d.key === key)?.period ??
    periodIndexOfKey(sub, key)
  );
}

/**
 * The rules' decision for one outcome, or undefined when the key is not one of its periods. An
 * unresolved event decides from `intent`, the intent as read after `sub`: it holds only while the
 * intent is unresolved, in the state and attempt the intent is in. A success reports the amount
 * and currency charged: the event's (the intent's own), never the subscription's current ones.
 */
export function decideOutcome(
  sub: Subscription,
  o: PaymentOutcome,
  now: number,
  policy: DunningPolicy,
  intent: Intent | undefined,
): Decision | undefined {
  const period = periodOfKey(sub, o.key);
  if (period === undefined) return undefined;
  const base = { key: o.key, period, attempt: o.attempt, now };
  switch (o.kind) {
    case 'payment.succeeded': {
      const charged = chargedOf(o, intent);
      return onChargeSucceeded(sub, {
        ...base,
        ...(o.hasAuthorization !== undefined ? { hasAuthorization: o.hasAuthorization } : {}),
        ...(charged ? { charged } : {}),
      });
    }
    case 'payment.failed':
      return onChargeFailed(sub, { ...base, reason: o.reason ?? 'failed' }, policy);
    default:
      if (!intent || !isHoldingState(intent.state)) return NOTHING;
      return onChargeUnresolved(sub, {
        key: o.key,
        period,
        attempt: intent.attempt,
        state: intent.state,
        since: intent.updatedAt,
        now,
      });
  }
}

/**
 * Whether deciding `o` needs its intent: an unresolved outcome (its current state), or a success
 * whose event did not say what was charged (payments' events always do).
 */
const needsIntent = (o: PaymentOutcome) =>
  isUnresolved(o.kind) ||
  (o.kind === 'payment.succeeded' && (o.amount === undefined || o.currency === undefined));

/** The intents the outcomes among `outcomes` that need one name, read now, by key. */
export async function readIntents(
  intents: IntentStore,
  outcomes: readonly PaymentOutcome[],
): Promise<Map<string, Intent | undefined>> {
  const keys = [...new Set(outcomes.filter(needsIntent).map((o) => o.key))];
  const read = await Promise.all(keys.map((k) => intents.get(k)));
  return new Map(keys.map((k, i) => [k, read[i]]));
}
