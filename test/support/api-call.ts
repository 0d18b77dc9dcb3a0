/** One request to a test app's HTTP API with the write token, JSON in and out. */
import { TEST_API_TOKEN } from './app.ts';

export interface ApiReply<B> {
  status: number;
  body: B;
}

/** `method path` on a test app's api role, with `body` as JSON when given. */
export async function apiCall<B = Record<string, unknown>>(
  app: { url?: string | undefined },
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiReply<B>> {
  if (app.url === undefined) throw new Error('the test app runs no api role');
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TEST_API_TOKEN}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as B };
}
