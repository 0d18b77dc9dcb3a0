/**
 * A global outbound rate limit for every call to the gateway (submissions and lookups, from every
 * worker process on one Redis): SAYSWITCH_RATE_LIMIT_PER_SEC tokens per second in Redis,
 * callers queued FIFO until a token is free. Built on rate-limiter-flexible, not hand-rolled.
 *
 * Lookups take their token inside the gateway call ({@link withRateLimit}). Submissions take it
 * before: payments/submit.ts waits for a token, then claims the intent with its lease, then calls
 * the gateway, so a lease never runs out while its call waits in line.
 */
import type { Redis } from 'ioredis';
import { RateLimiterQueue, RateLimiterRedis } from 'rate-limiter-flexible';
import type { PaymentGateway, RateLimiter } from '../../kernel/ports.ts';

/**
 * The shared Redis limiter under `<prefix>:ratelimit`; `perSecond` is the cluster-wide rate. Build
 * it once per process (the composition root does): its FIFO line is per instance.
 */
export function createRateLimiter(
  redis: Redis,
  opts: { prefix: string; perSecond: number },
): RateLimiter {
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `${opts.prefix}:ratelimit`,
    points: opts.perSecond,
    duration: 1,
  });
  const queue = new RateLimiterQueue(limiter);
  return {
    acquire: async () => {
      await queue.removeTokens(1, 'sayswitch');
    },
  };
}

/** No limit: for a gateway that is not Sayswitch (a test double). */
export const NO_RATE_LIMIT: RateLimiter = { acquire: () => Promise.resolve() };

/**
 * Wraps `gateway` so that every lookup (verify, payout lookup, banks, account name, balance) first
 * takes a token from `limiter`, waiting in line when none is free. Submissions (`chargeCard`,
 * `payout`) pass straight through: their caller has already taken their token (see the top of this
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
    // A refund is a submission: payments/refunds/submit.ts takes its token first.
    refund: (r) => gateway.refund(r),
    refundStatus: (ref) => gate(() => gateway.refundStatus(ref)),
    refundsOf: (ref) => gate(() => gateway.refundsOf(ref)),
  };
}
