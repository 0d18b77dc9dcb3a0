/**
 * Error kinds → BullMQ behaviour, through the one wrapper (infra/queues/processor.ts) and real
 * BullMQ on real Redis:
 * - fatal → the job fails at once, with no retry: retrying the same request cannot help, and each
 *   retry of a refused submission would be one more request carrying the reference;
 * - outcome_unknown → a submission's job completes (the intent is the reconciler's now), a
 *   check's job retries (it learned nothing).
 */
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/infra/logger.ts';
import { bullJobName } from '../../src/infra/queues/catalog.ts';
import { QUEUES, type QueueName } from '../../src/infra/queues/names.ts';
import type { HandlersFor } from '../../src/infra/queues/processor.ts';
import { startWorker } from '../../src/infra/queues/worker-factory.ts';
import { FatalError, OutcomeUnknownError } from '../../src/kernel/errors.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
const prefix = uniquePrefix('processor-kinds');

beforeAll(async () => {
  redis = await createTestRedis();
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  redis.disconnect();
});

/**
 * Runs one job of `name` (3 attempts) on a worker of `queueName` with `handlers` until it is
 * completed or failed for good; returns the job as it ended.
 */
async function runOne<Q extends QueueName>(
  queueName: Q,
  handlers: HandlersFor<Q>,
  name: string,
  data: unknown,
): Promise<{ state: string; job: Job }> {
  const queuePrefix = `${prefix}_${name}`;
  const queue = new Queue(queueName, { connection: redis, prefix: queuePrefix });
  const worker = startWorker(
    queueName,
    handlers as never,
    {
      logger: createLogger({ level: 'silent' }),
      now: () => Date.now(),
      onAuthFailure: () => Promise.resolve(),
    },
    { connection: redis, prefix: queuePrefix, concurrency: 1, backoffMs: () => 20 },
  );
  try {
    const added = await queue.add(name, data, {
      attempts: 3,
      backoff: { type: 'fixed', delay: 20 },
    });
    const state = await until(() => added.getState(), {
      done: (s) => s === 'completed' || s === 'failed',
      what: `${name} ended`,
    });
    return { state, job: (await queue.getJob(added.id!))! };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

const SUBMIT = { key: 'api_kinds', attempt: 1, amount: 1000, currency: 'NGN' };

describe('a fatal error', () => {
  it('fails the job at once, never retried', async () => {
    let calls = 0;
    const { state, job } = await runOne(
      QUEUES.charges,
      {
        'charges.submit': () => {
          calls++;
          return Promise.reject(new FatalError('HTTP 400', 'bad_request'));
        },
      },
      bullJobName('charges.submit'),
      SUBMIT,
    );
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(calls).toBe(1);
  });
});

describe('an outcome_unknown error of a submission', () => {
  it("completes the job: the intent is the reconciler's now, never submitted again by it", async () => {
    let calls = 0;
    const { state, job } = await runOne(
      QUEUES.charges,
      {
        'charges.submit': () => {
          calls++;
          return Promise.reject(new OutcomeUnknownError('timed out', 'timeout'));
        },
      },
      bullJobName('charges.submit'),
      SUBMIT,
    );
    expect(state).toBe('completed');
    expect(job.returnvalue).toEqual({ outcome: 'unknown', code: 'timeout' });
    expect(calls).toBe(1);
  });
});

describe('an outcome_unknown error of a check', () => {
  it('retries the job: the check learned nothing', async () => {
    let calls = 0;
    const { state, job } = await runOne(
      QUEUES.reconcile,
      {
        'reconcile.check': () => {
          calls++;
          return Promise.reject(new OutcomeUnknownError('HTTP 502', 'server_error'));
        },
        'reconcile.sweep': () => Promise.resolve(undefined),
      },
      bullJobName('reconcile.check'),
      { key: 'api_kinds', cause: 'manual' },
    );
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(3);
    expect(calls).toBe(3);
  });
});
