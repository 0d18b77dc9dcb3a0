/**
 * Recurring billing end to end: the real workers and reconciler against the sandbox, the
 * subscriptions module's scheduler role (dunning worker, outcome consumer), and a manual clock
 * driving ticks. The sandbox ledger is the truth of what money moved.
 */
import { describe, expect, it } from 'vitest';
import { runCliInProcess } from '../support/cli-run.ts';
import { openApp } from '../../src/app/composition.ts';
import type { GatewayOutcome, PaymentGateway } from '../../src/kernel/ports.ts';
import { claimBilling, planBilling } from '../../src/subscriptions/billing.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { registerSubscriptionRoutes } from '../../src/http/routes/subscriptions.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { dunningJobId } from '../../src/subscriptions/jobs.ts';
import { runTick } from '../../src/subscriptions/tick.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import {
  applyAction,
  createSubscriptionFromBody,
  showSubscription,
} from '../../src/subscriptions/service.ts';
import { TEST_API_TOKEN } from '../support/app.ts';
import { until } from '../support/poll.ts';
import {
  subsPerTest,
  startSubscriptionsScheduler,
  type SubsHarness,
} from '../support/subscription-harness.ts';

const DAY = 86_400_000;
const ms = (iso: string) => Date.parse(iso);

const { opened, setup } = subsPerTest();

function body(over: Record<string, unknown>) {
  return {
    customer_email: 'ada@example.com',
    card_token: 'tok_card_secret_4111',
    amount: '1500',
    currency: 'NGN',
    interval: 'month',
    interval_count: 1,
    anchor: '2025-01-31T09:00:00+01:00',
    timezone: 'Africa/Lagos',
    ...over,
  };
}

async function create(h: SubsHarness, over: Record<string, unknown>) {
  const res = await createSubscriptionFromBody(h.service, body(over));
  if (res.status !== 'created') throw new Error(`create failed: ${JSON.stringify(res)}`);
  return res.subscription;
}

/** Ledger references of a subscription, sorted, with their status. */
function ledgerOf(sandbox: Sandbox, id: string) {
  return Object.entries(sandbox.ledger().references)
    .filter(([ref]) => ref.startsWith(`sub_${id}_`))
    .map(([ref, e]) => ({ ref, status: e.status, moved: e.moneyMoved, amount: e.amount }))
    .sort((a, b) => (a.ref < b.ref ? -1 : 1));
}

async function status(h: SubsHarness, id: string) {
  return (await h.subs.get(id))?.sub;
}

