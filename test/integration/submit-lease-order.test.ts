/**
 * The submit lease starts after the outbound rate limit (issue "Survive the platform", item 6): a
 * submission waits for its token, then claims the intent with its lease, then calls the gateway,
 * which does not wait again; lookups still wait inside the gateway. With the real Redis limiter at
 * 1 token per second and two submissions running at once, the second waits in line for its token;
 * its lease must start after that grant, not before. Time is a fake clock that moves only when a
 * token is granted (grant n at n seconds), so every assertion is on recorded events and fake
 * timestamps, never on wall-clock durations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, startRoles, type App, type RunningRoles } from '../../src/app/composition.ts';
import { createRateLimiter } from '../../src/infra/gateway/rate-limited-gateway.ts';
import { createLogger } from '../../src/infra/logger.ts';
import type { Clock } from '../../src/kernel/clock.ts';
import type { PaymentGateway, RateLimiter } from '../../src/kernel/ports.ts';
import { createPayment } from '../../src/payments/create.ts';
import { testConfig } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';

type Event =
  | { what: 'granted'; at: number }
  | { what: 'claimed'; key: string; leaseFrom: number; leaseUntil: number }
  | { what: 'called'; reference: string; at: number };

const SECOND = 1_000;
const LEASE_MS = 2_000;

const events: Event[] = [];
let now = 0;
const clock: Clock = { now: () => now };
let grants = 0;

let prefix: string;
let app: App;
let running: RunningRoles;
let limiterRedis: Awaited<ReturnType<typeof createTestRedis>>;

/** Succeeds every charge at once, recording when it was called. */
const gateway: PaymentGateway = {
  chargeCard: (r) => {
    events.push({ what: 'called', reference: r.reference, at: clock.now() });
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
  // The production limiter (rate-limiter-flexible on Redis, 1 token per second), recorded.
  const real = createRateLimiter(limiterRedis, {
    prefix,
    perSecond: config.sayswitch.rateLimitPerSec,
  });
  const rateLimiter: RateLimiter = {
    acquire: async () => {
      await real.acquire();
      now = ++grants * SECOND;
      events.push({ what: 'granted', at: now });
    },
  };
  app = openApp(config, createLogger({ level: 'silent' }), { clock, gateway, rateLimiter });
  // Record every successful claim (`→ submitting`) and the lease it wrote.
  const store = app.store;
  const transition = store.transition.bind(store);
  store.transition = async (key, to, at, opts) => {
    const res = await transition(key, to, at, opts);
    if (to === 'submitting' && res.ok) {
      events.push({
        what: 'claimed',
        key,
        leaseFrom: res.intent.sentAt ?? -1,
        leaseUntil: res.intent.leaseUntil ?? -1,
      });
    }
    return res;
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

describe('the submit lease starts after the rate limit', () => {
  it('two submissions at 1 token/s: each claims only after its token, and its lease starts then', async () => {
    const deps = {
      store: app.store,
      dispatcher: app.dispatcher,
      sealer: app.sealer,
      clock,
      hashKey: app.config.dataEncryptionKey,
    };
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
        timeoutMs: 15_000,
      });
    }

    // One token per submission: the gateway did not take a second one for the call.
    expect(grants).toBe(2);
    const claims = events.filter((e) => e.what === 'claimed');
    expect(claims.map((c) => c.key).sort()).toEqual(['api_lease-a', 'api_lease-b']);
    for (const [i, claim] of claims.entries()) {
      const at = events.indexOf(claim);
      const grantedBefore = events.slice(0, at).filter((e) => e.what === 'granted');
      // The (i+1)-th claim comes after the (i+1)-th grant, and its lease starts at that grant.
      expect(grantedBefore.length, `claim ${claim.key}`).toBeGreaterThanOrEqual(i + 1);
      expect(claim.leaseFrom).toBe(grantedBefore.at(-1)?.at);
      expect(claim.leaseFrom).toBeGreaterThanOrEqual((i + 1) * SECOND);
      expect(claim.leaseUntil).toBe(claim.leaseFrom + LEASE_MS);
      // The gateway call follows the claim without waiting for another token.
      const call = events.findIndex(
        (e, j) => j > at && e.what === 'called' && e.reference === `${claim.key}_1`,
      );
      expect(call, `call of ${claim.key}`).toBeGreaterThan(at);
      expect(events.slice(at, call).some((e) => e.what === 'granted')).toBe(false);
    }
    // In particular the second lease starts at the second grant (the last one), not while its
    // submission waited for it at the first.
    const second = claims[1];
    expect(second?.what === 'claimed' && second.leaseFrom).toBe(2 * SECOND);
  });

  it('lookups still wait for a token inside the gateway', async () => {
    const before = grants;
    expect(await app.gateway.verifyCharge('api_lease-a_1')).toEqual({
      reference: 'api_lease-a_1',
      status: 'not_found',
    });
    expect(grants).toBe(before + 1);
    // A submission through the gateway alone takes none (its caller took it).
    await app.gateway.chargeCard({
      reference: 'api_lease-direct_1' as never,
      amount: 100 as never,
      currency: 'NGN',
      email: 'ada@example.com',
      cardToken: 'tok_direct_0123456789',
    });
    expect(grants).toBe(before + 1);
  });
});
