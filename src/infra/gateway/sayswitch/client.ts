/**
 * The Sayswitch adapter: implements the PaymentGateway port by composing one module per concern,
 * all speaking the wire contract of docs/sayswitch-wire.md:
 * transport.ts (HTTP, envelope, encryption), submissions.ts (charge, payout), lookups.ts (verify,
 * payout lookup, duplicate resolution), directory.ts (banks, account name, wallet), with
 * outcomes.ts and status.ts reading answers and error-mapping/ deciding every error kind.
 */
import type { Currency, PayoutCurrency } from '../../../kernel/money.ts';
import type {
  Bank,
  ChargeRequest,
  GatewayOutcome,
  LookupOutcome,
  PaymentGateway,
  GatewayRefund,
  PayoutRequest,
  RefundRequest,
  WalletBalance,
} from '../../../kernel/ports.ts';
import { SayswitchDirectory } from './directory.ts';
import { defaultSayswitchPaths, type SayswitchPaths } from './endpoints.ts';
import { SayswitchLookups } from './lookups.ts';
import { SayswitchRefunds } from './refunds.ts';
import { SayswitchSubmissions } from './submissions.ts';
import { SayswitchTransport, type TransportOptions } from './transport.ts';

/**
 * The transport's options plus the paths that are configurable because they may differ in
 * production (docs/sayswitch-wire.md "Endpoints").
 */
export interface SayswitchOptions extends TransportOptions {
  chargePath?: string;
  /** Template with `{reference}`. */
  verifyPath?: string;
  /** Template with `{reference}`. */
  payoutLookupPath?: string;
}

/** Sayswitch S2S card charges and payouts behind the PaymentGateway port. */
export class SayswitchGateway implements PaymentGateway {
  private readonly transport: SayswitchTransport;
  private readonly submissions: SayswitchSubmissions;
  private readonly lookups: SayswitchLookups;
  private readonly directory: SayswitchDirectory;
  private readonly refunds: SayswitchRefunds;

  constructor(opts: SayswitchOptions) {
    const paths: SayswitchPaths = {
      ...defaultSayswitchPaths,
      chargePath: opts.chargePath ?? defaultSayswitchPaths.chargePath,
      verifyPath: opts.verifyPath ?? defaultSayswitchPaths.verifyPath,
      payoutLookupPath: opts.payoutLookupPath ?? defaultSayswitchPaths.payoutLookupPath,
    };
    this.transport = new SayswitchTransport(opts);
    this.lookups = new SayswitchLookups(this.transport, paths, opts.logger);
    this.submissions = new SayswitchSubmissions(this.transport, paths, this.lookups);
    this.directory = new SayswitchDirectory(this.transport, paths);
    this.refunds = new SayswitchRefunds(this.transport, paths);
  }

  /** Closes the keep-alive sockets. Call on shutdown; the instance is unusable afterwards. */
  close(): void {
    this.transport.close();
  }

  /**
   * Charges an encrypted card token. A decline is a `failed` result; a 3-D Secure challenge is
   * `requires_action`; a duplicate reference (any shape) adopts the existing reference's state.
   */
  chargeCard(req: ChargeRequest): Promise<GatewayOutcome> {
    return this.submissions.chargeCard(req);
  }

  /** Sends a payout. Sayswitch processes payouts asynchronously, so `pending` is the usual answer. */
  payout(req: PayoutRequest): Promise<GatewayOutcome> {
    return this.submissions.payout(req);
  }

  /** Looks a charge up by reference; `not_found` when Sayswitch has never seen it. */
  verifyCharge(reference: string): Promise<LookupOutcome> {
    return this.lookups.verifyCharge(reference);
  }

  /** Looks a payout up by reference; `not_found` when Sayswitch has never seen it. */
  lookupPayout(reference: string): Promise<LookupOutcome> {
    return this.lookups.lookupPayout(reference);
  }

  /** Banks (or mobile-money providers) that accept payouts in `currency`. */
  listBanks(currency: PayoutCurrency): Promise<Bank[]> {
    return this.directory.listBanks(currency);
  }

  /** The account holder's name for a bank account or wallet; fatal when the gateway cannot resolve it. */
  resolveAccountName(q: {
    bankCode: string;
    accountNumber: string;
    currency: PayoutCurrency;
  }): Promise<string> {
    return this.directory.resolveAccountName(q);
  }

  /** The merchant's wallet in `currency`. */
  walletBalance(currency: Currency): Promise<WalletBalance> {
    return this.directory.walletBalance(currency);
  }

  /** Asks for a refund of a transaction (refunds.ts). */
  refund(req: RefundRequest): Promise<GatewayRefund> {
    return this.refunds.refund(req);
  }

  /** A refund by Sayswitch's `RF_…` reference; undefined when it does not know it. */
  refundStatus(gatewayReference: string): Promise<GatewayRefund | undefined> {
    return this.refunds.refundStatus(gatewayReference);
  }

  /** The refunds Sayswitch shows for a transaction reference. */
  refundsOf(transactionReference: string): Promise<GatewayRefund[]> {
    return this.refunds.refundsOf(transactionReference);
  }
}

/** The "reference exists at the gateway" marker of an unresolved duplicate (docs/sayswitch-wire.md). */
export {
  DUPLICATE_REFERENCE_UNRESOLVED,
  DuplicateReferenceUnresolvedError,
  referenceExistsAtGateway,
} from './error-mapping/response-errors.ts';
