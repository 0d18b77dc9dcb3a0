/**
 * Applying what the gateway said to an intent, shared by the submit workers, the reconciler and
 * (through the reconciler) webhooks. Every change is one atomic store transition guarded by the
 * attempt number; a transition the table refuses means someone else already recorded the truth.
 */
import {
  afterWaitingAnswer,
  failureReasonFor,
  nextCheckFor,
  stateForOutcome,
} from './decisions.ts';
import type { Intent } from '../kernel/payment.ts';
import type { IntentState } from '../kernel/intent.ts';
import type {
  DiscrepancyCounter,
  GatewayOutcome,
  LookupOutcome,
  Sealer,
  TransitionOptions,
  TransitionResult,
} from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { IntentStore } from '../kernel/ports.ts';

export interface ReconcilePolicy {
  /** Delays between checks of a pending/requires_action/unknown intent; exhausted → needs_review. */
  scheduleMs: number[];
  /** A `not_found` proves an attempt unsent only this long after it was sent. */
  notFoundGraceMs: number;
  /** Proven-unsent resubmissions of one attempt before it is handed to `needs_review`. */
  maxUnsentResubmits: number;
  /** Checks of a succeeded payout for a later reversal. */
  payoutWatchMs: number[];
  /** REQUIRES_ACTION_WINDOW: how long a challenged payment waits for the customer before verify decides. */
  requiresActionWindowMs: number;
}

export interface OutcomeDeps {
  store: IntentStore;
  dispatcher: Dispatcher;
  logger: Logger;
  policy: ReconcilePolicy;
  /** Seals a reusable card authorization returned with a success. */
  sealer: Sealer;
  /** Counts the answers a person must check (the metrics; none in tests that do not look). */
  discrepancies?: DiscrepancyCounter;
}

type Patch = NonNullable<TransitionOptions['patch']>;

