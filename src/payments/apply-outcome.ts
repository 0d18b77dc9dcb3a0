/**
 * Applying what the gateway said to an intent, shared by the submit workers, the reconciler and
 * (later) webhooks. Every change is one atomic store transition guarded by the attempt number;
 * a transition the table refuses means someone else already recorded the truth.
 */
import { nextCheckAt, stateForOutcome } from './decisions.ts';
import type { Intent } from '../kernel/payment.ts';
import type { LookupOutcome, TransitionResult } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { IntentStore } from '../kernel/ports.ts';

export interface ReconcilePolicy {
  /** Delays between checks of a pending/unknown intent; exhausted → needs_review. */
  scheduleMs: number[];
  /** A `not_found` proves an attempt unsent only this long after it was sent. */
  notFoundGraceMs: number;
  /** Proven-unsent resubmissions of one attempt before it is failed as `gateway_unavailable`. */
  maxUnsentResubmits: number;
  /** Checks of a succeeded payout for a later reversal. */
  payoutWatchMs: number[];
}

export interface OutcomeDeps {
  store: IntentStore;
  dispatcher: Dispatcher;
  logger: Logger;
  policy: ReconcilePolicy;
}

/** Logs one line per transition, with intent key and attempt reference. */
function logTransition(
  log: Logger,
  res: TransitionResult,
  intent: Intent,
  to: string,
  reason?: string,
) {
  if (res.ok) {
    log.info(
      {
        key: intent.key,
        reference: res.intent.reference,
        from: res.from,
        to,
        reason,
        amount: intent.amount,
        currency: intent.currency,
      },
      'intent transition',
    );
  } else if (res.why !== 'missing') {
    log.debug(
      { key: intent.key, reference: intent.reference, to, state: res.state, why: res.why },
      'transition not applied',
    );
  }
}

/** Moves an intent into `pending` or `unknown` and schedules its first reconcile check. */
export async function markUnresolved(
  deps: OutcomeDeps,
  intent: Intent,
  to: 'pending' | 'unknown',
  now: number,
  reason?: string,
): Promise<TransitionResult> {
  const first = nextCheckAt(now, 0, deps.policy.scheduleMs) ?? now;
  const res = await deps.store.transition(intent.key, to, now, {
    expectAttempt: intent.attempt,
    patch: { checks: 0 },
    reconcileAt: first,
    ...(reason !== undefined ? { reason } : {}),
  });
  logTransition(deps.logger, res, intent, to, reason);
  if (res.ok)
    await deps.dispatcher.reconcile(res.intent, { delayMs: first - now, cause: 'schedule' });
  return res;
}

/**
 * Records a gateway answer (a submission result or a lookup) on the intent. Returns the
 * transition result, or undefined when the answer proves nothing new (still pending, not found).
 */
export async function applyOutcome(
  deps: OutcomeDeps,
  intent: Intent,
  outcome: LookupOutcome,
  now: number,
): Promise<TransitionResult | undefined> {
  const target = stateForOutcome(outcome);
  if (target === undefined || target === intent.state) return undefined;
  if (target === 'pending') {
    // `unknown → pending` is not in the table: an unknown intent the gateway calls pending stays
    // unknown and keeps its check schedule, which is what pending would do anyway.
    return intent.state === 'unknown' || intent.state === 'needs_review'
      ? undefined
      : markUnresolved(deps, intent, 'pending', now);
  }

  if (target === 'reversed' && intent.state !== 'succeeded') {
    // The money moved and came back: record both facts, in order, so both events are published.
    const first = await applyOutcome(deps, intent, { ...outcome, status: 'succeeded' }, now);
    if (!first?.ok) return first;
    return applyOutcome(deps, first.intent, outcome, now);
  }

  const watch =
    target === 'succeeded' && intent.type === 'payout' ? deps.policy.payoutWatchMs[0] : undefined;
  const patch: NonNullable<Parameters<IntentStore['transition']>[3]>['patch'] = { checks: 0 };
  if ('gatewayReference' in outcome && outcome.gatewayReference !== undefined) {
    patch.gatewayReference = outcome.gatewayReference;
  }
  if (
    (outcome.status === 'succeeded' || outcome.status === 'reversed') &&
    outcome.fee !== undefined
  )
    patch.fee = outcome.fee;
  if (outcome.status === 'failed') {
    patch.reason = outcome.reason;
    if (outcome.message !== undefined) patch.message = outcome.message.slice(0, 200);
  }
  const res = await deps.store.transition(intent.key, target, now, {
    expectAttempt: intent.attempt,
    patch,
    ...(watch !== undefined ? { reconcileAt: now + watch } : {}),
    ...(outcome.status === 'failed' ? { reason: outcome.reason } : {}),
  });
  logTransition(
    deps.logger,
    res,
    intent,
    target,
    outcome.status === 'failed' ? outcome.reason : undefined,
  );
  if (res.ok && watch !== undefined)
    await deps.dispatcher.reconcile(res.intent, { delayMs: watch, cause: 'schedule' });
  return res;
}
