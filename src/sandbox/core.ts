/**
 * What each sandbox endpoint does, as `(payload) => { status, body }` with no HTTP framework
 * types. This class wires the parts together: submissions (submissions.ts), 3-D Secure
 * challenges (three-ds.ts), transitions and webhooks (lifecycle.ts), and the read-only
 * directory (directory.ts); lookups, with the `lookupLagMs` and `notFound` unknowns, are here.
 * The transport (auth, encryption, latency, held responses) lives in server.ts.
 */
import { accountName, banks, wallet } from './directory.ts';
import type { LedgerStore } from './ledger.ts';
import { Lifecycle } from './lifecycle.ts';
import type { RefundFault, StatusVocabulary, Unknowns } from './options.ts';
import { SandboxRefunds } from './refunds.ts';
import { Submissions } from './submissions.ts';
import { ThreeDs, type ThreeDsAction } from './three-ds.ts';
import type { TimerRegistry } from './timers.ts';
import { chargeData, fail, payoutData, type ApiResult } from './wire.ts';

export type { ApiResult } from './wire.ts';

export interface SandboxCoreDeps {
  ledger: LedgerStore;
  timers: TimerRegistry;
  settleMs: number;
  hangMs: number;
  faultRate: number;
  seed: number;
  now: () => number;
  unknowns: Unknowns;
  /** The injected fault on each transaction's first refund request. */
  refundFault?: RefundFault;
  /** Called with each webhook payload when a reference reaches a final status; absent = no webhooks. */
  notify?: (reference: string, payload: unknown) => void;
}

export class SandboxCore {
  /** References recorded less than `lookupLagMs` ago: lookups do not see them yet. */
  private readonly unseen = new Set<string>();
  private readonly submissions: Submissions;
  readonly threeDs: ThreeDs;
  /** `POST /api/v1/refund` and the refund lookups (refunds.ts). */
  readonly refunds: SandboxRefunds;

  constructor(private readonly deps: SandboxCoreDeps) {
    const { ledger, timers, now, unknowns } = deps;
    const lifecycle = new Lifecycle({
      ledger,
      timers,
      now,
      settleMs: deps.settleMs,
      collectionWebhook: unknowns.collectionWebhook,
      statusWords: unknowns.statusWords,
      ...(deps.notify ? { notify: deps.notify } : {}),
    });
    this.threeDs = new ThreeDs({
      ledger,
      timers,
      lifecycle,
      now,
      expiryMs: unknowns.threeDsExpiryMs,
    });
    this.submissions = new Submissions({
      ledger,
      lifecycle,
      threeDs: this.threeDs,
      unknowns,
      now,
      hangMs: deps.hangMs,
      faultRate: deps.faultRate,
      seed: deps.seed,
      onRecorded: (ref) => this.hideFromLookups(ref),
    });
    this.refunds = new SandboxRefunds({
      ledger,
      timers,
      unknowns,
      fault: deps.refundFault ?? 'none',
      hangMs: deps.hangMs,
      now,
      hide: (rf) => this.hideFromLookups(rf),
      hidden: (rf) => this.unseen.has(rf),
    });
  }

  /** `POST /api/s2s/transaction/initialize`; `origin` (`http://host:port`) roots 3DS links. */
  charge(payload: unknown, origin = ''): ApiResult {
    return this.submissions.charge(payload, origin);
  }

  /** `POST /api/v1/bank_transfer`. */
  payout(payload: unknown, origin = ''): ApiResult {
    return this.submissions.payout(payload, origin);
  }

  /** `GET /api/v1/transaction/verify/{reference}` (and the s2s alias). */
  verifyCharge(ref: string): ApiResult {
    const entry = this.visible(ref);
    if (!entry || entry.kind !== 'charge') {
      return this.notFound('Transaction not found', {
        error: `No transaction found with reference: ${ref}`,
      });
    }
    return {
      status: 200,
      body: {
        success: true,
        message: 'Verification successful',
        data: chargeData(ref, entry, this.words),
      },
    };
  }

  /** `GET /api/v1/payout/{reference}`. */
  lookupPayout(ref: string): ApiResult {
    const entry = this.visible(ref);
    if (!entry || entry.kind !== 'payout') return this.notFound('Payout not found');
    return {
      status: 200,
      body: {
        success: true,
        message: 'Payout retrieved',
        data: payoutData(ref, entry, this.words),
      },
    };
  }

  /** `POST {_links.url}`: the documented second 3DS2 step. */
  triggerThreeDs(ref: string, payload: unknown, origin: string): ApiResult {
    return this.threeDs.trigger(ref, payload, origin);
  }

  /** `POST /__sandbox/3ds/{ref}/{action}`: the payer completes, fails or abandons. */
  endThreeDs(ref: string, action: ThreeDsAction): ApiResult {
    return this.threeDs.end(ref, action);
  }

  /** `GET /api/v1/bank_list[/{currency}]`. */
  banks(currency: string): ApiResult {
    return banks(currency);
  }

  /** `POST /api/v1/account_name_verify`. */
  accountName(payload: unknown): ApiResult {
    return accountName(payload);
  }

  /** `GET /api/v1/wallet_balance/{currency}`. */
  wallet(currency: string): ApiResult {
    return wallet(this.deps.ledger, currency);
  }

  /** The `statusWords` unknown: the vocabulary of every status this sandbox sends. */
  private get words(): StatusVocabulary {
    return this.deps.unknowns.statusWords;
  }

  private visible(ref: string) {
    return this.unseen.has(ref) ? undefined : this.deps.ledger.get(ref);
  }

  /** The `notFound` unknown: 404, or 200 with the same failure body. */
  private notFound(message: string, extra?: Record<string, unknown>): ApiResult {
    return fail(this.deps.unknowns.notFound === '404' ? 404 : 200, message, extra);
  }

  private hideFromLookups(ref: string): void {
    const lag = this.deps.unknowns.lookupLagMs;
    if (lag <= 0) return;
    this.unseen.add(ref);
    this.deps.timers.after(lag, () => this.unseen.delete(ref));
  }
}
