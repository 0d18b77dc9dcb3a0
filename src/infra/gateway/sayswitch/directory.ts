/**
 * Directory reads, which move no money: the banks of a payout currency, an account holder's name,
 * the merchant's wallet balance. A 2xx failure envelope on one of these is fatal rather than
 * outcome_unknown (error-mapping/response-errors.ts), because no money can have moved.
 */
import type { Currency, PayoutCurrency } from '../../../kernel/money.ts';
import type { Bank, WalletBalance } from '../../../kernel/ports.ts';
import { fillTemplate, type SayswitchPaths } from './endpoints.ts';
import { noAnswerError } from './error-mapping/response-errors.ts';
import {
  accountNameResponseSchema,
  bankListResponseSchema,
  walletBalanceResponseSchema,
} from './schemas.ts';
import type { SayswitchTransport } from './transport.ts';

/** Banks, account names and wallet balances. */
export class SayswitchDirectory {
  constructor(
    private readonly transport: SayswitchTransport,
    private readonly paths: Pick<
      SayswitchPaths,
      'bankListPath' | 'bankListByCurrencyPath' | 'accountNamePath' | 'walletBalancePath'
    >,
  ) {}

  /** Banks (or mobile-money providers) that accept payouts in `currency`. */
  async listBanks(currency: PayoutCurrency): Promise<Bank[]> {
    const template =
      currency === 'NGN' ? this.paths.bankListPath : this.paths.bankListByCurrencyPath;
    const result = await this.transport.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { currency }),
      operation: 'read',
      schema: bankListResponseSchema,
    });
    if (result.type !== 'ok') throw noAnswerError(template);
    return result.data.data.map((b) => ({ name: b.bankName, code: b.bankCode }));
  }

  /** The account holder's name for a bank account or wallet; fatal when the gateway cannot resolve it. */
  async resolveAccountName(q: {
    bankCode: string;
    accountNumber: string;
    currency: PayoutCurrency;
  }): Promise<string> {
    const template = this.paths.accountNamePath;
    const result = await this.transport.call({
      method: 'POST',
      template,
      path: template,
      operation: 'read',
      payload: { bank_code: q.bankCode, account_number: q.accountNumber, currency: q.currency },
      schema: accountNameResponseSchema,
    });
    if (result.type !== 'ok') throw noAnswerError(template);
    return result.data.data;
  }

  /** The merchant's wallet in `currency`. */
  async walletBalance(currency: Currency): Promise<WalletBalance> {
    const template = this.paths.walletBalancePath;
    const result = await this.transport.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { currency }),
      operation: 'read',
      schema: walletBalanceResponseSchema,
    });
    if (result.type !== 'ok') throw noAnswerError(template);
    return { currency, balance: result.data.data.balance, pending: result.data.data.pending };
  }
}
