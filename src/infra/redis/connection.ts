/** Redis connections for BullMQ and the stores. */
import { Redis, type RedisOptions } from 'ioredis';

/** How long one connection attempt may take before it counts as failed. */
const CONNECT_TIMEOUT_MS = 2_000;

/**
 * A connection as BullMQ's workers require it (`maxRetriesPerRequest: null`: blocking commands
 * must not give up): a command waits through an outage. Reconnects with a capped delay; callers
 * close it with `quit()`.
 */
export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    ...opts,
  });
}

/**
 * A connection whose commands fail fast while Redis is unreachable (after one reconnection
 * attempt) instead of queueing for the whole outage: the stores and the queues' producers, so an
 * HTTP request or a CLI command answers "Redis unavailable" in bounded time. A command that fails
 * this way is dropped from the offline queue, so it never runs later behind the caller's back.
 */
export function createFailFastRedis(url: string, opts: RedisOptions = {}): Redis {
  return createRedis(url, { maxRetriesPerRequest: 1, ...opts });
}
