/**
 * A renewal's outcome event trimmed from the stream before the subscriptions' consumer read it.
 * The consumer applies the subscription rules to payment events; one stopped while about a million
 * events were appended (MAXLEN) loses the ones in between. Before, a lost `payment.failed` was
 * never applied: the subscription's dunning never started and its billing waited on that charge
 * for good (the tick waits for a failed open charge's outcome). Now the consumer, once it finds
 * the gap, applies to every subscription the outcome its open charges' intents already report.
 * Real Redis; no worker runs (the charge is failed by hand), the trim is an XTRIM to nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptionsDeps } from '../../src/app/composition.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { startSubscriptionOutcomes } from '../../src/subscriptions/outcome-consumer.ts';
import { runTick } from '../../src/subscriptions/tick.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
});
afterAll(async () => {
  await t?.close();
});

const consumer = () =>
  startSubscriptionOutcomes({ ...subscriptionsDeps(t.app), blockMs: 100, claimIdleMs: 1_000 });

describe('a renewal whose payment.failed was trimmed before the consumer read it', () => {
  it('starts dunning once the consumer finds the gap', async () => {
    const id = 'trim-gap-sub';
    const created = await createMonthlySubscription(t.app, id, {
      anchor: new Date(Date.now() - 60_000).toISOString(),
      timezone: 'UTC',
    });
    expect(created.status).toBe('created');
    const deps = subscriptionsDeps(t.app);
    await runTick(
      {
        subs: deps.subs,
        intents: deps.intents,
        dispatcher: deps.dispatcher,
        logger: deps.logger,
        catchUpMaxPeriods: deps.catchUpMaxPeriods,
      },
      Date.now(),
    );
    const open = (await t.app.subscriptions.get(id))?.sub.openCharges ?? [];
    expect(open).toHaveLength(1);
    const key = open[0]!.key;

    // A consumer reads what the stream holds so far (the subscription's own events), then stops.
    const a = await consumer();
    const stream = storeKeys(t.prefix).events();
    await until(() => t.app.redis.call('XINFO', 'GROUPS', stream), {
      done: (groups) =>
        (groups as unknown[][]).some((g) => {
          const f = Object.fromEntries(
            Array.from({ length: g.length / 2 }, (_, n) => [g[2 * n], g[2 * n + 1]]),
          ) as Record<string, unknown>;
          return f.name === 'subscriptions' && f['last-delivered-id'] !== '0-0' && f.lag === 0;
        }),
      what: 'the subscriptions group read the stream',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    await a.stop();

    // The renewal fails while no consumer runs, and the trim removes its event unread.
    const failed = await t.app.store.transition(key, 'failed', Date.now(), {
      reason: 'declined',
      patch: { reason: 'declined', message: 'Insufficient funds' },
    });
    expect(failed.ok).toBe(true);
    await t.app.redis.xtrim(stream, 'MAXLEN', 0);

    const b = await consumer();
    try {
      const after = await until(() => t.app.subscriptions.get(id), {
        done: (d) => (d?.sub.dunning.length ?? 0) > 0,
        what: 'dunning started',
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      expect(after?.sub.dunning[0]).toMatchObject({ key });
    } finally {
      await b.stop();
    }
  });
});
