/**
 * Charges and payouts: the outcome table, fault injection, the duplicate-reference rule, fees,
 * settlement, and the `payoutFlow` / `cardFlow` unknowns (docs/sayswitch-wire.md).
 */
import type { LedgerStatus, LedgerStore, StoredEntry } from './ledger.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Unknowns } from './options.ts';
import {
  PAYOUT_FEE_MINOR,
  chargeFeeMinor,
  decideBehaviour,
  type Behaviour,
  type SubmissionKind,
} from './outcomes.ts';
import { chargeSchema, payoutSchema } from './requests.ts';
import type { ThreeDs } from './three-ds.ts';
import {
  GATEWAY_RESPONSE,
  INTERNAL_ERROR,
  RATE_LIMITED,
  chargeAnswer,
  fail,
  payoutAnswer,
  validationFailure,
  type ApiResult,
  type PayoutDetails,
} from './wire.ts';

export interface SubmissionsDeps {
  ledger: LedgerStore;
  lifecycle: Lifecycle;
  threeDs: ThreeDs;
  unknowns: Unknowns;
  hangMs: number;
  faultRate: number;
  seed: number;
  now: () => number;
  /** Called once per newly recorded reference (the lookup lag starts there). */
  onRecorded: (reference: string) => void;
}

interface Submission {
  kind: SubmissionKind;
  reference: string;
  amountMinor: number;
  currency: string;
  feeMinor: number;
}

/** The final status an async payout reaches after `settleMs`, by its amount's behaviour. */
const ASYNC_FINAL: Partial<Record<Behaviour, { status: LedgerStatus; gatewayResponse?: string }>> =
  {
    decline: { status: 'failed', gatewayResponse: 'Declined' },
    pending_then_failed: { status: 'failed' },
  };

export class Submissions {
  /** Earlier submissions of a reference that recorded nothing (56, 57); see decideBehaviour. */
  private readonly unrecordedTries = new Map<string, number>();
  /** Payout request details, kept only when a duplicate is answered with the original (echo). */
  private readonly payoutDetails = new Map<string, PayoutDetails>();

  constructor(private readonly deps: SubmissionsDeps) {}

  /** `POST /api/s2s/transaction/initialize`; `origin` roots the 3-D Secure links. */
  charge(payload: unknown, origin: string): ApiResult {
    const parsed = chargeSchema.safeParse(payload);
    if (!parsed.success) return validationFailure(parsed.error);
    const p = parsed.data;
    const sub: Submission = {
      kind: 'charge',
      reference: p.reference,
      amountMinor: p.amount,
      currency: p.currency,
      feeMinor: chargeFeeMinor(p.amount),
    };
    return this.submit(sub, origin, () => this.deps.lifecycle.rememberPayer(p.reference, p.email));
  }

  /** `POST /api/v1/bank_transfer`. */
  payout(payload: unknown, origin: string): ApiResult {
    const parsed = payoutSchema.safeParse(payload);
    if (!parsed.success) return validationFailure(parsed.error);
    const p = parsed.data;
    const sub: Submission = {
      kind: 'payout',
      reference: p.reference,
      amountMinor: p.amount,
      currency: p.currency,
      feeMinor: PAYOUT_FEE_MINOR,
    };
    const details: PayoutDetails = {
      account_name: p.account_name,
      account_number: p.account_number,
      bank_code: p.bank_code,
      bank_name: p.bank_name,
      narration: p.narration,
      paymentMode: p.paymentMode ?? 'bank',
    };
    return this.submit(
      sub,
      origin,
      () => {
        if (this.deps.unknowns.duplicateReference === '200-echo') {
          this.payoutDetails.set(p.reference, details);
        }
      },
      details,
    );
  }

