/**
 * A 429 whose `Retry-After` is 0 (or an HTTP date already past) through the one error mapping and
 * the one BullMQ wrapper (infra/queues/processor.ts): rate_limited must send the job back without
 * using an attempt. BullMQ's `worker.rateLimit(ms)` is a Redis `SET … PX ms`, and Redis refuses
 * `PX 0` ("invalid expire time"), so a wait of 0 ms made the wrapper itself throw: the job failed
 * like any unexpected error, an attempt was spent, and no rate limit was applied.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue, type Job, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SayswitchGateway } from '../../../src/infra/gateway/sayswitch/client.ts';
import { bullJobName } from '../../../src/infra/queues/catalog.ts';
import { QUEUES } from '../../../src/infra/queues/names.ts';
import { MAX_RATE_LIMIT_WAIT_MS, type HandlersFor } from '../../../src/infra/queues/processor.ts';
import { startWorker } from '../../../src/infra/queues/worker-factory.ts';
import { createLogger } from '../../../src/infra/logger.ts';
import { until } from '../../support/poll.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../../support/redis.ts';

let redis: Redis;
let server: http.Server;
let baseUrl: string;
/** The Retry-After of the next 429; after it the server answers a found transaction. */
let retryAfter: string | undefined;
const prefix = uniquePrefix('retry-after');

beforeAll(async () => {
  redis = await createTestRedis();
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (retryAfter !== undefined) {
        const value = retryAfter;
        retryAfter = undefined;
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': value });
        res.end(JSON.stringify({ success: false, message: 'Too many requests' }));
        return;
      }
      const reference = decodeURIComponent((req.url ?? '').split('/').pop() ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          success: true,
          message: 'Verification successful',
          data: { reference, amount: '10', requested_amount: '10', status: 'success' },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await cleanupPrefix(redis, prefix);
  redis.disconnect();
});

/**
 * A worker of the reconcile queue under `queuePrefix` whose check verifies through the stub, the
 * next answer a 429 with `Retry-After: header`, and one job of `key` added; `run` gets the queue
 * and the job, and everything is closed and removed after.
 */
async function withRateLimitedJob(
  queuePrefix: string,
  header: string,
  key: string,
  run: (queue: Queue, job: Job) => Promise<void>,
): Promise<void> {
  const gateway = new SayswitchGateway({ baseUrl, secretKey: 'sk_test_unit', timeoutMs: 2000 });
  const queue = new Queue(QUEUES.reconcile, { connection: redis, prefix: queuePrefix });
  const handlers: HandlersFor<typeof QUEUES.reconcile> = {
    'reconcile.check': async (data) => gateway.verifyCharge(`${data.key}_1`),
    'reconcile.sweep': () => Promise.resolve(undefined),
  };
  let worker: Worker | undefined;
  try {
    retryAfter = header;
    worker = startWorker(
      QUEUES.reconcile,
      handlers,
      {
        logger: createLogger({ level: 'silent' }),
        now: () => Date.now(),
        onAuthFailure: () => Promise.resolve(),
      },
      { connection: redis, prefix: queuePrefix, concurrency: 1, backoffMs: () => 50 },
    );
    const job = await queue.add(
      bullJobName('reconcile.check'),
      { key, cause: 'manual' },
      { attempts: 1 },
    );
    await run(queue, job);
  } finally {
    await worker?.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    gateway.close();
  }
}

describe('429 with a Retry-After of no time left', () => {
  it.each([
    ['0', '0'],
    ['an HTTP date in the past', 'Wed, 21 Oct 2015 07:28:00 GMT'],
  ])(
    'Retry-After %s: the job goes back without using an attempt, then completes',
    (_label, header) =>
      withRateLimitedJob(
        `${prefix}_${header.length}`,
        header,
        'api_retry_after',
        async (queue, job) => {
          let state = '';
          await until(
            async () => {
              state = await queue.getJobState(job.id ?? '');
              return state === 'completed' || state === 'failed';
            },
            { timeoutMs: 10_000 },
          );
          const done = (await queue.getJob(job.id ?? '')) as Job;
          // Before the fix: 'failed' with "ERR invalid expire time in 'set' command".
          expect({ state, failedReason: done.failedReason }).toEqual({
            state: 'completed',
            failedReason: undefined,
          });
          expect(done.attemptsMade).toBe(1);
          expect(done.returnvalue).toMatchObject({ status: 'succeeded' });
        },
      ),
  );

  it('Retry-After of a day: the queue waits at most MAX_RATE_LIMIT_WAIT_MS, not a day', () =>
    withRateLimitedJob(`${prefix}_day`, '86400', 'api_retry_after_day', async (queue, job) => {
      const ttl = await until(
        async () => {
          const t = await queue.getRateLimitTtl();
          return retryAfter === undefined && t > 0 ? t : undefined;
        },
        { timeoutMs: 10_000 },
      );
      expect(ttl).toBeGreaterThan(MAX_RATE_LIMIT_WAIT_MS - 10_000);
      expect(ttl).toBeLessThanOrEqual(MAX_RATE_LIMIT_WAIT_MS);
      // The job went back to wait for it, its attempt not spent.
      expect(await queue.getJobState(job.id ?? '')).not.toBe('failed');
    }));
});
