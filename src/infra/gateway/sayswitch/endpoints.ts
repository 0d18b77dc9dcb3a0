/**
 * The Sayswitch endpoint paths the adapter calls (docs/sayswitch-wire.md "Endpoints"), and the
 * filling of their `{reference}` / `{currency}` placeholders.
 */

/** Paths of the endpoints; `{reference}` and `{currency}` are filled in per call. */
export const defaultSayswitchPaths = {
  chargePath: '/api/s2s/transaction/initialize',
  verifyPath: '/api/v1/transaction/verify/{reference}',
  payoutPath: '/api/v1/bank_transfer',
  payoutLookupPath: '/api/v1/payout/{reference}',
  bankListPath: '/api/v1/bank_list',
  bankListByCurrencyPath: '/api/v1/bank_list/{currency}',
  accountNamePath: '/api/v1/account_name_verify',
  walletBalancePath: '/api/v1/wallet_balance/{currency}',
  refundPath: '/api/v1/refund',
  refundStatusPath: '/api/v1/refund/status/{reference}',
  /** The documented list; the `reference` filter is ours (docs/refunds.md), matched again here. */
  refundListPath: '/api/v1/refund?reference={reference}',
} as const;

/** The paths in use: the defaults, some overridden by configuration. */
export type SayswitchPaths = Record<keyof typeof defaultSayswitchPaths, string>;

/**
 * Fills `{name}` placeholders, URL-encoding each value so a reference cannot change the path.
 * A placeholder without a value is left as it is.
 */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const v = values[name];
    return v === undefined ? whole : encodeURIComponent(v);
  });
}
