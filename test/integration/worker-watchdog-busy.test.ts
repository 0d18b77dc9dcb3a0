/**
 * The worker watchdog (src/infra/queues/worker-watchdog.ts) leaves alone a worker whose slots are
 * all taken by jobs still running, however long other jobs wait behind them: it is slow, not
 * stuck, and replacing it would run its jobs a second time for nothing. A worker built by
 * `startWorker` (so the watchdog sees its activity) with one slot, its one job held open.
 */
import { Queue, type Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createLogger } from '../../src/infra/logger.ts';
import { startWorker } from '../../src/infra/queues/worker-factory.ts';
import { startWorkerWatchdog } from '../../src/infra/queues/worker-watchdog.ts';
import { QUEUES } from '../../src/infra/queues/names.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
const prefix = uniquePrefix('wdbusy');

beforeAll(async () => {
  redis = await createTestRedis();
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

describe('worker watchdog', () => {
  it('does not replace a worker busy in every slot while more jobs wait', async () => {
    const logger = createLogger({ level: 'silent' });
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    let started = 0;
    const connection = redis.duplicate();
    const worker = startWorker(
      QUEUES.notifications,
      {
        'notifications.deliver': async () => {
          started++;
          await held;
        },
      },
      { logger, now: Date.now, onAuthFailure: () => Promise.resolve() },
      { connection, prefix, concurrency: 1 },
    );
    const queue = new Queue(QUEUES.notifications, { connection: redis, prefix });
    const workers: Worker[] = [worker];
    const recreated: Worker[] = [];
    let now = Date.now();
    const watchdog = startWorkerWatchdog({
      workers,
      recreate: (old) => {
        recreated.push(old);
        return old;
      },
      redis,
      logger,
      isUp: () => true,
      now: () => now,
      stuckAfterMs: 1_000,
      intervalMs: 3_600_000, // checks are run by hand below
    });
    try {
      for (const n of [1, 2]) {
        await queue.add('deliver', { eventId: `e${n}`, streamId: `${n}-0` }, { jobId: `e${n}` });
      }
      await until(() => started === 1 || undefined, { what: 'the first job to start' });
      expect(await queue.getWaitingCount()).toBe(1);
      now = Date.now() + 1_000; // after the job started
      await watchdog.check();
      now += 60_000; // far past stuckAfterMs: the second job still waits behind the first
      await watchdog.check();
      expect(recreated).toEqual([]);
      expect(workers[0]).toBe(worker);
    } finally {
      watchdog.stop();
      release();
      await worker.close();
      await queue.close();
      await connection.quit();
    }
  });
});
