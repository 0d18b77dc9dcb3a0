/**
 * An operator resolves a payment the machinery could not (docs/operations.md, "Resolving
 * needs_review"): `needs_review`, or `unknown` once it is older than RESOLVE_UNKNOWN_AFTER. The
 * gateway is asked first. Its final answer agreeing with the operator settles it; a final answer
 * that disagrees, or no final answer (pending, not found, unreachable), refuses the resolution
 * unless `force` — a person overriding the gateway says so explicitly, and the history and the
 * event carry who, the note, what the gateway said and that it was forced.
 *
 * A forced `failed` gets the reason `operator_forced`: it is not the gateway's word that nothing
 * moved, so nothing opens a new reference for the same money because of it (dunning treats it as
 * final, docs/subscriptions.md).
 */
import type { Clock } from '../kernel/clock.ts';
import { OPERATOR_FORCED } from '../kernel/intent.ts';
import type { Log } from '../kernel/log.ts';
import type { Logger } from '../infra/logger.ts';
import type { Intent } from '../kernel/payment.ts';
import type { IntentStore, LookupOutcome, PaymentGateway, RefundStore } from '../kernel/ports.ts';
import { lookupRefund } from './refunds/lookup.ts';
import { findIntent } from './view.ts';
import { payoutWatchDelay } from './apply-outcome.ts';

export const RESOLVE_OUTCOMES = ['succeeded', 'failed'] as const;
export type ResolveOutcome = (typeof RESOLVE_OUTCOMES)[number];

export interface ResolveDeps {
  store: IntentStore;
  gateway: PaymentGateway;
  /** A refund is looked up among its charge's refunds (payments/refunds/lookup.ts). */
  refunds: RefundStore;
  clock: Clock;
  logger: Log;
  /** How old an `unknown` payment must be before a person may resolve it. */
  unknownResolvableAfterMs: number;
  /** PAYOUT_WATCH_SCHEDULE: a payout resolved `succeeded` is watched for a reversal. */
  payoutWatchMs: readonly number[];
}

/** The slice of the application a resolution is built from (the composition root's `App` fits). */
export interface ResolveApp {
  store: IntentStore;
  gateway: PaymentGateway;
  refunds: RefundStore;
  clock: Clock;
  logger: Logger;
  config: { reconcile: { resolveUnknownAfterMs: number; payoutWatchMs: number[] } };
}

/** The one place a resolution's dependencies are built: for the API, the console and the CLI. */
export function resolveDeps(app: ResolveApp): ResolveDeps {
  return {
    store: app.store,
    gateway: app.gateway,
    refunds: app.refunds,
    clock: app.clock,
    logger: app.logger.child({ component: 'resolve' }),
    unknownResolvableAfterMs: app.config.reconcile.resolveUnknownAfterMs,
    payoutWatchMs: app.config.reconcile.payoutWatchMs,
  };
}

export interface ResolveRequest {
  outcome: ResolveOutcome;
  note: string;
  force: boolean;
  /** Who asks: the token's name, or `cli:<user>`. */
  by: string;
}

/** What the gateway said, in one word for people and the history. */
export type GatewayWord = LookupOutcome['status'] | 'unreachable';

export type ResolveResult =
  | { status: 'resolved'; intent: Intent; gateway: GatewayWord; forced: boolean }
  | { status: 'not_found' }
  | { status: 'not_resolvable'; message: string }
  /** The gateway's final answer contradicts the operator (`force` overrides). */
  | { status: 'gateway_disagrees'; gateway: GatewayWord; message: string }
  /** The gateway has no final answer (`force` overrides). */
  | { status: 'gateway_unconfirmed'; gateway: GatewayWord; message: string };

/**
 * What the gateway says of the intent's current reference right now (verify for a charge, lookup
 * for a payout, the refund's status or its charge's refund list for a refund), as the resolution
 * asks it; `unreachable` when it could not be asked. The operator console shows it beside the
 * resolve form.
 */
export async function askGateway(
  deps: Pick<ResolveDeps, 'gateway' | 'refunds'>,
  intent: Intent,
): Promise<{ word: GatewayWord; outcome?: LookupOutcome }> {
  try {
    const outcome =
      intent.type === 'charge'
        ? await deps.gateway.verifyCharge(intent.reference)
        : intent.type === 'refund'
          ? await lookupRefund(deps, intent)
          : await deps.gateway.lookupPayout(intent.reference);
    return { word: outcome.status, outcome };
  } catch {
    return { word: 'unreachable' };
  }
}

