/**
 * `appendOnce` (one alert per queue and minute, docs/operations.md): the event and its
 * de-duplication marker are written in one step, so there is never a marker without its event
 * (every later attempt within the marker's lifetime would publish nothing).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BillingEvent } from '../../src/kernel/events.ts';
import { eventsKey, RedisEventLog } from '../../src/infra/redis/event-log.ts';
import { track } from '../support/leak-check.ts';
import { cleanupPrefix, getRedisUrl, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
const prefix = uniquePrefix('evonce');

beforeAll(async () => {
  redis = track(new Redis(await getRedisUrl(), { maxRetriesPerRequest: null }), 'event-log');
});

afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

const alert = (id: string): BillingEvent => ({
  id,
  type: 'alert.gateway_auth_failed',
  at: 1_700_000_000_000,
  data: { queue: 'charges', code: 'gateway_auth', action: 'queue paused' },
});

describe('RedisEventLog.appendOnce', () => {
  it('appends an event once per id; a second call within the TTL appends nothing', async () => {
    const log = new RedisEventLog(redis, `${prefix}-a`);
    expect(await log.appendOnce(alert('evt_once_1'), 60)).toBe(true);
    expect(await log.appendOnce(alert('evt_once_1'), 60)).toBe(false);
    expect(await log.appendOnce(alert('evt_once_2'), 60)).toBe(true);
    const events = await log.read();
    expect(events.map((e) => e.id)).toEqual(['evt_once_1', 'evt_once_2']);
    expect(events[0]).toMatchObject({ type: 'alert.gateway_auth_failed', data: alert('x').data });
    expect(await redis.ttl(`${prefix}-a:alerts:evt_once_1`)).toBeGreaterThan(0);
  });

  it('a write of the event that fails leaves no marker: the next attempt publishes it', async () => {
    const p = `${prefix}-b`;
    const log = new RedisEventLog(redis, p);
    await redis.set(eventsKey(p), 'not a stream'); // XADD fails with WRONGTYPE
    await expect(log.appendOnce(alert('evt_once_3'), 60)).rejects.toThrow(/WRONGTYPE/);
    expect(await redis.exists(`${p}:alerts:evt_once_3`)).toBe(0);
    await redis.del(eventsKey(p));
    expect(await log.appendOnce(alert('evt_once_3'), 60)).toBe(true);
    expect((await log.read()).map((e) => e.id)).toEqual(['evt_once_3']);
  });
});
