/**
 * A dunning retry job that fails for good (its five attempts spent, e.g. on Redis errors through an
 * outage) used to leave its subscription `past_due` for good: nothing re-arms a retry (the record
 * still names it, and its job id is taken by the failed job), a subscription in dunning is in no
 * due index, so no retry, no cancel at the schedule's end and no new period. The reconcile sweep
 * now runs such a job once more when its subscription still wants exactly that retry, and once
 * only: a rerun that fails again is failed again at once, for the next sweep. The job's attempts
 * are spent here as BullMQ spends them (a worker taking the job and failing it five times); the
 * rerun job is then run by the real subscriptions worker. Real Redis by prefix; no sandbox call is
 * made (no charges worker).
 */
import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepDeps } from '../../src/app/composition.ts';
import { JOBS } from '../../src/infra/queues/catalog.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import { runSweep } from '../../src/payments/sweep.ts';
import { dunningJobId } from '../../src/subscriptions/jobs.ts';
import { periodKey } from '../../src/subscriptions/periods.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { moveTestIntent } from '../support/intents.ts';
import { track } from '../support/leak-check.ts';
import { until } from '../support/poll.ts';
import { createTestRedis } from '../support/redis.ts';
import { startSubscriptionsScheduler } from '../support/subscription-harness.ts';
import { createMonthlySubscription, firstRetryDueBefore } from '../support/subscriptions.ts';

const DAY = 86_400_000;

let t: TestApp;
/** Takes jobs of the subscriptions queue by hand (no processor), as a failing worker would. */
let manual: Worker;
let manualConnection: Redis;

beforeAll(async () => {
  // No roles: nothing takes the retry jobs but this file.
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
  const q = t.app.dispatcher.queue('subscriptions');
  manual = track(
    new Worker(q.name, null, {
      connection: (manualConnection = await createTestRedis({}, 'manual worker connection')),
      prefix: q.opts.prefix,
      // The failing attempts are retried at once (the catalog's backoff is seconds).
      settings: { backoffStrategy: () => 0 },
    }),
    'manual subscriptions worker',
  );
});
afterAll(async () => {
  await manual?.close();
  await manualConnection?.quit();
  await t?.close();
});

/**
 * Subscription `id` in dunning: its first period's charge failed at the gateway (attempt 1,
 * `failed`), retry step 0 due an hour ago; with `over` applied to the stored record. Returns the
 * period's intent key and the retry's job id.
 */
async function inDunning(
  id: string,
  over: Record<string, unknown> = {},
): Promise<{ key: IntentKey; jobId: string }> {
  const now = t.app.clock.now();
  const created = await createMonthlySubscription(t.app, id, {
    card_token: `tok_${id}_0123456789`,
  });
  expect(created.status).toBe('created');
  const stored = (await t.app.subscriptions.get(id))!;
  const sub = stored.sub;
  const key = periodKey(sub, sub.nextPeriod);
  await t.app.store.create(
    {
      key,
      type: 'charge',
      origin: 'subscription',
      subscriptionId: id,
      amount: 4999 as AmountMinor,
      currency: 'NGN',
      payee: { kind: 'charge', email: 'sub@example.com', cardTokenSealed: sub.cardTokenSealed },
    },
    now - 2 * DAY,
  );
  await moveTestIntent(t.app.store, key, 'submitting', now - 2 * DAY);
  await moveTestIntent(t.app.store, key, 'failed', now - 2 * DAY, { reason: 'declined' });
  const version = await t.app.subscriptions.save(
    {
      ...sub,
      status: 'past_due',
      dunning: [firstRetryDueBefore(sub, key, now)],
      ...over,
    },
    stored.version,
  );
  expect(version).toBeDefined();
  return { key, jobId: dunningJobId({ key, step: 0, resumes: 0 }) };
}

/** Adds the retry job of `jobId` and fails it as often as BullMQ tries it: it ends `failed`. */
async function failForGood(id: string, key: IntentKey, jobId: string): Promise<void> {
  await t.app.dispatcher.addMany('subscriptions.dunning', [
    { data: { subscriptionId: id, key, step: 0 }, jobId },
  ]);
  for (let i = 0; i < JOBS['subscriptions.dunning'].attempts; i++) await failOnce(jobId);
  expect(await jobState(jobId)).toBe('failed');
}

