/**
 * The sandbox outcome table of docs/sayswitch-wire.md ("Sandbox outcomes"), as pure functions:
 * amount remainder → behaviour, fault injection, fees.
 */
import { submissionRandom } from './prng.ts';

export type SubmissionKind = 'charge' | 'payout';

export type Behaviour =
  /** 51: 200 with status failed, "Declined". */
  | 'decline'
  /** 52: 200 pending, success after settleMs. */
  | 'pending_then_success'
  /** 53: 200 pending, failed after settleMs. */
  | 'pending_then_failed'
  /** 54: money moves, then HTTP 500. */
  | 'moved_then_500'
  /** 55: money moves, response held for hangMs. */
  | 'moved_then_hang'
  /** 56: HTTP 500, nothing recorded. */
  | 'error_500'
  /** 57: 429 on the first try, nothing recorded; later tries succeed. */
  | 'rate_limited_once'
  /** 58 payout: success, reversed after settleMs. */
  | 'success_then_reversed'
  | 'success';

/** The behaviour an amount asks for, by `amountMinor % 100`. */
export function behaviourForAmount(kind: SubmissionKind, amountMinor: number): Behaviour {
  switch (amountMinor % 100) {
    case 51:
      return 'decline';
    case 52:
      return 'pending_then_success';
    case 53:
      return 'pending_then_failed';
    case 54:
      return 'moved_then_500';
    case 55:
      return 'moved_then_hang';
    case 56:
      return 'error_500';
    case 57:
      return 'rate_limited_once';
    case 58:
      // Only payouts are reversed; a charge with 58 is a plain success.
      return kind === 'payout' ? 'success_then_reversed' : 'success';
    default:
      return 'success';
  }
}

const FAULTS: readonly Behaviour[] = [
  'moved_then_500',
  'moved_then_hang',
  'error_500',
  'rate_limited_once',
];

/**
 * The injected fault for one submission, or undefined. Deterministic in (seed, reference,
 * tryNumber): see `submissionRandom`.
 */
export function injectedFault(
  faultRate: number,
  seed: number,
  reference: string,
  tryNumber: number,
): Behaviour | undefined {
  if (faultRate <= 0) return undefined;
  const random = submissionRandom(seed, reference, tryNumber);
  if (random() >= faultRate) return undefined;
  return FAULTS[Math.floor(random() * FAULTS.length)];
}

/**
 * Decides what one submission does. `tryNumber` counts earlier submissions of the same reference
 * that recorded nothing (56, 57): a 57 amount answers 429 only on its first try, while an
 * injected 57 answers 429 whatever the try (the injection is the "first try" of that behaviour).
 */
export function decideBehaviour(
  kind: SubmissionKind,
  amountMinor: number,
  tryNumber: number,
  fault: { rate: number; seed: number },
  reference: string,
): Behaviour {
  const injected = injectedFault(fault.rate, fault.seed, reference, tryNumber);
  if (injected !== undefined) return injected;
  const byAmount = behaviourForAmount(kind, amountMinor);
  if (byAmount === 'rate_limited_once' && tryNumber > 0) return 'success';
  return byAmount;
}

/** Charge fee: 1.2 % of the amount, rounded half up to the minor unit, without overflow. */
export function chargeFeeMinor(amountMinor: number): number {
  const thousands = Math.floor(amountMinor / 1000);
  const rest = amountMinor % 1000;
  return thousands * 12 + Math.floor((rest * 12 + 500) / 1000);
}

/** Payout fee: a flat 10.00. */
export const PAYOUT_FEE_MINOR = 1000;
