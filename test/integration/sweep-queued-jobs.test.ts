/**
 * The reconcile sweep and the submit jobs of `queued` intents (payments/sweep.ts, step 3), real
 * BullMQ and the real job wrapper on real Redis:
 * - a job that ended without the intent leaving `queued` (it failed: its retries ran out while
 *   every try was provably unsent, or it was refused as unrecoverable) is run again: left alone,
 *   the payment would wait in `queued` for good, never reaching a known state;
 * - a job that is still there (waiting, delayed for its backoff, running) is left alone: replacing
 *   it would run a delayed retry at once, or a second copy beside a running one.
 */
import { describe, expect, it } from 'vitest';
import { sweepDeps } from '../../src/app/composition.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { QUEUES } from '../../src/infra/queues/names.ts';
import { startWorker } from '../../src/infra/queues/worker-factory.ts';
import { FatalError } from '../../src/kernel/errors.ts';
import { runSweep } from '../../src/payments/sweep.ts';
import { appWithoutRoles } from '../support/app.ts';
import { createTestCharge } from '../support/intents.ts';
import { until } from '../support/poll.ts';

// No roles: the test runs the one worker and the sweep itself.
const env = appWithoutRoles();

describe('a queued intent whose submit job failed', () => {
  it('has its job retried by the sweep', async () => {
    const key = await createTestCharge(env.t.app.store, 'sweep-failed-job');
    const intent = (await env.t.app.store.get(key))!;
    await env.t.app.dispatcher.submit(intent);
    const refusing = startWorker(
      QUEUES.charges,
      {
        'charges.submit': () =>
          Promise.reject(new FatalError('refused before sending', 'client_config')),
      },
      {
        logger: createLogger({ level: 'silent' }),
        now: () => Date.now(),
        onAuthFailure: () => Promise.resolve(),
      },
      {
        connection: env.t.app.redis,
        prefix: env.t.app.layout.group,
        concurrency: 1,
        backoffMs: () => 50,
      },
    );
    try {
      await until(() => env.t.app.dispatcher.submitJobState(intent), {
        done: (s) => s === 'failed',
        what: `${key}'s submit job failed`,
      });
    } finally {
      await refusing.close();
    }
    expect((await env.t.app.store.get(key))?.state).toBe('queued');

    const swept = await runSweep(sweepDeps(env.t.app));
    expect(swept).toMatchObject({ requeued: 1 });
    expect(await env.t.app.dispatcher.submitJobState(intent)).toBe('waiting');
  });
});

describe('a queued intent whose submit job is still waiting', () => {
  it('is left alone', async () => {
    const key = await createTestCharge(env.t.app.store, 'sweep-waiting-job');
    const intent = (await env.t.app.store.get(key))!;
    await env.t.app.dispatcher.submit(intent);
    const queue = env.t.app.dispatcher.queue(QUEUES.charges);
    const job = (await queue.getJobs(['waiting'])).find((j) => j.data.key === key);
    expect(job).toBeDefined();

    await runSweep(sweepDeps(env.t.app));
    const still = await queue.getJob(job!.id!);
    expect(still).toMatchObject({ timestamp: job!.timestamp });
    expect(await still?.getState()).toBe('waiting');
  });
});
