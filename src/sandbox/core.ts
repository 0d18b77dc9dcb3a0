/**
 * (Over 400 lines on purpose: the simulated endpoints share one ledger, timer registry and outcome
 * table, and read as one contract next to docs/sayswitch-wire.md.)
 *
 * What each sandbox endpoint does, as `(payload) => { status, body }` with no HTTP framework
 * types: submissions (outcome table, 409, fees, settlement timers, webhooks), lookups, banks,
 * account names and wallets. The transport (auth, encryption, latency, held responses) lives in
 * server.ts.
 */
import { z } from 'zod';
import {
  CHARGE_CURRENCIES,
  CURRENCIES,
  PAYOUT_CURRENCIES,
  formatMajor,
  parseGatewayAmount,
  type AmountMinor,
} from '../kernel/money.ts';
import type { LedgerStatus, LedgerStore, StoredEntry } from './ledger.ts';
import {
  PAYOUT_FEE_MINOR,
  chargeFeeMinor,
  decideBehaviour,
  type Behaviour,
  type SubmissionKind,
} from './outcomes.ts';
import type { TimerRegistry } from './timers.ts';

/** A handler's answer. `holdMs` asks the transport to hold the response (outcome 55). */
export interface ApiResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  holdMs?: number;
}

export interface SandboxCoreDeps {
  ledger: LedgerStore;
  timers: TimerRegistry;
  settleMs: number;
  hangMs: number;
  faultRate: number;
  seed: number;
  now: () => number;
  /** Called with each webhook payload when a reference reaches a final status; absent = no webhooks. */
  notify?: (reference: string, payload: unknown) => void;
}

const reference = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 characters of letters, digits, "_" and "-"');

const amount = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const minor = parseGatewayAmount(v);
  if (minor === undefined || minor === 0) {
    ctx.addIssue({ code: 'custom', message: 'must be a positive amount in major units' });
    return z.NEVER;
  }
  return minor;
});

const nonEmpty = z.string().min(1);

const chargeSchema = z.object({
  amount,
  // Opaque card token: validated for presence only, never stored or echoed.
  card: nonEmpty,
  currency: z.enum(CHARGE_CURRENCIES),
  email: nonEmpty,
  reference,
  narration: z.string().optional(),
});

const payoutSchema = z
  .object({
    account_name: nonEmpty,
    account_number: nonEmpty,
    amount,
    bank_code: nonEmpty,
    bank_name: nonEmpty,
    currency: z.enum(PAYOUT_CURRENCIES),
    narration: nonEmpty,
    reference,
    paymentMode: z.enum(['bank', 'momo']).optional(),
  })
  .refine((p) => p.currency === 'NGN' || p.paymentMode !== undefined, {
    message: 'is required for KES and GHS',
    path: ['paymentMode'],
  });

const accountNameSchema = z.object({
  bank_code: nonEmpty,
  account_number: nonEmpty,
  currency: z.enum(PAYOUT_CURRENCIES),
});

const BANKS: Readonly<Record<string, readonly { bankName: string; bankCode: string }[]>> = {
  NGN: [
    { bankName: 'Access Bank', bankCode: '000014' },
    { bankName: 'First Bank of Nigeria', bankCode: '000016' },
    { bankName: 'Guaranty Trust Bank', bankCode: '000013' },
    { bankName: 'United Bank For Africa', bankCode: '000004' },
    { bankName: 'Zenith Bank', bankCode: '000015' },
    { bankName: 'Kuda Microfinance Bank', bankCode: '090267' },
    { bankName: 'OPay', bankCode: '100004' },
  ],
  KES: [
    { bankName: 'M-PESA', bankCode: 'MPESA' },
    { bankName: 'Equity Bank Kenya', bankCode: 'EQBLKE' },
    { bankName: 'KCB Bank Kenya', bankCode: 'KCBLKE' },
  ],
  GHS: [
    { bankName: 'MTN Mobile Money', bankCode: 'MTNGH' },
    { bankName: 'Telecel Cash', bankCode: 'VODGH' },
    { bankName: 'AirtelTigo Money', bankCode: 'ATGH' },
    { bankName: 'GCB Bank', bankCode: 'GCBGH' },
  ],
};