describe('billing periods', () => {
  it('charges once per period, on the right local day, across month ends and DST', async () => {
    const { sandbox, h } = await setup('2025-01-30T00:00:00Z');
    await create(h, {
      id: 'ny-monthly',
      anchor: '2025-01-31T09:00:00-05:00',
      timezone: 'America/New_York',
      currency: 'USD',
      amount: '25.00',
    });
    await create(h, {
      id: 'lagos-daily',
      anchor: '2025-03-01T06:00:00+01:00',
      timezone: 'Africa/Lagos',
      interval: 'day',
    });
    expect((await h.tick()).created).toBe(0);

    // Every six hours from Jan 31 to Apr 1, ticking twice each time: each period once.
    for (let t = ms('2025-01-31T12:00:00Z'); t <= ms('2025-04-01T00:00:00Z'); t += DAY / 4) {
      h.clock.set(t);
      const [a, b] = [await h.tick(), await h.tick()];
      expect(b.created).toBe(0);
      if (a.created > 0) await h.settle();
    }
    await h.settle();

    expect(ledgerOf(sandbox, 'ny-monthly')).toEqual([
      { ref: 'sub_ny-monthly_20250131_1', status: 'success', moved: true, amount: 2500 },
      { ref: 'sub_ny-monthly_20250228_1', status: 'success', moved: true, amount: 2500 },
      { ref: 'sub_ny-monthly_20250331_1', status: 'success', moved: true, amount: 2500 },
    ]);
    const daily = ledgerOf(sandbox, 'lagos-daily');
    expect(daily).toHaveLength(31);
    expect(daily.every((e) => e.moved && e.ref.endsWith('_1'))).toBe(true);

    const ny = await showSubscription(h.service, 'ny-monthly');
    // March 31 09:00 in New York is EDT (UTC-4) after the March 9 change.
    expect(ny).toMatchObject({
      status: 'active',
      current_period_start: '2025-03-31T13:00:00.000Z',
      current_period_end: '2025-04-30T13:00:00.000Z',
      next_charge_at: '2025-04-30T13:00:00.000Z',
    });
    expect(JSON.stringify(ny)).not.toContain('tok_card_secret');

    const renewed = (await h.events()).filter((e) => e.type === 'subscription.renewed');
    expect(renewed).toHaveLength(34);
    expect(new Set(renewed.map((e) => e.id)).size).toBe(34);
    expect(renewed.map((e) => e.id)).toContain('evt_sub_ny-monthly_20250228_renewed');
  });

  it('after downtime bills each missed period once, oldest first', async () => {
    const { sandbox, h } = await setup('2025-05-01T10:00:00Z');
    await create(h, {
      id: 'catchup',
      anchor: '2025-05-01T09:00:00Z',
      timezone: 'UTC',
      interval: 'day',
    });
    await h.tick();
    await h.settle();
    // Down for five days and a bit.
    h.clock.set(ms('2025-05-06T12:00:00Z'));
    const r = await h.tick();
    expect(r).toMatchObject({ created: 5, skipped: 0 });
    await h.settle();
    // Created oldest first: the intent store indexes them in that order.
    const keys = await h.subs.intentKeys('catchup', 100);
    expect([...keys].reverse()).toEqual([
      'sub_catchup_20250501',
      'sub_catchup_20250502',
      'sub_catchup_20250503',
      'sub_catchup_20250504',
      'sub_catchup_20250505',
      'sub_catchup_20250506',
    ]);
    expect(ledgerOf(sandbox, 'catchup').map((e) => [e.ref, e.status])).toEqual(
      keys
        .slice()
        .reverse()
        .map((k) => [`${k}_1`, 'success']),
    );
    expect((await h.tick()).created).toBe(0);
  });

  it('caps a long catch-up at CATCH_UP_MAX_PERIODS, billing the newest periods', async () => {
    const { sandbox, h } = await setup('2025-05-01T10:00:00Z', {
      env: { CATCH_UP_MAX_PERIODS: '3' },
    });
    await create(h, {
      id: 'capped',
      anchor: '2025-05-01T09:00:00Z',
      timezone: 'UTC',
      interval: 'day',
    });
    await h.tick();
    h.clock.set(ms('2025-05-11T12:00:00Z'));
    expect(await h.tick()).toMatchObject({ created: 3, skipped: 7 });
    await h.settle();
    expect(ledgerOf(sandbox, 'capped').map((e) => e.ref)).toEqual([
      'sub_capped_20250501_1',
      'sub_capped_20250509_1',
      'sub_capped_20250510_1',
      'sub_capped_20250511_1',
    ]);
    expect((await showSubscription(h.service, 'capped'))?.skipped_periods).toBe(7);
  });
});

