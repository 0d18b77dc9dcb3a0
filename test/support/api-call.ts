/** One request to a test app's HTTP API with the write token, JSON in and out. */
import { TEST_API_TOKEN } from './app.ts';

export interface ApiReply<B> {
  status: number;
  body: B;
}

/**
 * `method path` on a test app's api role (or any base URL), with `body` as JSON when given. An
 * empty answer reads as `{}`. `timeoutMs`: a request that hangs fails the test instead of
 * hanging it.
 */
export async function apiCall<B = Record<string, unknown>>(
  app: { url?: string | undefined },
  method: string,
  path: string,
  body?: unknown,
  opts: { timeoutMs?: number } = {},
): Promise<ApiReply<B>> {
  if (app.url === undefined) throw new Error('the test app runs no api role');
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TEST_API_TOKEN}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(opts.timeoutMs !== undefined ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as B };
}

/**
 * The body of API payment `i` of a run: a charge for even `i`, a payout for odd `i` (so a run has
 * both), key `<keyPrefix><i>`, amount `100 + i` naira.
 */
export function alternatingPaymentBody(
  i: number,
  keyPrefix: string,
  narration: string,
): Record<string, unknown> {
  const common = { key: `${keyPrefix}${i}`, amount: `${100 + i}.00`, currency: 'NGN' };
  return i % 2 === 0
    ? { type: 'charge', ...common, email: 'ada@example.com', card_token: 'tok_abcdef0123456789' }
    : {
        type: 'payout',
        ...common,
        account_number: '0123456789',
        bank_code: '000013',
        bank_name: 'GTBank',
        account_name: 'Ada Lovelace',
        narration,
      };
}
