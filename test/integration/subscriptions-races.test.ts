/**
 * Recurring billing under the interleavings a crash, a redelivery or a concurrent request makes,
 * forced deterministically (a wrapped store runs the other party at the exact step), never by
 * sleeping: the real workers and reconciler against the sandbox, the subscriptions scheduler role
 * and a manual clock.
 *
 * - A `payment.failed` delivered again after its period was written off (the entry was applied
 *   and stored, then not acknowledged: a crash, an XACK or enqueue error) changes nothing.
 * - A cancel, pause or change that lands while a tick (or a dunning retry) is creating a charge
 *   never lets a charge be created after it answered, nor with terms it had replaced.
 * - `subscription.renewed` reports the amount charged, not the amount changed since.
 */
import { describe, expect, it } from 'vitest';
import type { Intent } from '../../src/kernel/payment.ts';
import type { GatewayOutcome, IntentStore, PaymentGateway } from '../../src/kernel/ports.ts';
import type { HandlerContext } from '../../src/infra/queues/processor.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDunningHandler } from '../../src/subscriptions/dunning.ts';
import { dunningJobId } from '../../src/subscriptions/jobs.ts';
import { subscriptionKeys } from '../../src/subscriptions/store/subscription-store.ts';
import {
  applyAction,
  createSubscriptionFromBody,
  patchSubscription,
} from '../../src/subscriptions/service.ts';
import { runTick } from '../../src/subscriptions/tick.ts';
import { toSubscriptionView } from '../../src/subscriptions/view.ts';
import { until } from '../support/poll.ts';
import { subsPerTest, type SubsHarness } from '../support/subscription-harness.ts';

const DAY = 86_400_000;
const ms = (iso: string) => Date.parse(iso);

const { setup } = subsPerTest();

const OLD_CARD = 'tok_card_secret_4111';

async function create(h: SubsHarness, id: string, amount = '1500') {
  const res = await createSubscriptionFromBody(h.service, {
    id,
    customer_email: 'ada@example.com',
    card_token: OLD_CARD,
    amount,
    currency: 'NGN',
    interval: 'day',
    interval_count: 1,
    anchor: '2025-02-01T08:00:00Z',
    timezone: 'UTC',
  });
  if (res.status !== 'created') throw new Error(`create failed: ${JSON.stringify(res)}`);
}

function ledgerOf(sandbox: Sandbox, id: string) {
  return Object.entries(sandbox.ledger().references)
    .filter(([ref]) => ref.startsWith(`sub_${id}_`))
    .map(([ref, e]) => ({ ref, status: e.status, amount: e.amount }))
    .sort((a, b) => (a.ref < b.ref ? -1 : 1));
}

/** `real`, with `before(name, args)` run (and awaited) before each call of `create`/`transition`. */
function intercepted(
  real: IntentStore,
  before: (name: 'create' | 'transition', args: unknown[]) => Promise<void>,
): IntentStore {
  return new Proxy(real, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const fn = value as (...a: unknown[]) => unknown;
      if (prop !== 'create' && prop !== 'transition') return fn.bind(target);
      return async (...args: unknown[]) => {
        await before(prop, args);
        return fn.apply(target, args);
      };
    },
  });
}

const cardOf = (h: SubsHarness, i: Intent | undefined) =>
  i?.payee.kind === 'charge' ? h.app.sealer.unseal(i.payee.cardTokenSealed) : undefined;

describe('a failure delivered again after its period was written off', () => {
  for (const exhausted of ['past_due', 'cancel'] as const) {
    it(`changes nothing (DUNNING_EXHAUSTED=${exhausted})`, async () => {
      const { sandbox, h } = await setup('2025-02-01T09:00:00Z', {
        env: { DUNNING_SCHEDULE: '50ms', DUNNING_EXHAUSTED: exhausted },
      });
      const id = `wo-${exhausted}`;
      await create(h, id, '9.51'); // the sandbox declines …51
      await h.tick();
      await h.settle();
      const before = await h.subs.get(id);
      expect(before?.sub).toMatchObject({
        status: exhausted === 'cancel' ? 'canceled' : 'past_due',
        dunning: [],
      });
      const due = subscriptionKeys(h.prefix).due();
      const scoreBefore = await h.app.redis.zscore(due, id);
      // Written off, it is billed on (in the due index); canceled, it is not.
      expect(scoreBefore === null).toBe(exhausted === 'cancel');
      const eventsBefore = (await h.events()).filter((e) => e.data.subscriptionId === id);

      // The last payment.failed (attempt 2), delivered again as XAUTOCLAIM hands a pending entry
      // over: the same fields, the same event id.
      const stream = storeKeys(h.app.layout.group).events();
      const entries = await h.app.redis.xrange(stream, '-', '+');
      const last = entries.find(([, f]) => {
        const data = f[f.indexOf('data') + 1] ?? '{}';
        const d = JSON.parse(data) as { key?: string; attempt?: number };
        return (
          f[f.indexOf('type') + 1] === 'payment.failed' &&
          d.key === `sub_${id}_20250201` &&
          d.attempt === 2
        );
      });
      expect(last).toBeDefined();
      h.clock.advance(30_000);
      await h.app.redis.xadd(stream, '*', ...last![1]);
      await h.drained();
      await h.settle();

      const after = await h.subs.get(id);
      expect(after?.version).toBe(before?.version);
      expect(after?.sub).toEqual(before?.sub);
      expect(await h.app.redis.zscore(due, id)).toBe(scoreBefore);
      const subEvents = (await h.events()).filter(
        (e) => e.data.subscriptionId === id && e.type.startsWith('subscription.'),
      );
      expect(subEvents).toEqual(eventsBefore.filter((e) => e.type.startsWith('subscription.')));
      expect(ledgerOf(sandbox, id).map((e) => e.ref)).toEqual([
        `sub_${id}_20250201_1`,
        `sub_${id}_20250201_2`,
      ]);
      if (exhausted === 'past_due') {
        // Billing goes on with the next period, once.
        h.clock.set(ms('2025-02-02T09:00:00Z'));
        expect((await h.tick()).created).toBe(1);
      }
    });
  }
});

