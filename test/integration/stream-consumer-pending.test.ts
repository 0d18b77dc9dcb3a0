/**
 * An entry a handler leaves pending (it could not apply it yet: the subscription outcome consumer
 * does this) is retried by XAUTOCLAIM after `claimIdleMs`, as the consumer's contract says. After
 * an error the consumer reads its own pending entries once, page by page; it used to re-read them
 * from id 0 until that read came back empty, so one entry that kept failing was re-read in a loop
 * with no pause, at full CPU, and no new entry was ever read again: one bad outcome stopped the
 * outcomes of every subscription. Real Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BillingEvent } from '../../src/kernel/events.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { RedisEventLog } from '../../src/infra/redis/event-log.ts';
import { fieldsOf, startStreamConsumer } from '../../src/infra/redis/stream-consumer.ts';
import { track } from '../support/leak-check.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, getRedisUrl, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
const prefix = uniquePrefix('pending');

beforeAll(async () => {
  redis = track(new Redis(await getRedisUrl(), { maxRetriesPerRequest: null }), 'pending');
});

afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

const event = (id: string): BillingEvent => ({
  id,
  type: 'payment.succeeded',
  at: 1_700_000_000_000,
  data: {},
});

describe('an entry the handler leaves pending after an error', () => {
  it('is passed over until XAUTOCLAIM retries it; new entries are read meanwhile', async () => {
    const log = new RedisEventLog(redis, prefix);
    await log.append(event('poison'));
    await log.append(event('a'));
    const reads = new Map<string, number>();
    const handled: string[] = [];
    let failed = false;
    const consumer = await log.consume({
      group: 'g',
      consumer: 'c1',
      logger: createLogger({ level: 'silent' }),
      label: 'pending test',
      blockMs: 100,
      batchSize: 100,
      // Longer than the test: the poison entry is not claimed again while it runs.
      claimIdleMs: 60_000,
      retryDelayMs: 50,
      handle: async (entries, ack) => {
        const ids = entries.map(([, flat]) => fieldsOf(flat).id ?? '');
        for (const id of ids) reads.set(id, (reads.get(id) ?? 0) + 1);
        // A failure once (a Redis blip during the acknowledgement): the read stays pending.
        if (ids.length > 0 && !failed) {
          failed = true;
          throw new Error('acknowledgement failed');
        }
        const done = entries.filter((_, i) => ids[i] !== 'poison').map(([sid]) => sid);
        handled.push(...ids.filter((id) => id !== 'poison'));
        await ack(done);
      },
    });
    try {
      await until(() => handled.includes('a'), { what: 'entry a handled' });
      await log.append(event('b'));
      await until(() => handled.includes('b'), { what: 'entry b, appended later, handled' });
    } finally {
      await consumer.stop();
    }
    // Read by the failed read and by the one pass over the pending entries, not in a loop.
    expect(reads.get('poison')).toBe(2);
    expect(handled).toEqual(['a', 'b']);
  });
});

describe('a gap the writers trimmed before the group read it', () => {
  it('has onTrimmed rebuild once, not on every claim pass while the gap stays', async () => {
    const stream = `${prefix}:trimmed`;
    await redis.xadd(stream, '*', 'id', 'read');
    await redis.xgroup('CREATE', stream, 'g', '0');
    // The group read and acknowledged the first entry; the next two are trimmed unread, and
    // nothing new arrives: the gap stays until the next write.
    const reply = (await redis.xreadgroup('GROUP', 'g', 'other', 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const readId = reply[0]![1][0]![0];
    await redis.xack(stream, 'g', readId);
    await redis.xadd(stream, '*', 'id', 'lost1');
    await redis.xadd(stream, '*', 'id', 'lost2');
    await redis.xtrim(stream, 'MAXLEN', 0);

    const connection = track(redis.duplicate(), 'trimmed consumer');
    let claimPasses = 0;
    const call = connection.call.bind(connection) as (...a: unknown[]) => Promise<unknown>;
    (connection as { call: unknown }).call = (...a: unknown[]) => {
      if (a[0] === 'XAUTOCLAIM') claimPasses++;
      return call(...a);
    };
    let rebuilds = 0;
    const consumer = await startStreamConsumer({
      connection,
      stream,
      group: 'g',
      consumer: 'c1',
      logger: createLogger({ level: 'silent' }),
      label: 'trimmed test',
      handle: () => Promise.resolve(),
      blockMs: 100,
      batchSize: 10,
      claimIdleMs: 0, // a claim pass every second
      retryDelayMs: 50,
      onTrimmed: () => {
        rebuilds++;
        return Promise.resolve();
      },
    });
    try {
      await until(() => claimPasses >= 3, { what: 'three claim passes', timeoutMs: 20_000 });
    } finally {
      await consumer.stop();
    }
    expect(rebuilds).toBe(1);
  });
});