/** Takes job `jobId` (the next one in the queue) and fails it, as its handler throwing would. */
async function failOnce(jobId: string): Promise<void> {
  const token = randomUUID();
  const job = (await manual.getNextJob(token)) as Job | undefined;
  expect(job?.id).toBe(jobId);
  await job!.moveToFailed(new Error('Connection is closed.'), token);
}

const jobState = (jobId: string) => t.app.dispatcher.queue('subscriptions').getJobState(jobId);

/** The sweep with no grace: a job failed a moment ago counts. */
const sweep = () => runSweep({ ...sweepDeps(t.app), orphanAfterMs: 0 });

describe('a dunning retry job whose attempts were spent', () => {
  it('runs once more at the next sweep, and opens the retry', async () => {
    const id = 'dunfail-wanted';
    const { key, jobId } = await inDunning(id);
    await failForGood(id, key, jobId);

    expect(await sweep()).toMatchObject({ dunningRerun: 1 });
    expect(await jobState(jobId)).toBe('waiting');

    const scheduler = await startSubscriptionsScheduler(t.app, { cron: false, blockMs: 100 });
    try {
      await until(async () => (await t.app.store.get(key))?.attempt === 2, {
        what: `${key} on attempt 2`,
      });
      await until(async () => (await jobState(jobId)) === 'completed', {
        what: `${jobId} completed`,
      });
    } finally {
      await scheduler.stop();
    }
    expect(await t.app.store.get(key)).toMatchObject({
      attempt: 2,
      state: 'queued',
      reference: `${key}_2`,
    });
    // Done: nothing failed is left to run again.
    expect(await sweep()).toMatchObject({ dunningRerun: 0 });
  });

  it('is run one attempt at a time: failing again, it is failed again at once', async () => {
    const id = 'dunfail-again';
    const { key, jobId } = await inDunning(id);
    await failForGood(id, key, jobId);

    expect(await sweep()).toMatchObject({ dunningRerun: 1 });
    await failOnce(jobId);
    expect(await jobState(jobId)).toBe('failed');
    // The next sweep runs it once more; the intent was never touched.
    expect(await sweep()).toMatchObject({ dunningRerun: 1 });
    expect(await jobState(jobId)).toBe('waiting');
    await failOnce(jobId);
    expect(await t.app.store.get(key)).toMatchObject({ attempt: 1, state: 'failed' });
    await t.app.dispatcher.queue('subscriptions').remove(jobId);
  });

  it('stays failed when its subscription no longer wants that retry, or it failed too recently', async () => {
    const paused = await inDunning('dunfail-paused', { status: 'paused', pausedAt: 1 });
    await failForGood('dunfail-paused', paused.key, paused.jobId);
    const resumed = await inDunning('dunfail-resumed', { resumes: 1 });
    // The job of before the resume (resume count 0): the record's retry is another job.
    await failForGood('dunfail-resumed', resumed.key, resumed.jobId);
    const stepped = await inDunning('dunfail-stepped');
    const record = (await t.app.subscriptions.get('dunfail-stepped'))!;
    await t.app.subscriptions.save(
      { ...record.sub, dunning: record.sub.dunning.map((d) => ({ ...d, step: 1 })) },
      record.version,
    );
    await failForGood('dunfail-stepped', stepped.key, stepped.jobId);

    expect(await sweep()).toMatchObject({ dunningRerun: 0 });
    for (const { jobId } of [paused, resumed, stepped])
      expect(await jobState(jobId)).toBe('failed');

    const recent = await inDunning('dunfail-recent');
    await failForGood('dunfail-recent', recent.key, recent.jobId);
    // ORPHAN_AFTER's grace: an outage that just failed it may not be over.
    expect(await runSweep({ ...sweepDeps(t.app), orphanAfterMs: 60_000 })).toMatchObject({
      dunningRerun: 0,
    });
    expect(await jobState(recent.jobId)).toBe('failed');
    await t.app.dispatcher.queue('subscriptions').remove(recent.jobId);
  });
});
