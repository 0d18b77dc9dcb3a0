/** The read-only endpoints that touch no reference: banks, account names, wallets. */
import { CURRENCIES } from '../kernel/money.ts';
import type { LedgerStore } from './ledger.ts';
import { accountNameSchema } from './requests.ts';
import { fail, major, validationFailure, type ApiResult } from './wire.ts';

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

/** `GET /api/v1/bank_list[/{currency}]`. */
export function banks(currency: string): ApiResult {
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
export function accountName(payload: unknown): ApiResult {
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
export function wallet(ledger: LedgerStore, currency: string): ApiResult {
  const c = currency.toUpperCase();
  if (!(CURRENCIES as readonly string[]).includes(c)) {
    return fail(400, `Unsupported currency: ${currency}`);
  }
  return {
    status: 200,
    body: {
      success: true,
      message: 'Wallet Balance Fetched Successfully',
      data: { currency: c, balance: major(ledger.balanceMinor(c)), pending: '0' },
    },
  };
}
