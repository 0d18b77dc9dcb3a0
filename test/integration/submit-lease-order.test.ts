/**
 * The submit lease starts with the outbound rate limit's token (issue "Survive the platform",
 * item 6; issue 18 folded the token into the claim): the claim takes the token in the same atomic
 * step, so over the limit nothing is claimed, no lease starts and the gateway is not called; the
 * claim is made again once the window has passed, and its lease starts then. Lookups still take
 * their token inside the gateway, from the same counter.
 *
 * The limit is 1 token per second and the test fills the window before the payments exist, so
 * every first claim finds the limit spent. Assertions are on recorded claim results and Redis
 * state, never on how long anything took.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, startRoles, type App, type RunningRoles } from '../../src/app/composition.ts';
import { createRateLimiter } from '../../src/infra/gateway/rate-limited-gateway.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { createLogger } from '../../src/infra/logger.ts';
import type { PaymentGateway, TransitionResult } from '../../src/kernel/ports.ts';
import { createPayment } from '../../src/payments/create.ts';
import { createDeps, testConfig } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis } from '../support/redis.ts';
import { uniquePrefix } from '../support/redis.ts';

type Event =
  | { what: 'claim'; key: string; result: TransitionResult; calls: number }
  | { what: 'called'; reference: string };

const LEASE_MS = 2_000;
const events: Event[] = [];
let calls = 0;

let prefix: string;
let app: App;
let running: RunningRoles;
let limiterRedis: Awaited<ReturnType<typeof createTestRedis>>;

/** Succeeds every charge at once, recording the call. */
const gateway: PaymentGateway = {
  chargeCard: (r) => {
    calls++;
    events.push({ what: 'called', reference: r.reference });
    return Promise.resolve({ reference: r.reference, status: 'succeeded' });
  },
  payout: () => Promise.reject(new Error('no payouts here')),
  verifyCharge: (reference) => Promise.resolve({ reference, status: 'not_found' }),
  lookupPayout: (reference) => Promise.resolve({ reference, status: 'not_found' }),
  listBanks: () => Promise.resolve([]),
  resolveAccountName: () => Promise.resolve('Ada Obi'),
  walletBalance: () => Promise.reject(new Error('no balance here')),
  refund: () => Promise.reject(new Error('no refunds here')),
  refundStatus: () => Promise.resolve(undefined),
  refundsOf: () => Promise.resolve([]),
};

beforeAll(async () => {
  prefix = uniquePrefix('lease-order');
  const config = await testConfig(prefix, {
    SAYSWITCH_RATE_LIMIT_PER_SEC: '1',
    WORKER_CONCURRENCY: '2',
    SUBMIT_LEASE: `${LEASE_MS}ms`,
  });
  limiterRedis = await createTestRedis({}, 'lease-order limiter');
  // The production lookup limiter (rate-limiter-flexible, 1 token per second) at the layout's key;
  // giving it also switches the claim's limit on for this gateway double.
  const rateLimiter = createRateLimiter(limiterRedis, {
    key: storeKeys(prefix).rateLimit(),
    perSecond: config.sayswitch.rateLimitPerSec,
  });
  app = openApp(config, createLogger({ level: 'silent' }), { gateway, rateLimiter });
  // Record every claim (`→ submitting`) result and how many gateway calls had been made by then.
  const store = app.store;
  const transition = store.transition.bind(store);
  store.transition = async (key, to, at, opts) => {
    const result = await transition(key, to, at, opts);
    if (to === 'submitting') events.push({ what: 'claim', key, result, calls });
    return result;
  };
  running = await startRoles(app, ['worker']);
});

afterAll(async () => {
  await running?.stop(5_000);
  if (app) {
    await cleanupPrefix(app.redis, prefix);
    await app.close();
  }
  await limiterRedis?.quit();
});

describe('the submit claim takes the rate limit token', () => {
  it('over the limit nothing is claimed nor called; the claim made after the window holds the lease', async () => {
    // The window's one token is spent for the next 3 s (well past the jobs being picked up).
    await limiterRedis.set(storeKeys(prefix).rateLimit(), '1', 'PX', 3_000);
    const deps = createDeps(app);
    for (const key of ['lease-a', 'lease-b']) {
      const r = await createPayment(deps, {
        type: 'charge',
        key,
        email: 'ada@example.com',
        amount: '10.00',
        currency: 'NGN',
        card_token: 'tok_lease_0123456789',
      });
      expect(r.status).toBe('created');
    }
    for (const key of ['api_lease-a', 'api_lease-b']) {
      await until(() => app.store.get(key), {
        done: (i) => i?.state === 'succeeded',
        what: `${key} succeeded`,
        timeoutMs: 20_000,
      });
    }

    const claims = events.filter((e) => e.what === 'claim');
    for (const key of ['api_lease-a', 'api_lease-b']) {
      const mine = claims.filter((c) => c.key === key);
      const ok = mine.filter((c) => c.result.ok);
      // One successful claim per payment, after at least one refused for the limit.
      expect(ok).toHaveLength(1);
      const first = mine[0];
      expect(first?.result).toMatchObject({ ok: false, why: 'rate_limited', state: 'queued' });
      if (first?.result.ok === false && first.result.why === 'rate_limited')
        expect(first.result.retryInMs).toBeGreaterThan(0);
      const claim = ok[0];
      if (!claim?.result.ok) throw new Error('no claim');
      // The lease starts at the successful claim: leaseUntil = sentAt + SUBMIT_LEASE.
      expect(claim.result.intent.leaseUntil).toBe((claim.result.intent.sentAt ?? 0) + LEASE_MS);
      // The gateway was called for it only after that claim.
      const at = events.indexOf(claim);
      const call = events.findIndex(
        (e, j) => e.what === 'called' && e.reference === `${key}_1` && j > at,
      );
      expect(call, `call of ${key}`).toBeGreaterThan(at);
      expect(
        events.slice(0, at).some((e) => e.what === 'called' && e.reference === `${key}_1`),
      ).toBe(false);
    }
    // While every claim was refused, no call had been made.
    const refused = claims.filter((c) => !c.result.ok);
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(calls).toBe(2);
  });

  it('lookups take a token inside the gateway from the same counter; submissions through it take none', async () => {
    const key = storeKeys(prefix).rateLimit();
    await limiterRedis.set(key, '0', 'PX', 60_000);
    expect(await app.gateway.verifyCharge('api_lease-a_1')).toEqual({
      reference: 'api_lease-a_1',
      status: 'not_found',
    });
    expect(await limiterRedis.get(key)).toBe('1');
    await app.gateway.chargeCard({
      reference: 'api_lease-direct_1' as never,
      amount: 100 as never,
      currency: 'NGN',
      email: 'ada@example.com',
      cardToken: 'tok_direct_0123456789',
    });
    expect(await limiterRedis.get(key)).toBe('1');
    await limiterRedis.del(key);
  });
});