describe('two schedulers, overlapping ticks', () => {
  it('never create a second intent for one period', async () => {
    const { sandbox, h } = await setup('2025-02-01T00:00:00Z', {
      env: { CATCH_UP_MAX_PERIODS: '40' },
    });
    // A second scheduler process: its own connections on the same prefix.
    const other = openApp(h.app.config, createLogger({ level: 'silent' }), { clock: h.clock });
    opened.unshift({ close: () => other.close() });
    const otherTick = {
      ...h.tickDeps,
      subs: other.subscriptions,
      intents: other.store,
      dispatcher: other.dispatcher,
      chunkSize: 7,
    };
    const ids = Array.from({ length: 60 }, (_, i) => `race-${i}`);
    for (const id of ids)
      await create(h, { id, anchor: '2025-02-01T08:00:00Z', timezone: 'UTC', interval: 'day' });

    for (const at of ['2025-02-01T09:00:00Z', '2025-02-03T09:00:00Z', '2025-03-01T09:00:00Z']) {
      h.clock.set(ms(at));
      const results = await Promise.all([
        h.tick(),
        runTick(otherTick, h.clock.now()),
        h.tick(),
        runTick({ ...h.tickDeps, chunkSize: 3 }, h.clock.now()),
        runTick(otherTick, h.clock.now()),
      ]);
      const created = results.reduce((n, r) => n + r.created, 0);
      const expected = {
        '2025-02-01T09:00:00Z': 60,
        '2025-02-03T09:00:00Z': 120,
        '2025-03-01T09:00:00Z': 60 * 26,
      }[at];
      expect(created).toBe(expected);
      await h.settle(60_000);
    }
    const refs = Object.keys(sandbox.ledger().references).filter((r) => r.startsWith('sub_race-'));
    expect(refs).toHaveLength(60 * 29);
    expect(new Set(refs.map((r) => r.replace(/_\d+$/, ''))).size).toBe(60 * 29);
    expect(refs.every((r) => r.endsWith('_1'))).toBe(true);
    expect(sandbox.ledger().totals.NGN).toEqual({ movedMinor: 60 * 29 * 150_000, count: 60 * 29 });
  });

  it('a tick that died holding a claim is finished by a later one, once', async () => {
    const { sandbox, h } = await setup('2025-02-01T09:00:00Z');
    await create(h, {
      id: 'orphan',
      anchor: '2025-02-01T08:00:00Z',
      timezone: 'UTC',
      interval: 'day',
    });
    // Claim as a tick would, then "crash" before creating the intent.
    const cur = await h.subs.get('orphan');
    const plan = planBilling(cur!.sub, h.clock.now(), { catchUpMax: 12 });
    if (plan.kind !== 'bill') throw new Error('expected a bill plan');
    const lease = 60_000;
    const claimed = claimBilling(cur!.sub, plan, {
      token: 'dead',
      now: h.clock.now(),
      leaseMs: lease,
    });
    expect(await h.subs.save(claimed, cur!.version)).toBeDefined();

    expect((await h.tick()).created).toBe(0); // lease still held
    h.clock.advance(lease);
    expect((await h.tick()).created).toBe(1);
    await h.settle();
    expect(ledgerOf(sandbox, 'orphan').map((e) => e.ref)).toEqual(['sub_orphan_20250201_1']);
    expect((await h.subs.get('orphan'))?.sub).toMatchObject({ nextPeriod: 1 });
    expect((await h.subs.get('orphan'))?.sub.claim).toBeUndefined();
  });

  it('the cron job scheduler runs ticks (one scheduler for any number of replicas)', async () => {
    const { h } = await setup('2025-02-01T09:00:00Z', { env: { SCHEDULER_CRON: '* * * * * *' } });
    await create(h, {
      id: 'cron',
      anchor: '2025-02-01T08:00:00Z',
      timezone: 'UTC',
      interval: 'day',
    });
    const a = await startSubscriptionsScheduler(h.app, { blockMs: 100 });
    opened.push({ close: () => a.stop() });
    const b = await startSubscriptionsScheduler(h.app, { blockMs: 100 });
    opened.push({ close: () => b.stop() });
    const queue = h.app.dispatcher.queue('subscriptions');
    expect(await queue.getJobSchedulersCount()).toBe(1);
    await until(() => h.app.store.get('sub_cron_20250201'), {
      what: 'the cron tick to create sub_cron_20250201',
      timeoutMs: 10_000,
    });
    await queue.removeJobScheduler('subscriptions-tick');
  });
});

