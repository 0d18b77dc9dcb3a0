/** Redis connections for BullMQ and the stores. */
import { Redis, type RedisOptions } from 'ioredis';

/**
 * A connection as BullMQ requires it (`maxRetriesPerRequest: null`: blocking commands must not
 * give up). Reconnects with a capped delay; callers close it with `quit()`.
 */
export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    ...opts,
  });
}
