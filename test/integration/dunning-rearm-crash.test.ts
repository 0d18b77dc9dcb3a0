/**
 * A resume of a subscription in dunning re-arms its retries under new job ids (the resume count is
 * part of them, jobs.ts `dunningJobId`): the record is stored first, the retry jobs are added
 * after. A process that dies between the two (SIGKILL, or the add failing) used to leave the
 * subscription `past_due` with its retry never enqueued, for good: a subscription in dunning is in
 * no due index, a second resume of it is a no-op, and the old job (the one the pause skipped) is
 * spent. Now the resume leaves a mark on the record that the next tick turns into the same jobs
 * (re-adding one that exists collapses into it) before it clears the mark. Both resumes are
 * played: a request's (applyAction) and a scheduled one's (the tick applying `resume_at`), each
 * stopped by a throwing job add right after the record was stored. Real Redis by prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dispatcher } from '../../src/infra/queues/dispatcher.ts';
import { subscriptionsDeps } from '../../src/app/composition.ts';
import { dunningJobId } from '../../src/subscriptions/jobs.ts';
import { applyAction } from '../../src/subscriptions/manage.ts';
import { periodKey } from '../../src/subscriptions/periods.ts';
import { subscriptionServiceDeps } from '../../src/subscriptions/service.ts';
import { runTick, type TickDeps } from '../../src/subscriptions/tick.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createMonthlySubscription, firstRetryDueBefore } from '../support/subscriptions.ts';

const DAY = 86_400_000;

let t: TestApp;

beforeAll(async () => {
  // No roles: the retry jobs stay in the queue for the test to find.
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
});
afterAll(async () => {
  await t?.close();
});

/** The app's dispatcher, whose dunning job adds throw: the process "dies" at that point. */
function dyingAtDunningAdd(real: Dispatcher): Dispatcher {
  return new Proxy(real, {
    get(target, p, r) {
      if (p === 'addMany')
        return async (...a: Parameters<Dispatcher['addMany']>) => {
          if (a[0] === 'subscriptions.dunning' && a[1].length > 0)
            throw new Error('killed before the dunning retries were enqueued');
          return target.addMany(...a);
        };
      const v: unknown = Reflect.get(target, p, r);
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function tickDeps(dispatcher: Dispatcher): TickDeps {
  const d = subscriptionsDeps(t.app);
  return {
    subs: d.subs,
    intents: d.intents,
    dispatcher,
    logger: d.logger,
    catchUpMaxPeriods: d.catchUpMaxPeriods,
  };
}

/**
 * Subscription `id`, paused while its first period's renewal is in dunning, the retry due an hour
 * ago (the pause skipped its job); `resumeAt` schedules its resume. Returns the retry's key.
 */
async function pausedInDunning(id: string, now: number, resumeAt?: number): Promise<string> {
  const created = await createMonthlySubscription(t.app, id, {
    card_token: `tok_${id}_0123456789`,
  });
  expect(created.status).toBe('created');
  const stored = await t.app.subscriptions.get(id);
  const sub = stored!.sub;
  const key = periodKey(sub, sub.nextPeriod);
  const version = await t.app.subscriptions.save(
    {
      ...sub,
      status: 'paused',
      pausedAt: now - DAY,
      ...(resumeAt !== undefined ? { resumeAt } : {}),
      dunning: [firstRetryDueBefore(sub, key, now)],
    },
    stored!.version,
  );
  expect(version).toBeDefined();
  return key;
}

async function retryJob(id: string, key: string, resumes: number) {
  const jobId = dunningJobId({ key: key as never, step: 0, resumes });
  const job = await t.app.dispatcher.queue('subscriptions').getJob(jobId);
  return job ? { id: job.id, data: job.data as unknown } : undefined;
}

describe('a resume of a subscription in dunning that dies before enqueueing its retries', () => {
  it('by request: the next tick enqueues the retry', async () => {
    const id = 'rearm-request';
    const now = t.app.clock.now();
    const key = await pausedInDunning(id, now);
    const deps = {
      ...subscriptionServiceDeps(t.app),
      dispatcher: dyingAtDunningAdd(t.app.dispatcher),
    };
    await expect(applyAction(deps, id, 'resume')).rejects.toThrow(/killed/);
    const resumed = (await t.app.subscriptions.get(id))!.sub;
    expect(resumed).toMatchObject({ status: 'past_due', resumes: 1 });
    expect(await retryJob(id, key, 1)).toBeUndefined();

    await runTick(tickDeps(t.app.dispatcher), t.app.clock.now());
    expect(await retryJob(id, key, 1)).toEqual({
      id: `dun-${key}-s0-r1`,
      data: { subscriptionId: id, key, step: 0 },
    });
    // Done once: the mark is gone, and the subscription is in no due index again.
    const after = (await t.app.subscriptions.get(id))!.sub;
    expect(after.rearmDunning).toBeUndefined();
    expect(await t.app.subscriptions.dueIds(t.app.clock.now(), 1_000)).not.toContain(id);
  });

  it('at resume_at, by the tick: the next tick enqueues the retry', async () => {
    const id = 'rearm-scheduled';
    const now = t.app.clock.now();
    const key = await pausedInDunning(id, now, now - 60_000);
    await expect(runTick(tickDeps(dyingAtDunningAdd(t.app.dispatcher)), now)).rejects.toThrow(
      /killed/,
    );
    const resumed = (await t.app.subscriptions.get(id))!.sub;
    expect(resumed).toMatchObject({ status: 'past_due', resumes: 1 });
    expect(resumed.resumeAt).toBeUndefined();
    expect(await retryJob(id, key, 1)).toBeUndefined();

    await runTick(tickDeps(t.app.dispatcher), t.app.clock.now());
    expect(await retryJob(id, key, 1)).toEqual({
      id: `dun-${key}-s0-r1`,
      data: { subscriptionId: id, key, step: 0 },
    });
    expect((await t.app.subscriptions.get(id))!.sub.rearmDunning).toBeUndefined();
  });
});