const GATEWAY_RESPONSE: Record<LedgerStatus, string> = {
  success: 'Approved',
  pending: 'Pending',
  failed: 'Failed',
  reversed: 'Reversed',
};

const CHARGE_MESSAGE: Record<LedgerStatus, string> = {
  success: 'Charge successful',
  pending: 'Charge pending',
  failed: 'Charge failed',
  reversed: 'Charge reversed',
};

const NOTIFY_TYPE: Record<LedgerStatus, string | undefined> = {
  success: 'successful',
  failed: 'failed',
  reversed: 'reversed',
  pending: undefined,
};

function fail(status: number, message: string, extra?: Record<string, unknown>): ApiResult {
  return { status, body: { success: false, message, ...extra } };
}

function validationFailure(error: z.ZodError): ApiResult {
  const details = error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
  return fail(400, `Validation failed: ${details.join('; ')}`);
}

const major = (minor: number): string => formatMajor(minor as AmountMinor);
const iso = (ms: number): string => new Date(ms).toISOString();

const INTERNAL_ERROR = fail(500, 'Internal server error');
const RATE_LIMITED: ApiResult = {
  status: 429,
  headers: { 'retry-after': '1' },
  body: { success: false, message: 'Too many requests' },
};
const DUPLICATE = fail(409, 'Duplicate reference');

interface Submission {
  kind: SubmissionKind;
  reference: string;
  amountMinor: number;
  currency: string;
  feeMinor: number;
}

export class SandboxCore {
  /** Earlier submissions of a reference that recorded nothing (56, 57); see decideBehaviour. */
  private readonly unrecordedTries = new Map<string, number>();

  constructor(private readonly deps: SandboxCoreDeps) {}

  /** `POST /api/s2s/transaction/initialize`. */
  charge(payload: unknown): ApiResult {
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
    return this.submit(sub, (entry) => ({
      status: 200,
      body: {
        status: true,
        message: CHARGE_MESSAGE[entry.status],
        data: this.chargeData(p.reference, entry),
      },
    }));
  }

  /** `POST /api/v1/bank_transfer`. */
  payout(payload: unknown): ApiResult {
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
    return this.submit(sub, (entry) => ({
      status: 200,
      body: {
        success: true,
        message: 'Transfer successfully logged and Processing',
        data: {
          ...this.payoutData(p.reference, entry),
          account_name: p.account_name,
          account_number: p.account_number,
          bank_code: p.bank_code,
          bank_name: p.bank_name,
          narration: p.narration,
          paymentMode: p.paymentMode ?? 'bank',
        },
      },
    }));
  }

  /** `GET /api/v1/transaction/verify/{reference}` (and the s2s alias). */
  verifyCharge(ref: string): ApiResult {
    const entry = this.deps.ledger.get(ref);
    if (!entry || entry.kind !== 'charge') {
      return fail(404, 'Transaction not found', {
        error: `No transaction found with reference: ${ref}`,
      });
    }
    return {
      status: 200,
      body: {
        success: true,
        message: 'Verification successful',
        data: this.chargeData(ref, entry),
      },
    };
  }

  /** `GET /api/v1/payout/{reference}`. */
  lookupPayout(ref: string): ApiResult {
    const entry = this.deps.ledger.get(ref);
    if (!entry || entry.kind !== 'payout') return fail(404, 'Payout not found');
    return {
      status: 200,
      body: { success: true, message: 'Payout retrieved', data: this.payoutData(ref, entry) },
    };
  }

  /** `GET /api/v1/bank_list[/{currency}]`. */
  banks(currency: string): ApiResult {
    const list = BANKS[currency.toUpperCase()];
    if (!list) return fail(400, `Unsupported currency: ${currency}`);
    return {
      status: 200,
      body: {
        success: true,
        message: 'Bank list retrieved',
        currency: currency.toUpperCase(),
        data: list,
      },
    };
  }

  /**
   * `POST /api/v1/account_name_verify`. Fails ("Name query failed", 400) for an unknown bank
   * code, a non-numeric account number, or one ending in `0000`, so callers can test the failure.
   */
  accountName(payload: unknown): ApiResult {
    const parsed = accountNameSchema.safeParse(payload);
    if (!parsed.success) return validationFailure(parsed.error);
    const { bank_code, account_number, currency } = parsed.data;
    const known = BANKS[currency]?.some((b) => b.bankCode === bank_code) ?? false;
    if (!known || !/^\d{6,15}$/.test(account_number) || account_number.endsWith('0000')) {
      return fail(400, 'Name query failed');
    }
    return {
      status: 200,
      body: {
        success: true,
        message: 'Account name retrieved.',
        data: `Sandbox Account ${account_number.slice(-4)}`,
      },
    };
  }