export async function resolvePayment(
  deps: ResolveDeps,
  keyOrReference: string,
  req: ResolveRequest,
): Promise<ResolveResult> {
  const intent = await findIntent(deps.store, keyOrReference);
  if (!intent) return { status: 'not_found' };
  const now = deps.clock.now();

  const age = now - intent.updatedAt;
  const resolvable =
    intent.state === 'needs_review' ||
    (intent.state === 'unknown' && age >= deps.unknownResolvableAfterMs);
  if (!resolvable) {
    return {
      status: 'not_resolvable',
      message:
        intent.state === 'unknown'
          ? `payment ${intent.key} is unknown for ${Math.round(age / 1000)} s; the reconciler is still checking it (a person may resolve it after ${Math.round(deps.unknownResolvableAfterMs / 1000)} s, RESOLVE_UNKNOWN_AFTER)`
          : `payment ${intent.key} is ${intent.state}; only needs_review (or unknown after RESOLVE_UNKNOWN_AFTER) can be resolved`,
    };
  }

  const asked = await askGateway(deps, intent);
  const gateway = asked.word;
  const final = gateway === 'succeeded' || gateway === 'failed' || gateway === 'reversed';
  const agrees = gateway === req.outcome;
  if (intent.type === 'refund' && req.outcome === 'failed' && !agrees) {
    // A failed refund gives its amount back to the charge's refundable total: a second refund of
    // the same money may follow. Only Sayswitch's own `failed` may open that; a person may still
    // force `succeeded` (it keeps the amount counted as refunded). docs/refunds.md.
    return {
      status: final ? 'gateway_disagrees' : 'gateway_unconfirmed',
      gateway,
      message: `Sayswitch says refund ${intent.reference} is ${gateway}: a refund is recorded failed only on Sayswitch's word (its amount would become refundable again), force does not override it`,
    };
  }
  if (!agrees && !req.force) {
    return final
      ? {
          status: 'gateway_disagrees',
          gateway,
          message: `Sayswitch says ${intent.reference} ${gateway}, not ${req.outcome}; resolve with force to override it`,
        }
      : {
          status: 'gateway_unconfirmed',
          gateway,
          message: `Sayswitch has no final answer for ${intent.reference} (${gateway}); resolve with force to record ${req.outcome} anyway`,
        };
  }

  const forced = !agrees;
  // A payout resolved `succeeded` is watched like one the reconciler saw succeed: its first check
  // is due in the same step (the sweep runs it; the chain continues from there).
  const watch = payoutWatchDelay(intent.type, req.outcome, deps.payoutWatchMs);
  // A refund keeps the RF_ reference its lookup found it by (whatever Sayswitch said of it), as the
  // reconciler's adoption records it: the charge's later refunds are told apart from it by that
  // reference (refunds/match.ts); without it, each later refund whose answer is lost stays
  // ambiguous, a person each time.
  const found =
    intent.type === 'refund' && intent.gatewayReference === undefined
      ? asked.outcome !== undefined && 'gatewayReference' in asked.outcome
        ? asked.outcome.gatewayReference
        : undefined
      : undefined;
  const patch = {
    ...(req.outcome === 'failed'
      ? {
          reason: forced
            ? OPERATOR_FORCED
            : asked.outcome?.status === 'failed'
              ? asked.outcome.reason
              : 'declined',
        }
      : {}),
    ...(watch !== undefined ? { checks: 0 } : {}),
    ...(found !== undefined ? { gatewayReference: found } : {}),
  };
  // Only from the state the decision was made on: while the gateway was asked, the reconciler
  // may have re-queued an unknown intent (proven unsent) and a worker claimed it again, on the
  // same attempt. A person's `failed` must not land on that submission.
  const res = await deps.store.transition(intent.key, req.outcome, now, {
    expectAttempt: intent.attempt,
    onlyFrom: [intent.state],
    reason: forced ? 'resolved by operator (forced)' : 'resolved by operator',
    ...(Object.keys(patch).length > 0 ? { patch } : {}),
    ...(watch !== undefined ? { reconcileAt: now + watch } : {}),
    resolution: { by: req.by, note: req.note, gateway, forced },
  });
  if (!res.ok) {
    return {
      status: 'not_resolvable',
      message:
        res.why === 'missing'
          ? `payment ${intent.key} disappeared`
          : `payment ${intent.key} changed while it was being resolved (now ${res.state}); look again`,
    };
  }
  deps.logger.info(
    {
      key: intent.key,
      reference: intent.reference,
      from: res.from,
      to: req.outcome,
      by: req.by,
      gateway,
      forced,
    },
    'payment resolved by operator',
  );
  return { status: 'resolved', intent: res.intent, gateway, forced };
}
