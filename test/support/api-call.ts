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
