/**
 * The SignInThrottle port on Redis, on rate-limiter-flexible (its login-protection pattern, not
 * hand-rolled): one counter per client address at `<prefix>:signin:<address>`, living for the
 * block's length from the first failure; the failure that reaches the limit blocks the address for
 * the block's length. Every api process counts at the same key, so running several does not
 * multiply the attempts an address gets.
 *
 * While Redis does not answer, an in-memory counter of this process stands in (rate-limiter-
 * flexible's insurance limiter): sign-ins stay throttled, per process, instead of failing open
 * or refusing everyone.
 */
import type { Cluster, Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { SignInThrottle } from '../../kernel/ports.ts';

export interface SignInThrottleOptions {
  /** The key prefix (the key layout's `signInFailures()`). */
  keyPrefix: string;
  /** DASHBOARD_SIGN_IN_MAX_FAILURES: the failures that block an address. */
  maxFailures: number;
  /** DASHBOARD_SIGN_IN_BLOCK: how long failures are counted, and how long the block lasts. */
  blockMs: number;
}

export function createSignInThrottle(
  redis: Redis | Cluster,
  opts: SignInThrottleOptions,
): SignInThrottle {
  // rate-limiter-flexible counts in whole seconds.
  const seconds = Math.max(1, Math.ceil(opts.blockMs / 1000));
  const limits = { points: opts.maxFailures, duration: seconds, blockDuration: seconds };
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: opts.keyPrefix,
    ...limits,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix: opts.keyPrefix, ...limits }),
  });
  return {
    async blockedFor(client) {
      const res = await limiter.get(client);
      return res !== null && res.consumedPoints >= opts.maxFailures
        ? Math.max(1, res.msBeforeNext)
        : 0;
    },
    async failed(client) {
      try {
        const res = await limiter.consume(client);
        if (res.consumedPoints < opts.maxFailures) return 0;
        // The limit is reached by this failure: blocked from now, for the whole block.
        await limiter.block(client, seconds);
        return seconds * 1000;
      } catch (err) {
        // Over the limit already (a concurrent failure blocked it first).
        if (err instanceof RateLimiterRes) return Math.max(1, err.msBeforeNext);
        throw err;
      }
    },
  };
}