describe('dunning', () => {
  it('a declined renewal goes past_due, is retried per DUNNING_SCHEDULE, then canceled, with events', async () => {
    const { sandbox, h } = await setup('2025-02-01T09:00:00Z', {
      env: { DUNNING_SCHEDULE: '50ms,100ms' },
    });
    await create(h, {
      id: 'declines',
      amount: '1500.51',
      anchor: '2025-02-01T08:00:00Z',
      timezone: 'UTC',
      interval: 'day',
    });
    await h.tick();
    await h.settle();

    expect(ledgerOf(sandbox, 'declines')).toEqual([
      expect.objectContaining({ ref: 'sub_declines_20250201_1', status: 'failed', moved: false }),
      expect.objectContaining({ ref: 'sub_declines_20250201_2', status: 'failed', moved: false }),
      expect.objectContaining({ ref: 'sub_declines_20250201_3', status: 'failed', moved: false }),
    ]);
    const sub = await status(h, 'declines');
    expect(sub).toMatchObject({
      status: 'canceled',
      cancelReason: 'dunning_exhausted',
      dunning: [],
    });

    const events = (await h.events())
      .filter((e) => e.data.subscriptionId === 'declines')
      .map((e) => [e.type, e.id]);
    expect(events).toEqual([
      ['subscription.created', 'evt_sub_declines_created'],
      ['payment.failed', 'evt_sub_declines_20250201_1_failed'],
      ['subscription.past_due', 'evt_sub_declines_20250201_1_past_due'],
      ['payment.failed', 'evt_sub_declines_20250201_2_failed'],
      ['subscription.past_due', 'evt_sub_declines_20250201_2_past_due'],
      ['payment.failed', 'evt_sub_declines_20250201_3_failed'],
      ['subscription.canceled', 'evt_sub_declines_canceled'],
    ]);
    // Nothing more is ever billed.
    h.clock.advance(10 * DAY);
    expect((await h.tick()).due).toBe(0);
  });

  it('DUNNING_EXHAUSTED=past_due writes the period off and keeps billing', async () => {
    const { sandbox, h } = await setup('2025-02-01T09:00:00Z', {
      env: { DUNNING_SCHEDULE: '50ms', DUNNING_EXHAUSTED: 'past_due' },
    });
    await create(h, {
      id: 'stays',
      amount: '9.51',
      anchor: '2025-02-01T08:00:00Z',
      timezone: 'UTC',
      interval: 'day',
    });
    await h.tick();
    await h.settle();
    expect(await status(h, 'stays')).toMatchObject({
      status: 'past_due',
      delinquent: true,
      dunning: [],
    });
    h.clock.advance(DAY);
    expect((await h.tick()).created).toBe(1);
    await h.settle();
    expect(ledgerOf(sandbox, 'stays').map((e) => e.ref)).toEqual([
      'sub_stays_20250201_1',
      'sub_stays_20250201_2',
      'sub_stays_20250202_1',
      'sub_stays_20250202_2',
    ]);
    const exhausted = (await h.events()).filter(
      (e) => e.type === 'subscription.past_due' && e.data.exhausted === true,
    );
    expect(exhausted.map((e) => e.id)).toEqual([
      'evt_sub_stays_20250201_2_past_due',
      'evt_sub_stays_20250202_2_past_due',
    ]);
  });

  it('a retry that succeeds renews it, and the periods held meanwhile are billed after', async () => {
    // The card declines the first attempt of the first period only (a real decline would come
    // from the sandbox by amount, which never changes for a subscription).
    const declineFirst = (real: PaymentGateway): PaymentGateway => ({
      chargeCard: (req) =>
        req.reference === 'sub_flaky_20250201_1'
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
      env: { DUNNING_SCHEDULE: '1d,3d' },
      gateway: declineFirst,
    });
    await create(h, {
      id: 'flaky',
      anchor: '2025-02-01T08:00:00Z',
      timezone: 'UTC',
      interval: 'day',
    });
    await h.tick();
    await until(async () => (await status(h, 'flaky'))?.status === 'past_due', {
      what: 'flaky past_due',
      timeoutMs: 10_000,
    });
    const job = await h.app.dispatcher
      .queue('subscriptions')
      .getJob(dunningJobId({ key: 'sub_flaky_20250201' as never, step: 0, resumes: 0 }));
    expect(job?.opts.delay).toBe(DAY);
    // Billing is held while the card is retried: the next days are not charged yet.
    h.clock.advance(DAY);
    expect((await h.tick()).due).toBe(0);
    // The retry fires (promoted now rather than waited for) and succeeds.
    await job!.promote();
    await h.settle();
    expect(await status(h, 'flaky')).toMatchObject({ status: 'active', dunning: [] });
    // The day held meanwhile is billed by the next tick.
    expect((await h.tick()).created).toBe(1);
    await h.settle();
    expect(ledgerOf(sandbox, 'flaky').map((e) => [e.ref, e.status])).toEqual([
      ['sub_flaky_20250201_2', 'success'],
      ['sub_flaky_20250202_1', 'success'],
    ]);
    const types = (await h.events())
      .filter((e) => e.type.startsWith('subscription.'))
      .map((e) => e.id);
    expect(types).toEqual([
      'evt_sub_flaky_created',
      'evt_sub_flaky_20250201_1_past_due',
      'evt_sub_flaky_20250201_renewed',
      'evt_sub_flaky_20250202_renewed',
    ]);
  });
});