describe('an action that lands while a tick is creating the period’s charge', () => {
  it('cancel, pause and change never let a charge be created after they answered, nor with the terms they replaced', async () => {
    const { sandbox, h } = await setup('2025-02-01T09:00:00Z');
    for (const id of ['r-cancel', 'r-pause', 'r-patch', 'r-at-end']) await create(h, id);
    const answers = new Map<string, { answer: unknown; intentAtAnswer: Intent | undefined }>();
    const act: Record<string, () => Promise<unknown>> = {
      'r-cancel': () => applyAction(h.service, 'r-cancel', 'cancel'),
      'r-pause': () => applyAction(h.service, 'r-pause', 'pause'),
      'r-patch': () =>
        patchSubscription(h.service, 'r-patch', {
          amount: '2000',
          card_token: 'tok_new_card_secret_77',
        }),
      'r-at-end': () => applyAction(h.service, 'r-at-end', 'cancel', { atPeriodEnd: true }),
    };
    // The tick has stored its claims; as it creates each period's intent, the merchant acts.
    const intents = intercepted(h.tickDeps.intents, async (name, args) => {
      const draft = args[0] as { key: string; subscriptionId?: string };
      const id = draft.subscriptionId ?? '';
      const run = act[id];
      if (name !== 'create' || !run || answers.has(id)) return;
      answers.set(id, { answer: undefined, intentAtAnswer: undefined });
      const answer = await run();
      answers.set(id, { answer, intentAtAnswer: await h.app.store.get(draft.key) });
    });
    await runTick({ ...h.tickDeps, intents }, h.clock.now());
    await h.settle();

    const periodEnd = ms('2025-02-02T08:00:00Z');
    for (const [id, status] of [
      ['r-cancel', 'canceled'],
      ['r-pause', 'paused'],
      ['r-patch', 'active'],
      ['r-at-end', 'active'],
    ] as const) {
      const a = answers.get(id);
      expect(a?.answer, id).toMatchObject({ status: 'ok', subscription: { status } });
      // The charge for the period being billed was created before the answer, never after it,
      // and the answer says that period is billed (the next one starts at its end).
      expect(a?.intentAtAnswer, id).toMatchObject({
        key: `sub_${id}_20250201`,
        amount: 150_000,
      });
      expect(cardOf(h, a?.intentAtAnswer), id).toBe(OLD_CARD);
      expect(a?.answer, id).toMatchObject({ subscription: { nextPeriodStart: periodEnd } });
      expect(ledgerOf(sandbox, id), id).toEqual([
        { ref: `sub_${id}_20250201_1`, status: 'success', amount: 150_000 },
      ]);
    }
    // Canceling at the period's end: the end of the period just billed.
    const atEnd = answers.get('r-at-end')?.answer as Parameters<typeof toSubscriptionView>[0] & {
      subscription: Parameters<typeof toSubscriptionView>[0];
    };
    expect(toSubscriptionView(atEnd.subscription).cancel_at).toBe(
      new Date(periodEnd).toISOString(),
    );
    const updated = (await h.events()).find(
      (e) => e.type === 'subscription.updated' && e.data.subscriptionId === 'r-at-end',
    );
    expect(updated?.data.cancelAt).toBe(periodEnd);

    // The next day: the changed terms are charged, the canceled and paused ones nothing.
    h.clock.set(ms('2025-02-02T09:00:00Z'));
    await h.tick();
    await h.settle();
    const next = await h.app.store.get('sub_r-patch_20250202');
    expect(next).toMatchObject({ amount: 200_000 });
    expect(cardOf(h, next)).toBe('tok_new_card_secret_77');
    for (const id of ['r-cancel', 'r-pause', 'r-at-end'])
      expect(ledgerOf(sandbox, id), id).toHaveLength(1);
    expect((await h.subs.get('r-at-end'))?.sub.status).toBe('canceled');
  });
});