/** A URL for a log line: origin and path, without a query string or fragment. */
function loggableUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(unparsable)';
  }
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
    const url = to === 'requires_action' ? res.intent.authorizationUrl : undefined;
    log.info(
      {
        key: intent.key,
        reference: res.intent.reference,
        from: res.from,
        to,
        reason,
        amount: intent.amount,
        currency: intent.currency,
        ...(url !== undefined ? { authorizationUrl: loggableUrl(url) } : {}),
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

/**
 * The delay of the first watch check of a payout that becomes `succeeded` (PAYOUT_WATCH_SCHEDULE):
 * a payout can still be reversed, and the watch finds that without a webhook. Undefined for
 * anything else. The one place for it: the reconciler's outcomes and an operator's resolution.
 */
export function payoutWatchDelay(
  type: Intent['type'],
  to: IntentState,
  payoutWatchMs: readonly number[],
): number | undefined {
  return to === 'succeeded' && type === 'payout' ? payoutWatchMs[0] : undefined;
}

/**
 * The fence of a caller's copy that is `submitting`: the claim's lease, so that the transition
 * lands only while the intent is still `submitting` under that claim (TransitionOptions.claimLease;
 * refused as `stale` in any other state, intent-lua.ts). A worker paused past its lease (GC, a
 * stopped VM) may find the intent verified unsent, re-queued and claimed again on the same
 * attempt, and the new claim's answer recorded (`pending`, `requires_action`); its late answer must
 * not overwrite the new claim's (a refusal of its repeat recorded as `failed` over a submission
 * that moves money, a "not sent" re-queueing a reference another worker is sending). Its copy is
 * stale too (`unsentResubmits` of before the resubmission), so nothing it decided can stand. Any
 * other copy carries no fence.
 */
export function heldClaim(intent: Intent): { claimLease?: number } {
  return intent.state === 'submitting' && intent.leaseUntil !== undefined
    ? { claimLease: intent.leaseUntil }
    : {};
}

/** Options of {@link markUnresolved}. */
export interface UnresolvedOptions {
  /** Written to the history line. */
  reason?: string;
  /** Fields set with the transition (e.g. `seenAtGateway`). */
  patch?: Patch;
}

/**
 * Moves an intent into `pending`, `requires_action` or `unknown` and schedules its first reconcile
 * check (for `requires_action`, no later than the end of its window, `patch.requiresActionUntil`).
 */
export async function markUnresolved(
  deps: OutcomeDeps,
  intent: Intent,
  to: 'pending' | 'requires_action' | 'unknown',
  now: number,
  opts: UnresolvedOptions = {},
): Promise<TransitionResult> {
  const until = opts.patch?.requiresActionUntil;
  const first =
    nextCheckFor(
      { state: to, ...(until !== undefined ? { requiresActionUntil: until } : {}) },
      now,
      0,
      deps.policy.scheduleMs,
    ) ?? now;
  const res = await deps.store.transition(intent.key, to, now, {
    expectAttempt: intent.attempt,
    ...heldClaim(intent),
    known: intent,
    patch: { checks: 0, ...opts.patch },
    reconcileAt: first,
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
  });
  logTransition(deps.logger, res, intent, to, opts.reason);
  if (res.ok)
    await deps.dispatcher.reconcile(res.intent, { delayMs: first - now, cause: 'schedule' });
  return res;
}

/**
 * A `pending` or `requires_action` answer: the reference exists at the gateway. The intent enters
 * the named state from `submitting` (a challenge with its URL and window), leaves
 * `requires_action` for `pending` once the window has passed, and otherwise keeps its state; the
 * gateway having shown the reference is recorded either way (decisions.ts `afterWaitingAnswer`).
 */
async function applyWaiting(
  deps: OutcomeDeps,
  intent: Intent,
  outcome: Extract<GatewayOutcome, { status: 'pending' | 'requires_action' }>,
  now: number,
): Promise<TransitionResult | undefined> {
  const next = afterWaitingAnswer(intent, outcome.status, now);
  if (next.move === undefined) {
    if (intent.seenAtGateway === undefined)
      await deps.store.markSeenAtGateway(intent.key, intent.attempt, now);
    return undefined;
  }
  const patch: Patch = { seenAtGateway: intent.seenAtGateway ?? now };
  // A refund's pending answer names Sayswitch's RF_ reference: its status is looked up by it.
  if (outcome.gatewayReference !== undefined && intent.type === 'refund')
    patch.gatewayReference = outcome.gatewayReference;
  if (next.move === 'requires_action') {
    patch.requiresActionUntil = now + deps.policy.requiresActionWindowMs;
    if (outcome.status === 'requires_action' && outcome.authorizationUrl !== undefined)
      patch.authorizationUrl = outcome.authorizationUrl;
  }
  return markUnresolved(deps, intent, next.move, now, {
    patch,
    ...('why' in next ? { reason: next.why } : {}),
  });
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
  if (target === undefined) return undefined;
  if (outcome.status === 'pending' || outcome.status === 'requires_action')
    return applyWaiting(deps, intent, outcome, now);
  if (target === intent.state) return undefined;

  if (intent.type === 'payout' && intent.state === 'succeeded' && target === 'failed') {
    // The gateway contradicts a success it gave: the money may have come back (a reversal told as
    // `failed`) or the word may be wrong. Neither is ours to infer: `succeeded` stays (nothing is
    // paid again on it) and a person is told, at every watch check that hears it.
    deps.logger.error(
      { key: intent.key, reference: intent.reference, type: intent.type, state: intent.state },
      'the gateway now says failed for a payout it said succeeded: check at Sayswitch whether it was reversed',
    );
    deps.discrepancies?.countDiscrepancy('payout_failed_after_success');
    return undefined;
  }

  if (target === 'reversed' && intent.state !== 'succeeded') {
    // The money moved and came back: record both facts, in order, so both events are published.
    const first = await applyOutcome(deps, intent, { ...outcome, status: 'succeeded' }, now);
    if (!first?.ok) return first;
    return applyOutcome(deps, first.intent, outcome, now);
  }

  if (
    outcome.status === 'succeeded' &&
    outcome.amount !== undefined &&
    outcome.amount !== intent.amount
  ) {
    // The gateway recorded another amount than we sent. The money moved (its word is final), so
    // the outcome stands, and nothing is sent again on it; what Sayswitch's amounts mean is not
    // documented (sayswitch-api.md §6.1), so a person compares (docs/operations.md, alerts).
    deps.logger.error(
      {
        key: intent.key,
        reference: intent.reference,
        type: intent.type,
        ours: intent.amount,
        theirs: outcome.amount,
        currency: intent.currency,
      },
      'the gateway recorded another amount than ours: check the payment at Sayswitch',
    );
    deps.discrepancies?.countDiscrepancy('amount_mismatch');
  }
  const watch = payoutWatchDelay(intent.type, target, deps.policy.payoutWatchMs);
  const patch: Patch = { checks: 0 };
  if ('gatewayReference' in outcome && outcome.gatewayReference !== undefined) {
    patch.gatewayReference = outcome.gatewayReference;
  }
  if (
    (outcome.status === 'succeeded' || outcome.status === 'reversed') &&
    outcome.fee !== undefined
  )
    patch.fee = outcome.fee;
  // A reusable card authorization: sealed at once, never logged.
  if (outcome.status === 'succeeded' && outcome.authorization !== undefined)
    patch.authorizationSealed = deps.sealer.seal(outcome.authorization);
  const reason = outcome.status === 'failed' ? failureReasonFor(intent, outcome.reason) : undefined;
  if (outcome.status === 'failed') {
    patch.reason = reason;
    if (outcome.message !== undefined) patch.message = outcome.message.slice(0, 200);
  }
  const res = await deps.store.transition(intent.key, target, now, {
    expectAttempt: intent.attempt,
    ...heldClaim(intent),
    known: intent,
    patch,
    ...(watch !== undefined ? { reconcileAt: now + watch } : {}),
    ...(reason !== undefined ? { reason } : {}),
  });
  logTransition(deps.logger, res, intent, target, reason);
  if (res.ok && watch !== undefined)
    await deps.dispatcher.reconcile(res.intent, { delayMs: watch, cause: 'schedule' });
  return res;
}