  private submit(
    sub: Submission,
    origin: string,
    keep: () => void,
    details?: PayoutDetails,
  ): ApiResult {
    const { ledger } = this.deps;
    ledger.noteSubmission(sub.reference);
    const existing = ledger.get(sub.reference);
    if (existing) {
      ledger.noteDuplicate(sub.reference);
      return this.duplicate(sub.reference, existing, origin);
    }
    const tries = this.unrecordedTries.get(sub.reference) ?? 0;
    const behaviour = decideBehaviour(
      sub.kind,
      sub.amountMinor,
      tries,
      { rate: this.deps.faultRate, seed: this.deps.seed },
      sub.reference,
    );
    if (behaviour === 'error_500' || behaviour === 'rate_limited_once') {
      this.unrecordedTries.set(sub.reference, tries + 1);
      return behaviour === 'error_500' ? INTERNAL_ERROR : RATE_LIMITED;
    }
    if (tries > 0) this.unrecordedTries.delete(sub.reference);
    keep();
    const { cardFlow, payoutFlow, statusWords } = this.deps.unknowns;
    let answer: ApiResult;
    if (sub.kind === 'charge' && cardFlow === '3ds2') {
      this.deps.threeDs.start({ ...sub, behaviour });
      answer = this.deps.threeDs.challenge(sub.reference, origin);
    } else {
      const entry =
        sub.kind === 'payout' && payoutFlow === 'async'
          ? this.recordAsync(sub, behaviour)
          : this.record(sub, behaviour);
      answer =
        sub.kind === 'charge'
          ? chargeAnswer(sub.reference, entry, statusWords)
          : payoutAnswer(sub.reference, entry, statusWords, details);
    }
    this.deps.onRecorded(sub.reference);
    switch (behaviour) {
      case 'moved_then_500':
        return INTERNAL_ERROR;
      case 'moved_then_hang':
        return { ...answer, holdMs: this.deps.hangMs };
      default:
        return answer;
    }
  }

  /** The `duplicateReference` unknown. */
  private duplicate(ref: string, existing: StoredEntry, origin: string): ApiResult {
    const { duplicateReference, statusWords } = this.deps.unknowns;
    switch (duplicateReference) {
      case '409':
        return fail(409, 'Duplicate reference');
      case '400':
        // Indistinguishable from any other validation failure, as a `unique` rule would answer.
        return fail(400, 'Validation failed: reference: has already been taken');
      case '400-opaque':
        // A refusal that names nothing: the adapter reads it as any other validation failure.
        return fail(400, 'Validation failed');
      case '200-failure':
        return fail(200, 'Duplicate reference');
      case '200-echo':
        // The existing transaction as the first submission's answer would show it now.
        if (existing.kind === 'payout') {
          return payoutAnswer(ref, existing, statusWords, this.payoutDetails.get(ref));
        }
        return this.deps.threeDs.awaiting(ref)
          ? this.deps.threeDs.challenge(ref, origin)
          : chargeAnswer(ref, existing, statusWords);
    }
  }

  /** Sync (today's) flow: the answer carries the outcome table's status. */
  private record(sub: Submission, behaviour: Behaviour): StoredEntry {
    const pending = behaviour === 'pending_then_success' || behaviour === 'pending_then_failed';
    const declined = behaviour === 'decline';
    const status: LedgerStatus = pending ? 'pending' : declined ? 'failed' : 'success';
    const entry = this.recordAs(sub, status, declined ? 'Declined' : GATEWAY_RESPONSE[status]);
    const { lifecycle } = this.deps;
    if (status !== 'pending') lifecycle.emit(sub.reference, entry);
    if (behaviour === 'pending_then_success') {
      lifecycle.later(sub.reference, 'success', true);
    } else if (behaviour === 'pending_then_failed') {
      lifecycle.later(sub.reference, 'failed', false);
    } else if (behaviour === 'success_then_reversed') {
      lifecycle.later(sub.reference, 'reversed', false);
    }
    return entry;
  }

  /** Async payout flow: always pending; the table's final status after `settleMs`. */
  private recordAsync(sub: Submission, behaviour: Behaviour): StoredEntry {
    const entry = this.recordAs(sub, 'pending', GATEWAY_RESPONSE.pending);
    const { lifecycle } = this.deps;
    const ref = sub.reference;
    const final = ASYNC_FINAL[behaviour];
    if (final) {
      lifecycle.later(ref, final.status, false, { gatewayResponse: final.gatewayResponse });
    } else {
      lifecycle.later(ref, 'success', true, {
        then: () => {
          if (behaviour === 'success_then_reversed') lifecycle.later(ref, 'reversed', false);
        },
      });
    }
    return entry;
  }

  private recordAs(sub: Submission, status: LedgerStatus, gatewayResponse: string): StoredEntry {
    return this.deps.ledger.record(sub.reference, {
      kind: sub.kind,
      amount: sub.amountMinor,
      currency: sub.currency,
      status,
      moneyMoved: status === 'success',
      feeMinor: sub.feeMinor,
      gatewayResponse,
      createdAtMs: this.deps.now(),
    });
  }
}
