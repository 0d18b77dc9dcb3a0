/**
 * Two ticks overlap (one ran longer than SCHEDULER_CRON): tick A has claimed a subscription's next
 * period and is creating its charge when an earlier period's decline is applied (dunning: the
 * record is no longer billable), and tick B, which read the due index before A's claim was
 * stored, reads the record. B used to take the record for idle and release A's live claim: A's
 * charge was created and sent but its commit lost, the period was claimed again later, and with
 * DUNNING_EXHAUSTED=past_due billing then waited on that settled charge for good. A live claim is
 * now `busy` whatever else the record says. Real Redis and the sandbox.
 */
import { afterEach, expect, it } from 'vitest';
import type { PaymentGateway } from '../../src/kernel/ports.ts';
import { createSubscriptionFromBody } from '../../src/subscriptions/service.ts';
import { runTick, type TickDeps } from '../../src/subscriptions/tick.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { startSubsHarness } from '../support/subscription-harness.ts';

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of opened.reverse()) await c.close();
  opened.length = 0;
});

function latch() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

/** `deps` with `name` of `port` replaced by `fn`. */
function withMethod<T extends object>(port: T, name: PropertyKey, fn: unknown): T {
  return new Proxy(port, {
    get(t, p, r) {
      if (p === name) return fn;
      const v: unknown = Reflect.get(t, p, r);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

it("a tick never releases another tick's live claim; the claimed period is committed and billing goes on", async () => {
  const gateway = latch();
  const sandbox = await startTestSandbox();
  opened.push(sandbox);
  const h = await startSubsHarness({
    sandboxUrl: sandbox.url,
    start: Date.parse('2025-02-01T09:00:00Z'),
    env: { DUNNING_EXHAUSTED: 'past_due' },
    // Period 0's charge waits at the gateway until the test lets it through.
    gateway: (real) =>
      withMethod(real, 'chargeCard', async (req: Parameters<PaymentGateway['chargeCard']>[0]) => {
        if (req.reference === 'sub_race_20250201_1') await gateway.p;
        return real.chargeCard(req);
      }),
  });
  opened.push(h);
  const id = 'race';
  const created = await createSubscriptionFromBody(h.service, {
    id,
    customer_email: 'ada@example.com',
    card_token: 'tok_card_race_0123',
    amount: '15.51', // the sandbox declines every attempt
    currency: 'NGN',
    interval: 'day',
    interval_count: 1,
    anchor: '2025-02-01T08:00:00Z',
    timezone: 'UTC',
  });
  expect(created.status).toBe('created');

  await h.tick();
  await until(() => h.app.store.get('sub_race_20250201'), {
    done: (i) => i?.state === 'submitting',
    what: 'period 0 sent',
  });

  // Feb 2: tick A claims period 1 and stops, inside its lease, before creating its charge.
  h.clock.set(Date.parse('2025-02-02T08:00:01Z'));
  const now = h.clock.now();
  const create = latch();
  const intents = h.tickDeps.intents;
  const aDeps: TickDeps = {
    ...h.tickDeps,
    intents: withMethod(intents, 'create', async (...a: Parameters<typeof intents.create>) => {
      await create.p;
      return intents.create(...a);
    }),
  };
  // Tick B read the due index before A's claim was stored.
  let served = false;
  const bDeps: TickDeps = {
    ...h.tickDeps,
    subs: withMethod(h.tickDeps.subs, 'dueIds', () =>
      Promise.resolve(served ? [] : ((served = true), [id])),
    ),
  };
  const tickA = runTick(aDeps, now);
  const claim = (
    await until(() => h.subs.get(id), {
      done: (d) => d?.sub.claim !== undefined,
      what: 'A claimed period 1',
    })
  )?.sub.claim;

  // Period 0 is declined and its outcome applied: the record is in dunning, not billable.
  gateway.open();
  await until(() => h.subs.get(id), {
    done: (d) => (d?.sub.dunning.length ?? 0) > 0,
    what: 'period 0 in dunning',
  });
  const b = await runTick(bDeps, now);
  expect(b).toMatchObject({ billed: 0, contended: 1 });
  expect((await h.subs.get(id))?.sub.claim).toEqual(claim);

  create.open();
  expect(await tickA).toMatchObject({ created: 1, contended: 0 });
  expect((await h.subs.get(id))?.sub.nextPeriod).toBe(2);

  await h.settle();
  for (const day of ['03', '04', '05']) {
    h.clock.set(Date.parse(`2025-02-${day}T08:00:01Z`));
    await h.tick();
    await h.settle();
  }
  const keys = (await h.subs.intentKeys(id, 50)).sort();
  expect(keys).toEqual([
    'sub_race_20250201',
    'sub_race_20250202',
    'sub_race_20250203',
    'sub_race_20250204',
    'sub_race_20250205',
  ]);
});
