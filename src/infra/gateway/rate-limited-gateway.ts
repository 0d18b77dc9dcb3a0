/**
 * A global outbound rate limit for every call to the gateway (submissions and lookups, from every
 * worker process on one Redis): SAYSWITCH_RATE_LIMIT_PER_SEC tokens per second in Redis,
 * callers queued FIFO until a token is free. Built on rate-limiter-flexible, not hand-rolled.
 */
import type { Redis } from 'ioredis';
import { RateLimiterQueue, RateLimiterRedis } from 'rate-limiter-flexible';
import type { PaymentGateway } from '../../kernel/ports.ts';

/**
 * Wraps `gateway` so that every call first takes a token from the shared Redis limiter under
 * `<prefix>:ratelimit`, waiting in line when none is free; `perSecond` is the cluster-wide rate.
 */
export function withRateLimit(
  gateway: PaymentGateway,
  redis: Redis,
  opts: { prefix: string; perSecond: number },
): PaymentGateway {
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `${opts.prefix}:ratelimit`,
    points: opts.perSecond,
    duration: 1,
  });
  const queue = new RateLimiterQueue(limiter);
  const gate = async <T>(call: () => Promise<T>): Promise<T> => {
    await queue.removeTokens(1, 'sayswitch');
    return call();
  };
  return {
    chargeCard: (r) => gate(() => gateway.chargeCard(r)),
    payout: (r) => gate(() => gateway.payout(r)),
    verifyCharge: (ref) => gate(() => gateway.verifyCharge(ref)),
    lookupPayout: (ref) => gate(() => gateway.lookupPayout(ref)),
    listBanks: (c) => gate(() => gateway.listBanks(c)),
    resolveAccountName: (q) => gate(() => gateway.resolveAccountName(q)),
    walletBalance: (c) => gate(() => gateway.walletBalance(c)),
  };
}