describe('an action that lands while a dunning retry is opening its attempt', () => {
  it('pause never lets the retry be created after it answered', async () => {
    const { sandbox, h } = await setup('2025-02-01T09:00:00Z', {
      env: { DUNNING_SCHEDULE: '1d,2d' },
    });
    const id = 'r-retry';
    const key = `sub_${id}_20250201`;
    await create(h, id, '20.51'); // declined
    await h.tick();
    await until(async () => (await h.subs.get(id))?.sub.dunning.length === 1, {
      what: `${id} in dunning`,
      timeoutMs: 10_000,
    });
    // The retry job is run here, by hand, with the intents wrapped (not a day later).
    const queue = h.app.dispatcher.queue('subscriptions');
    await (await queue.getJob(dunningJobId({ key: key as never, step: 0, resumes: 0 })))?.remove();
    h.clock.advance(DAY);

    let answer: unknown;
    let atAnswer: Intent | undefined;
    const intents = intercepted(h.tickDeps.intents, async (name, args) => {
      if (name !== 'transition' || args[1] !== 'queued' || answer !== undefined) return;
      answer = 'running';
      answer = await applyAction(h.service, id, 'pause');
      atAnswer = await h.app.store.get(key);
    });
    const handler = createDunningHandler({
      subs: h.tickDeps.subs,
      intents,
      dispatcher: h.tickDeps.dispatcher,
      clock: h.clock,
    });
    const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
    await handler(
      { subscriptionId: id, key, step: 0 } as never,
      {
        log,
      } as unknown as HandlerContext,
    );
    await h.settle();

    expect(answer).toMatchObject({ status: 'ok', subscription: { status: 'paused' } });
    // Attempt 2 was opened (and sent) before the pause answered; nothing after it.
    expect(atAnswer).toMatchObject({ attempt: 2 });
    expect(ledgerOf(sandbox, id).map((e) => e.ref)).toEqual([`${key}_1`, `${key}_2`]);
    expect(await h.app.store.get(key)).toMatchObject({ attempt: 2, state: 'failed' });
    expect((await h.subs.get(id))?.sub).toMatchObject({ status: 'paused' });
  });
});

describe('subscription.renewed', () => {
  it('reports the amount charged when the amount changed while the period was in dunning', async () => {
    const declineFirst = (real: PaymentGateway): PaymentGateway => ({
      chargeCard: (req) =>
        req.reference === 'sub_amt_20250201_1'
          ? Promise.resolve<GatewayOutcome>({
              status: 'failed',
              reason: 'declined',
              reference: req.reference,
            })
          : real.chargeCard(req),
      verifyCharge: (ref) => real.verifyCharge(ref),
      payout: (req) => real.payout(req),
      lookupPayout: (ref) => real.lookupPayout(ref),
      listBanks: (c) => real.listBanks(c),
      resolveAccountName: (q) => real.resolveAccountName(q),
      walletBalance: (c) => real.walletBalance(c),
      refund: (r) => real.refund(r),
      refundStatus: (ref) => real.refundStatus(ref),
      refundsOf: (ref) => real.refundsOf(ref),
    });
    const { sandbox, h } = await setup('2025-02-01T09:00:00Z', {
      env: { DUNNING_SCHEDULE: '1d' },
      gateway: declineFirst,
    });
    await create(h, 'amt', '1500');
    await h.tick();
    await until(async () => (await h.subs.get('amt'))?.sub.status === 'past_due', {
      what: 'amt past_due',
      timeoutMs: 10_000,
    });
    const changed = await patchSubscription(h.service, 'amt', { amount: '2000' });
    expect(changed).toMatchObject({ status: 'ok', subscription: { amount: 200_000 } });
    h.clock.advance(DAY);
    await (
      await h.app.dispatcher
        .queue('subscriptions')
        .getJob(dunningJobId({ key: 'sub_amt_20250201' as never, step: 0, resumes: 0 }))
    )?.promote();
    await h.settle();

    expect(ledgerOf(sandbox, 'amt')).toEqual([
      { ref: 'sub_amt_20250201_2', status: 'success', amount: 150_000 },
    ]);
    const renewed = (await h.events()).filter((e) => e.type === 'subscription.renewed');
    expect(renewed).toEqual([
      expect.objectContaining({
        id: 'evt_sub_amt_20250201_renewed',
        data: expect.objectContaining({ amount: 150_000, currency: 'NGN', attempt: 2 }),
      }),
    ]);
  });
});
