/**
 * Subscription routes over HTTP for integration tests (subscriptions-lifecycle, -patch): a
 * fastify server with the subscription and test-clock routes on a subscription harness
 * (subscription-harness.ts), its sandbox, and helpers to call it and read what happened. Every
 * server, harness and sandbox opened is closed by `closeOpened` (call it in afterEach).
 */
import type { FastifyInstance } from 'fastify';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { registerSubscriptionRoutes } from '../../src/http/routes/subscriptions.ts';
import { registerTestClockRoutes } from '../../src/http/routes/test-clocks.ts';
import { createLogger } from '../../src/infra/logger.ts';
import type { SubscriptionServiceDeps } from '../../src/subscriptions/service.ts';
import { TEST_API_TOKEN } from './app.ts';
import { startTestSandbox } from './sandbox.ts';
import { startSubsHarness, type SubsHarness } from './subscription-harness.ts';

export const DAY = 86_400_000;
export const ms = (iso: string) => Date.parse(iso);

const opened: { close(): Promise<void> }[] = [];
/** Closes everything {@link setup} opened, newest first. */
export async function closeOpened(): Promise<void> {
  for (const c of opened.reverse()) await c.close();
  opened.length = 0;
}
export interface Ctx {
  sandbox: Sandbox;
  h: SubsHarness;
  call: (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    payload?: object,
  ) => Promise<Res>;
}
export interface Res {
  statusCode: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  raw: string;
}

export async function server(
  deps: SubscriptionServiceDeps,
  h: SubsHarness,
): Promise<FastifyInstance> {
  const s = await buildHttpServer({
    logger: createLogger({ level: 'silent' }),
    tokens: { write: TEST_API_TOKEN },
    // Every answer checked against the API document, as the test apps do (FAST_ENV).
    checkResponses: true,
    payments: {
      store: h.app.store,
      dispatcher: h.app.dispatcher,
      sealer: h.app.sealer,
      clock: h.clock,
      hasher: h.app.hasher,
    },
    ready: () => Promise.resolve({ ok: true as const }),
    extensions: [
      (app) => registerSubscriptionRoutes(app, deps),
      (app) => registerTestClockRoutes(app, deps),
    ],
  });
  opened.push({ close: () => s.close() });
  return s;
}

export function caller(s: FastifyInstance): Ctx['call'] {
  return async (method, url, payload) => {
    const res = await s.inject({
      method,
      url,
      headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
      ...(payload !== undefined ? { payload } : {}),
    });
    return { statusCode: res.statusCode, body: res.json(), raw: res.body };
  };
}

export async function setup(start: string, env: Record<string, string> = {}): Promise<Ctx> {
  const sandbox = await startTestSandbox();
  opened.push(sandbox);
  const h = await startSubsHarness({ sandboxUrl: sandbox.url, start: ms(start), env });
  opened.push(h);
  return { sandbox, h, call: caller(await server(h.service, h)) };
}

/** The fields a 422 names, sorted. */
export const fieldsOf = (res: Res) =>
  (res.body as { error: { details: { field?: string }[] } }).error.details
    .map((d) => d.field)
    .sort();

export const body = (over: Record<string, unknown>) => ({
  customer_email: 'ada@example.com',
  card_token: 'tok_card_secret_4111',
  amount: '1500',
  currency: 'NGN',
  interval: 'month',
  interval_count: 1,
  anchor: '2025-02-01T08:00:00Z',
  timezone: 'UTC',
  ...over,
});

export function ledgerOf(sandbox: Sandbox, id: string) {
  return Object.entries(sandbox.ledger().references)
    .filter(([ref]) => ref.startsWith(`sub_${id}_`))
    .map(([ref, e]) => [ref, e.amount, e.status] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

export async function eventsOf(h: SubsHarness, id: string) {
  return (await h.events()).filter(
    (e) => e.type.startsWith('subscription.') && e.data.subscriptionId === id,
  );
}

/** Ticks at `iso` and waits for what it started. */
export async function tickAt(h: SubsHarness, iso: string) {
  h.clock.set(ms(iso));
  const r = await h.tick();
  await h.settle();
  return r;
}
