/**
 * A global outbound rate limit for every call to the gateway (submissions and lookups, from every
 * worker process on one Redis): SAYSWITCH_RATE_LIMIT_PER_SEC tokens per one-second window in
 * Redis. Lookups take theirs here, queued FIFO per process until a token is free, on
 * rate-limiter-flexible (not hand-rolled).
 *
 * Submissions take theirs in the claim itself: the intent store's claim script counts the same
 * window at the same key (the key layout's `rateLimit()`, payments/store/intent-lua.ts
 * TRANSITION_INTENT), so a claim costs no extra round trip, a lease never runs out while its call
 * waits for a token, and claims and lookups share one limit.
 */
import type { Redis } from 'ioredis';
import { RateLimiterQueue, RateLimiterRedis } from 'rate-limiter-flexible';
import type { PaymentGateway, RateLimiter } from '../../kernel/ports.ts';

/**
 * The shared Redis limiter counting at `key` (the key layout's `rateLimit()`, where the claims
 * count too); `perSecond` is the rate for that key. Build it once per process (the composition
 * root does): its FIFO line is per instance.
 */
export function createRateLimiter(
  redis: Redis,
  opts: { key: string; perSecond: number },
): RateLimiter {
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    // No prefix: the key is the whole Redis key, the one the claim script counts at.
    keyPrefix: '',
    points: opts.perSecond,
    duration: 1,
  });
  const queue = new RateLimiterQueue(limiter);
  return {
    acquire: async () => {
      await queue.removeTokens(1, opts.key);
    },
  };
}

/** No limit: for a gateway that is not Sayswitch (a test double). */
export const NO_RATE_LIMIT: RateLimiter = { acquire: () => Promise.resolve() };

/**
 * Wraps `gateway` so that every lookup (verify, payout lookup, banks, account name, balance) first
 * takes a token from `limiter`, waiting in line when none is free. Submissions (`chargeCard`,
 * `payout`) pass straight through: their claim has already taken their token (see the top of this
 * file), and taking a second one would make them wait again after the claim.
 */
export function withRateLimit(gateway: PaymentGateway, limiter: RateLimiter): PaymentGateway {
  const gate = async <T>(call: () => Promise<T>): Promise<T> => {
    await limiter.acquire();
    return call();
  };
  return {
    chargeCard: (r) => gateway.chargeCard(r),
    payout: (r) => gateway.payout(r),
    verifyCharge: (ref) => gate(() => gateway.verifyCharge(ref)),
    lookupPayout: (ref) => gate(() => gateway.lookupPayout(ref)),
    listBanks: (c) => gate(() => gateway.listBanks(c)),
    resolveAccountName: (q) => gate(() => gateway.resolveAccountName(q)),
    walletBalance: (c) => gate(() => gateway.walletBalance(c)),
    // A refund is a submission: its claim has already taken its token, like a charge's.
    refund: (r) => gateway.refund(r),
    refundStatus: (ref) => gate(() => gateway.refundStatus(ref)),
    refundsOf: (ref) => gate(() => gateway.refundsOf(ref)),
  };
}
