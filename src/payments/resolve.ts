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
import { parseAttemptReference } from '../kernel/ids.ts';
import { OPERATOR_FORCED } from '../kernel/intent.ts';
import type { Log } from '../kernel/log.ts';
import type { Intent } from '../kernel/payment.ts';
import type { IntentStore, LookupOutcome, PaymentGateway } from '../kernel/ports.ts';

export const RESOLVE_OUTCOMES = ['succeeded', 'failed'] as const;
export type ResolveOutcome = (typeof RESOLVE_OUTCOMES)[number];

export interface ResolveDeps {
  store: IntentStore;
  gateway: PaymentGateway;
  clock: Clock;
  logger: Log;
  /** How old an `unknown` payment must be before a person may resolve it. */
  unknownResolvableAfterMs: number;
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
 * for a payout), as the resolution asks it; `unreachable` when it could not be asked. The operator
 * console shows it beside the resolve form.
 */
export async function askGateway(
  deps: Pick<ResolveDeps, 'gateway'>,
  intent: Intent,
): Promise<{ word: GatewayWord; outcome?: LookupOutcome }> {
  try {
    const outcome =
      intent.type === 'charge'
        ? await deps.gateway.verifyCharge(intent.reference)
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
  const key = parseAttemptReference(keyOrReference)?.key ?? keyOrReference;
  const intent = (await deps.store.get(key)) ?? (await deps.store.get(keyOrReference));
  if (!intent) return { status: 'not_found' };
  if (intent.type === 'refund') {
    // Its lookup goes through the charge's refunds (payments/refunds/lookup.ts), which this
    // resolution does not ask yet (docs/refunds.md "Open points").
    return {
      status: 'not_resolvable',
      message: `${intent.key} is a refund: check it at Sayswitch by hand; resolving refunds is not supported yet`,
    };
  }
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
  const res = await deps.store.transition(intent.key, req.outcome, now, {
    expectAttempt: intent.attempt,
    reason: forced ? 'resolved by operator (forced)' : 'resolved by operator',
    ...(req.outcome === 'failed'
      ? {
          patch: {
            reason: forced
              ? OPERATOR_FORCED
              : asked.outcome?.status === 'failed'
                ? asked.outcome.reason
                : 'declined',
          },
        }
      : {}),
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