describe('pause, resume and cancel during dunning', () => {
  /** A subscription whose card always declines, in dunning, its first retry a (real) day away. */
  async function inDunning(id: string) {
    const ctx = await setup('2025-02-01T09:00:00Z', { env: { DUNNING_SCHEDULE: '1d,2d,3d' } });
    await create(ctx.h, {
      id,
      amount: '20.51',
      anchor: '2025-02-01T08:00:00Z',
      timezone: 'UTC',
      interval: 'day',
    });
    await ctx.h.tick();
    await until(async () => (await status(ctx.h, id))?.status === 'past_due', {
      what: `${id} past_due`,
      timeoutMs: 10_000,
    });
    return ctx;
  }

  /** Runs the delayed retry job now (instead of waiting a day) and returns what it did. */
  async function runRetryNow(h: SubsHarness, id: string, step: number, resumes = 0) {
    const queue = h.app.dispatcher.queue('subscriptions');
    const jobId = dunningJobId({ key: `sub_${id}_20250201` as never, step, resumes });
    const job = await queue.getJob(jobId);
    expect(job?.opts.delay).toBeGreaterThan(0);
    await job!.promote();
    await until(async () => (await queue.getJob(jobId))?.finishedOn !== undefined, {
      what: `dunning job ${jobId} finished`,
      timeoutMs: 10_000,
    });
    return (await queue.getJob(jobId))?.returnvalue as unknown;
  }

  it('pause stops the pending retry; resume continues dunning (overdue retries at once) and bills no paused period', async () => {
    const { sandbox, h } = await inDunning('pausy');
    const paused = await applyAction(h.service, 'pausy', 'pause');
    expect(paused).toMatchObject({
      status: 'ok',
      changed: true,
      subscription: { status: 'paused' },
    });
    expect(await runRetryNow(h, 'pausy', 0)).toEqual({ skipped: 'paused' });
    expect(ledgerOf(sandbox, 'pausy').map((e) => e.ref)).toEqual(['sub_pausy_20250201_1']);

    // Three days pass while paused: nothing is billed, no retry runs.
    h.clock.advance(3 * DAY);
    expect((await h.tick()).due).toBe(0);
    expect(await applyAction(h.service, 'pausy', 'pause')).toMatchObject({ changed: false });

    const resumed = await applyAction(h.service, 'pausy', 'resume');
    expect(resumed).toMatchObject({
      status: 'ok',
      subscription: { status: 'past_due', resumes: 1 },
    });
    // Retries 1-3 (due 1, 2 and 3 days after the failure) are all overdue, but only retry 1 runs
    // now: each later one waits its gap (1 day) after the previous attempt failed, as after any
    // downtime. The card still declines: exhausted, canceled.
    const queue = h.app.dispatcher.queue('subscriptions');
    for (const step of [1, 2]) {
      const jobId = dunningJobId({ key: 'sub_pausy_20250201' as never, step, resumes: 1 });
      const job = await until(() => queue.getJob(jobId), { what: jobId, timeoutMs: 10_000 });
      expect(job.opts.delay).toBe(DAY);
      await job.promote();
    }
    await h.settle();
    expect(ledgerOf(sandbox, 'pausy').map((e) => [e.ref, e.status])).toEqual([
      ['sub_pausy_20250201_1', 'failed'],
      ['sub_pausy_20250201_2', 'failed'],
      ['sub_pausy_20250201_3', 'failed'],
      ['sub_pausy_20250201_4', 'failed'],
    ]);
    expect(await status(h, 'pausy')).toMatchObject({
      status: 'canceled',
      cancelReason: 'dunning_exhausted',
    });
    // Feb 2-4 passed during the pause and were never billed.
    expect(await h.subs.intentKeys('pausy', 10)).toEqual(['sub_pausy_20250201']);
  });

  it('cancel stops the pending retry and everything after it', async () => {
    const { sandbox, h } = await inDunning('cancely');
    expect(await applyAction(h.service, 'cancely', 'cancel')).toMatchObject({
      status: 'ok',
      subscription: { status: 'canceled', cancelReason: 'requested', dunning: [] },
    });
    expect(await runRetryNow(h, 'cancely', 0)).toEqual({ skipped: 'canceled' });
    await h.settle();
    expect(ledgerOf(sandbox, 'cancely').map((e) => e.ref)).toEqual(['sub_cancely_20250201_1']);
    expect(await applyAction(h.service, 'cancely', 'resume')).toMatchObject({
      status: 'refused',
      code: 'canceled',
    });
    h.clock.advance(5 * DAY);
    expect((await h.tick()).due).toBe(0);
    const canceled = (await h.events()).filter((e) => e.type === 'subscription.canceled');
    expect(canceled).toEqual([
      expect.objectContaining({
        id: 'evt_sub_cancely_canceled',
        data: expect.objectContaining({ reason: 'requested' }),
      }),
    ]);
  });

  it('resume after a paused stretch bills the current period once and not the paused ones', async () => {
    const { sandbox, h } = await setup('2025-02-01T09:00:00Z');
    await create(h, {
      id: 'weekly',
      anchor: '2025-02-01T08:00:00Z',
      timezone: 'UTC',
      interval: 'week',
    });
    await h.tick();
    await h.settle();
    await applyAction(h.service, 'weekly', 'pause');
    h.clock.set(ms('2025-03-05T00:00:00Z'));
    expect((await h.tick()).due).toBe(0);
    await applyAction(h.service, 'weekly', 'resume');
    await h.tick();
    await h.tick();
    await h.settle();
    // Feb 1 before the pause; Mar 1 is the period containing the resume; Feb 8–22 are not billed.
    expect(ledgerOf(sandbox, 'weekly').map((e) => e.ref)).toEqual([
      'sub_weekly_20250201_1',
      'sub_weekly_20250301_1',
    ]);
  });
});