  /** `GET /api/v1/wallet_balance/{currency}`. */
  wallet(currency: string): ApiResult {
    const c = currency.toUpperCase();
    if (!(CURRENCIES as readonly string[]).includes(c)) {
      return fail(400, `Unsupported currency: ${currency}`);
    }
    return {
      status: 200,
      body: {
        success: true,
        message: 'Wallet Balance Fetched Successfully',
        data: { currency: c, balance: major(this.deps.ledger.balanceMinor(c)), pending: '0' },
      },
    };
  }

  private submit(sub: Submission, ok: (entry: StoredEntry) => ApiResult): ApiResult {
    const { ledger } = this.deps;
    if (ledger.has(sub.reference)) return DUPLICATE;
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
    const entry = this.record(sub, behaviour);
    switch (behaviour) {
      case 'moved_then_500':
        return INTERNAL_ERROR;
      case 'moved_then_hang':
        return { ...ok(entry), holdMs: this.deps.hangMs };
      default:
        return ok(entry);
    }
  }

  private record(sub: Submission, behaviour: Behaviour): StoredEntry {
    const nowMs = this.deps.now();
    const pending = behaviour === 'pending_then_success' || behaviour === 'pending_then_failed';
    const declined = behaviour === 'decline';
    const status: LedgerStatus = pending ? 'pending' : declined ? 'failed' : 'success';
    const entry = this.deps.ledger.record(sub.reference, {
      kind: sub.kind,
      amount: sub.amountMinor,
      currency: sub.currency,
      status,
      moneyMoved: status === 'success',
      feeMinor: sub.feeMinor,
      gatewayResponse: declined ? 'Declined' : GATEWAY_RESPONSE[status],
      createdAtMs: nowMs,
    });
    if (status !== 'pending') this.emit(sub.reference, entry);

    if (behaviour === 'pending_then_success') {
      this.settleLater(sub.reference, 'success', true);
    } else if (behaviour === 'pending_then_failed') {
      this.settleLater(sub.reference, 'failed', false);
    } else if (behaviour === 'success_then_reversed') {
      this.settleLater(sub.reference, 'reversed', false);
    }
    return entry;
  }

  private settleLater(ref: string, status: LedgerStatus, moneyMoved: boolean): void {
    this.deps.timers.after(this.deps.settleMs, () => {
      const entry = this.deps.ledger.transition(ref, {
        status,
        moneyMoved,
        gatewayResponse: GATEWAY_RESPONSE[status],
        nowMs: this.deps.now(),
      });
      if (!entry) return;
      this.emit(ref, entry);
    });
  }

  private emit(ref: string, entry: StoredEntry): void {
    const notifyType = NOTIFY_TYPE[entry.status];
    if (!this.deps.notify || notifyType === undefined) return;
    const payload =
      entry.kind === 'payout'
        ? { notify: 'payout', notifyType, data: this.payoutData(ref, entry) }
        : { notify: 'transaction', notifyType, data: this.chargeData(ref, entry) };
    this.deps.notify(ref, payload);
  }

  private chargeData(ref: string, e: StoredEntry): Record<string, unknown> {
    return {
      reference: ref,
      amount: major(e.amount + e.feeMinor),
      requested_amount: major(e.amount),
      fees: major(e.feeMinor),
      currency: e.currency,
      status: e.status,
      gateway_response: e.gatewayResponse,
      channel: 'card',
      domain: 'test',
      transaction_date: iso(e.createdAtMs),
    };
  }

  private payoutData(ref: string, e: StoredEntry): Record<string, unknown> {
    return {
      reference: ref,
      amount: major(e.amount),
      fee: major(e.feeMinor),
      currency: e.currency,
      status: e.status,
      gateway_response: e.gatewayResponse,
      domain: 'test',
      created_at: iso(e.createdAtMs),
      updated_at: iso(e.updatedAtMs),
    };
  }
}
