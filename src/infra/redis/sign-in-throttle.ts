/**
 * The SignInThrottle port on Redis, on rate-limiter-flexible (its login-protection pattern, not
 * hand-rolled): one counter per client (http/sign-in.ts `signInClient`) at
 * `<prefix>:signin:<client>`, living for the block's length from the first attempt; the wrong
 * password that reaches the limit blocks the client for the block's length. A password attempt is
 * counted before the password is checked (`attempt`) and given back when it was right
 * (`succeeded`) or when it was refused unchecked: counting only after the check let every guess
 * of a burst sent at once be checked before the first failure was counted. Every api process
 * counts at the same key, so running several does not multiply the attempts a client gets.
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
  // No `blockDuration`: only a wrong password blocks (`failed`). An attempt over the limit that is
  // only in flight (a browser loads a page's assets in parallel, each with the password, each
  // counted until it is given back) is refused alone, not turned into a block of the operator.
  const limits = { points: opts.maxFailures, duration: seconds };
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
    async attempt(client) {
      try {
        await limiter.consume(client);
        return 0;
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        // Over the limit, or blocked: refused before the password is checked. Its count is
        // given back, since nothing was checked: refusals alone never make or lengthen a block
        // (a browser's parallel requests over the limit are refused, then the page loads).
        await limiter.reward(client);
        return Math.max(1, err.msBeforeNext);
      }
    },
    async succeeded(client) {
      await limiter.reward(client);
    },
    async failed(client) {
      // The attempt is already counted; the one that reaches the limit blocks, for the whole block.
      const res = await limiter.get(client);
      if (res === null || res.consumedPoints < opts.maxFailures) return 0;
      await limiter.block(client, seconds);
      return seconds * 1000;
    },
  };
}