describe('management over HTTP and the CLI', () => {
  it('POST /subscriptions, GET /subscriptions/:id and the actions', async () => {
    const { h } = await setup('2025-01-01T00:00:00Z');
    const server = await buildHttpServer({
      checkResponses: true,
      logger: createLogger({ level: 'silent' }),
      tokens: { write: TEST_API_TOKEN },
      payments: {
        store: h.app.store,
        dispatcher: h.app.dispatcher,
        sealer: h.app.sealer,
        clock: h.clock,
        hasher: h.app.hasher,
      },
      ready: () => Promise.resolve({ ok: true as const }),
      extensions: [(app) => registerSubscriptionRoutes(app, h.service)],
    });
    opened.push({ close: () => server.close() });
    const auth = { authorization: `Bearer ${TEST_API_TOKEN}` };
    const post = (url: string, payload?: object, headers: Record<string, string> = auth) =>
      server.inject({
        method: 'POST',
        url,
        headers,
        ...(payload !== undefined ? { payload } : {}),
      });

    expect((await post('/subscriptions', body({ id: 'h1' }), {})).statusCode).toBe(401);
    const created = await post('/subscriptions', body({ id: 'h1', meta_plan: 'gold' }));
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      id: 'h1',
      status: 'active',
      amount: '1500',
      amount_minor: 150_000,
      next_charge_at: '2025-01-31T08:00:00.000Z',
      metadata: { plan: 'gold' },
    });
    expect(created.body).not.toContain('tok_card_secret');
    expect((await post('/subscriptions', body({ id: 'h1', meta_plan: 'gold' }))).statusCode).toBe(
      200,
    );
    const reused = await post('/subscriptions', body({ id: 'h1', amount: '1600' }));
    expect(reused.statusCode).toBe(409);
    expect(reused.json()).toMatchObject({ error: { code: 'id_reused' } });

    const invalid = await post(
      '/subscriptions',
      body({ id: 'bad id', amount: '-5', timezone: 'Mars/Base', interval: 'fortnight' }),
    );
    expect(invalid.statusCode).toBe(422);
    const details = invalid.json<{ error: { details: { field: string }[] } }>().error.details;
    expect(details.map((d) => d.field).sort()).toEqual(['amount', 'id', 'interval', 'timezone']);
    expect(invalid.body).not.toContain('tok_card_secret');

    const got = await server.inject({ method: 'GET', url: '/subscriptions/h1', headers: auth });
    expect(got.statusCode).toBe(200);
    expect(got.body).not.toContain('tok_card_secret');
    expect(
      (await server.inject({ method: 'GET', url: '/subscriptions/nope', headers: auth }))
        .statusCode,
    ).toBe(404);

    expect((await post('/subscriptions/h1/pause')).json()).toMatchObject({
      status: 'paused',
      next_charge_at: null,
    });
    expect((await post('/subscriptions/h1/resume')).json()).toMatchObject({ status: 'active' });
    expect((await post('/subscriptions/h1/cancel')).json()).toMatchObject({ status: 'canceled' });
    const refused = await post('/subscriptions/h1/pause');
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error: { code: 'subscription_canceled' } });
    expect((await post('/subscriptions/nope/cancel')).statusCode).toBe(404);
    expect((await post('/subscriptions/h1/cancel', undefined, {})).statusCode).toBe(401);
  });

  it('billing subs import | list | show | pause | resume | cancel', async () => {
    const { h } = await setup('2025-01-01T00:00:00Z');
    const run = (...args: string[]) => runCliInProcess(h.app.config, args, { clock: h.clock });

    const imported = await run('subs', 'import', 'examples/subscriptions.csv', '--json');
    expect(imported.code).toBe(0);
    const summary = JSON.parse(imported.out) as { rows: number; created: number };
    expect(summary.created).toBe(summary.rows);
    expect(summary.rows).toBeGreaterThanOrEqual(20);
    const again = JSON.parse(
      (await run('subs', 'import', 'examples/subscriptions.csv', '--json')).out,
    );
    expect(again).toMatchObject({ created: 0, existing: summary.rows });

    const list = await run('subs', 'list', '--limit', '5', '--json');
    const page = JSON.parse(list.out) as { items: { id: string }[]; next?: string };
    expect(page.items).toHaveLength(5);
    expect(page.next).toBe(page.items[4]?.id);
    expect(list.out).not.toContain('card_token');

    const id = page.items[0]!.id;
    expect((await run('subs', 'show', id)).out).toContain(`${id}  active`);
    expect((await run('subs', 'pause', id)).out).toContain('paused');
    expect((await run('subs', 'resume', id)).out).toContain('active');
    expect((await run('subs', 'cancel', id)).out).toContain('canceled');
    // Refused in its state, not for its input: exit 1 (docs/operations.md "Exit codes").
    expect((await run('subs', 'pause', id)).code).toBe(1);
    expect((await run('subs', 'show', 'no-such-id')).code).toBe(2);
    expect((await run('subs', 'list', '--status', 'canceled', '--json')).out).toContain(
      `"id":"${id}"`,
    );

    const bad = await run('subs', 'import', 'test/fixtures/no-such-file.csv');
    expect(bad.code).toBe(2);
    const badCsv = `${process.env.TMPDIR ?? '/tmp'}/subs-bad-${process.pid}.csv`;
    const { writeFile, rm } = await import('node:fs/promises');
    await writeFile(
      badCsv,
      'id,customer_email,card_token,amount,currency,interval,interval_count,anchor,timezone\n' +
        'ok1,a@example.com,tok_x,10,NGN,month,1,2025-01-31T09:00:00Z,UTC\n' +
        'bad 2,a@example.com,tok_secret_9,10.999,XYZ,month,1,2025-01-31,UTC\n',
    );
    try {
      const res = await run('subs', 'import', badCsv);
      expect(res.code).toBe(2);
      expect(res.err).toContain('line 3, column id');
      expect(res.err).toContain('line 3, column amount');
      expect(res.err).toContain('line 3, column currency');
      expect(res.err).toContain('line 3, column anchor');
      expect(res.err).not.toContain('tok_secret_9');
      expect(await h.subs.get('ok1')).toBeUndefined();
    } finally {
      await rm(badCsv, { force: true });
    }
  });
});
