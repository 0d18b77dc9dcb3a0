/**
 * Test clocks end to end (docs/subscriptions.md "Test clocks"): the whole application (api,
 * worker, scheduler and reconciler roles, real time) against the sandbox, driven over HTTP. Five
 * subscriptions live on one test clock in America/New_York — monthly on the 31st, a trial, a card
 * that declines (amount …51), one canceled at its period's end, one paused with a `resume_at` —
 * and the clock is advanced across 14 months in steps, with a pause, a cancel and a change of
 * amount made between them. Each advance runs what falls due through the real queues and the
 * clock reports `ready` once it has settled.
 *
 * The oracle is computed here with luxon, independently of the code under test: every charge the
 * sandbox's ledger holds for these subscriptions is expected (its reference, amount and outcome),
 * each period once, created on its date on the clock (none during the trial or the pause, none
 * after a cancel), and the declined card's retries at their gaps (1, 2, 2 and 2 days).
 */
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { apiCall } from '../support/api-call.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const ZONE = 'America/New_York';
const ny = (iso: string) => DateTime.fromISO(iso, { zone: ZONE });

let sandbox: Sandbox;
let t: TestApp;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker', 'scheduler', 'reconciler'],
    env: {
      DUNNING_SCHEDULE: '1d,3d,5d,7d',
      TRIAL_WILL_END_NOTICE: '3d',
      // The clock waits for a charge whose answer was lost (unknown) to be reconciled; a slow
      // machine should not make one out of every charge.
      SAYSWITCH_TIMEOUT_MS: '5000',
      SUBMIT_LEASE: '15s',
    },
  });
});

afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

const call = (method: string, path: string, body?: unknown) => apiCall(t, method, path, body);

async function advance(clock: string, to: DateTime) {
  const res = await call('POST', `/test-clocks/${clock}/advance`, { to: to.toISO() });
  expect(res.status).toBe(202);
  expect(res.body.status).toBe('advancing');
  const ready = await until(() => call('GET', `/test-clocks/${clock}`), {
    done: (r) => r.body.status === 'ready',
    what: `test clock ${clock} ready at ${to.toISO()}`,
    timeoutMs: 120_000,
    intervalMs: 50,
  });
  expect(ready.body.frozen_time).toBe(to.toUTC().toISO());
}

/** `sub_<id>_<yyyymmdd>` of a local date-time. */
const keyOf = (id: string, at: DateTime) => `sub_${id}_${at.toFormat('yyyyMMdd')}`;

/** Monthly starts from `anchor` (luxon: whole months from the anchor, clamped, wall time kept). */
function monthly(anchor: DateTime, until: DateTime): DateTime[] {
  const out: DateTime[] = [];
  for (let n = 0; ; n++) {
    const at = anchor.plus({ months: n });
    if (at > until) return out;
    out.push(at);
  }
}

interface Expected {
  reference: string;
  amount: number;
  status: 'success' | 'failed';
  /** On the clock: when the charge was created (the period's date, or when it was resumed). */
  createdAt: DateTime;
}

describe('a test clock', () => {
  it('bills 14 months of five subscriptions on their dates, through trial, decline, cancel, pause and change', async () => {
    const start = ny('2025-01-15T12:00:00');
    const end = ny('2026-03-15T12:00:00');
    const created = await call('POST', '/test-clocks', {
      frozen_time: start.toISO(),
      name: 'issue 16',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'ready', frozen_time: start.toUTC().toISO() });
    const clock = created.body.id as string;

    const base = {
      customer_email: 'clock@example.com',
      card_token: 'tok_clock_card_0001',
      currency: 'USD',
      interval: 'month',
      timezone: ZONE,
      test_clock: clock,
    };
    const plans = {
      eom: { ...base, id: 'tc-eom', amount: '49.00', anchor: '2025-01-31T09:00:00-05:00' },
      trial: { ...base, id: 'tc-trial', amount: '20.00', trial_end: '2025-02-10T10:00:00-05:00' },
      declines: {
        ...base,
        id: 'tc-declines',
        amount: '30.51',
        anchor: '2025-02-05T08:00:00-05:00',
      },
      cancels: { ...base, id: 'tc-cancels', amount: '15.00', anchor: '2025-01-20T09:00:00-05:00' },
      pauses: { ...base, id: 'tc-pauses', amount: '12.00', anchor: '2025-01-25T09:00:00-05:00' },
    };
    for (const p of Object.values(plans)) {
      const res = await call('POST', '/subscriptions', p);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.test_clock).toBe(clock);
    }
    // A subscription outside the clock is never touched by it.
    const outside = await call('POST', '/subscriptions', {
      ...base,
      test_clock: undefined,
      id: 'tc-outside',
      amount: '10.00',
      anchor: '2025-01-16T09:00:00-05:00',
    });
    expect(outside.status).toBe(201);

    // Step by step, with the merchant's changes in between.
    await advance(clock, ny('2025-02-01T00:00:00'));
    await advance(clock, ny('2025-03-01T12:00:00'));
    const pauseAt = ny('2025-03-01T12:00:00');
    const resumeAt = ny('2025-06-10T00:00:00');
    const paused = await call('POST', '/subscriptions/tc-pauses/pause', {
      resume_at: resumeAt.toISO(),
    });
    expect(paused.body).toMatchObject({ status: 'paused', resume_at: resumeAt.toUTC().toISO() });
    await advance(clock, ny('2025-04-01T12:00:00'));
    const cancel = await call('POST', '/subscriptions/tc-cancels/cancel', { at_period_end: true });
    expect(cancel.body).toMatchObject({
      status: 'active',
      cancel_at_period_end: true,
      cancel_at: ny('2025-04-20T09:00:00').toUTC().toISO(),
    });
    await advance(clock, ny('2025-06-01T12:00:00'));
    const changedAt = ny('2025-06-01T12:00:00');
    const changed = await call('PATCH', '/subscriptions/tc-trial', { amount: '25.00' });
    expect(changed.body).toMatchObject({ amount_minor: 2500, status: 'active' });
    await advance(clock, ny('2025-08-15T00:00:00'));
    await advance(clock, ny('2025-12-01T00:00:00'));
    await advance(clock, end);

    // The oracle.
    const expected: Expected[] = [];
    const ok = (id: string, at: DateTime, amount: number, createdAt = at): Expected => ({
      reference: `${keyOf(id, at)}_1`,
      amount,
      status: 'success',
      createdAt,
    });
    for (const at of monthly(ny('2025-01-31T09:00:00'), end)) expected.push(ok('tc-eom', at, 4900));
    for (const at of monthly(ny('2025-02-10T10:00:00'), end))
      expected.push(ok('tc-trial', at, at < changedAt ? 2000 : 2500));
    // The declined card: attempt 1 on Feb 5, then a retry 1, 2, 2 and 2 days after each failure.
    const first = ny('2025-02-05T08:00:00');
    [0, 1, 3, 5, 7].forEach((days, i) =>
      expected.push({
        reference: `${keyOf('tc-declines', first)}_${i + 1}`,
        amount: 3051,
        status: 'failed',
        createdAt: first.plus({ days }),
      }),
    );
    // Canceled at the end of the period paid for (Mar 20 – Apr 20): nothing from Apr 20.
    for (const at of monthly(ny('2025-01-20T09:00:00'), ny('2025-04-20T08:59:59')))
      expected.push(ok('tc-cancels', at, 1500));
    // Paused on Mar 1 until Jun 10: the periods before the pause, then the one containing the
    // resume instant (May 25 – Jun 25, billed when it resumes), then each one on its date.
    for (const at of monthly(ny('2025-01-25T09:00:00'), end)) {
      if (at < pauseAt) expected.push(ok('tc-pauses', at, 1200));
      else if (at.plus({ months: 1 }) > resumeAt && at < resumeAt)
        expected.push(ok('tc-pauses', at, 1200, resumeAt));
      else if (at >= resumeAt) expected.push(ok('tc-pauses', at, 1200));
    }

    const count = (id: string) =>
      expected.filter((e) => e.reference.startsWith(`sub_${id}_`)).length;
    // Jan 31 2025 … Feb 28 2026; Feb 10 2025 … Mar 10 2026; five attempts; three; 2 + 1 + 9.
    expect(['tc-eom', 'tc-trial', 'tc-declines', 'tc-cancels', 'tc-pauses'].map(count)).toEqual([
      14, 14, 5, 3, 12,
    ]);
    const ledger = sandbox.ledger();
    const ours = Object.entries(ledger.references)
      // The five on the clock (tc-outside lives on real time: the cron may bill it meanwhile).
      .filter(([ref]) => ref.startsWith('sub_tc-') && !ref.startsWith('sub_tc-outside_'))
      .map(([reference, e]) => ({ reference, amount: e.amount, status: e.status }))
      .sort((a, b) => (a.reference < b.reference ? -1 : 1));
    expect(ours).toEqual(
      expected
        .map(({ reference, amount, status }) => ({ reference, amount, status }))
        .sort((a, b) => (a.reference < b.reference ? -1 : 1)),
    );
    // The subscription outside the clock lives on real time: the clock billed none of its
    // periods (the deployment's own tick may have billed the one containing the real now).
    const realPeriod = DateTime.now().setZone(ZONE).minus({ months: 1 }).toFormat('yyyyMMdd');
    const outsideKeys = await t.app.subscriptions.intentKeys('tc-outside', 100);
    expect(outsideKeys.filter((k) => k.slice(-8) < realPeriod)).toEqual([]);

    // Each charge was created on its date on the clock (attempt n > 1: when its retry ran).
    const wrongDates: string[] = [];
    for (const e of expected) {
      const key = e.reference.replace(/_\d+$/, '');
      const attempt = Number(/_(\d+)$/.exec(e.reference)![1]);
      const at =
        attempt === 1
          ? (await t.app.store.get(key))?.createdAt
          : (await t.app.store.history(key)).find((h) => h.attempt === attempt)?.at;
      if (at !== e.createdAt.toMillis())
        wrongDates.push(
          `${e.reference}: ${at && new Date(at).toISOString()} ≠ ${e.createdAt.toUTC().toISO()}`,
        );
    }
    expect(wrongDates).toEqual([]);

    // Where each subscription ended up, and the lifecycle events (at clock times).
    const view = async (id: string) => (await call('GET', `/subscriptions/${id}`)).body;
    expect(await view('tc-declines')).toMatchObject({
      status: 'canceled',
      cancel_reason: 'dunning_exhausted',
    });
    expect(await view('tc-cancels')).toMatchObject({
      status: 'canceled',
      cancel_reason: 'requested',
      canceled_at: ny('2025-04-20T09:00:00').toUTC().toISO(),
    });
    expect(await view('tc-pauses')).toMatchObject({ status: 'active', resume_at: null });
    expect(await view('tc-trial')).toMatchObject({
      status: 'active',
      trial_end: ny('2025-02-10T10:00:00').toUTC().toISO(),
      amount_minor: 2500,
    });
    const events = await t.app.events.read('-', 1_000_000);
    const of = (type: string, id: string) =>
      events.filter((e) => e.type === type && e.data.subscriptionId === id);
    expect(of('subscription.trial_will_end', 'tc-trial').map((e) => e.at)).toEqual([
      ny('2025-02-07T10:00:00').toMillis(),
    ]);
    expect(of('subscription.paused', 'tc-pauses').map((e) => e.at)).toEqual([pauseAt.toMillis()]);
    expect(of('subscription.resumed', 'tc-pauses')).toEqual([
      expect.objectContaining({
        at: resumeAt.toMillis(),
        data: expect.objectContaining({ scheduled: true }),
      }),
    ]);
    expect(of('subscription.canceled', 'tc-cancels')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ atPeriodEnd: true }) }),
    ]);
    expect(of('subscription.updated', 'tc-cancels')).toHaveLength(1);
    expect(of('subscription.updated', 'tc-trial')).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({ changes: ['amount'], previous: { amount: 2000 } }),
      }),
    ]);
    // The declined card's retries were announced at their gaps.
    const pastDue = of('subscription.past_due', 'tc-declines').map((e) => [
      e.at,
      e.data.retryAt ?? null,
    ]);
    expect(pastDue).toEqual([
      [first.toMillis(), first.plus({ days: 1 }).toMillis()],
      [first.plus({ days: 1 }).toMillis(), first.plus({ days: 3 }).toMillis()],
      [first.plus({ days: 3 }).toMillis(), first.plus({ days: 5 }).toMillis()],
      [first.plus({ days: 5 }).toMillis(), first.plus({ days: 7 }).toMillis()],
    ]);
  });

  it("retry now runs a failed renewal's retry at once at the clock's time, without advancing it", async () => {
    const at = ny('2025-01-15T12:00:00');
    const created = await call('POST', '/test-clocks', { frozen_time: at.toISO() });
    expect(created.status).toBe(201);
    const clock = created.body.id as string;
    const res = await call('POST', '/subscriptions', {
      id: 'tc-retry-now',
      customer_email: 'clock@example.com',
      card_token: 'tok_clock_card_0001',
      currency: 'USD',
      interval: 'month',
      timezone: ZONE,
      test_clock: clock,
      amount: '30.51',
      anchor: '2025-01-20T08:00:00-05:00',
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const failedAt = ny('2025-01-20T09:00:00');
    await advance(clock, failedAt);
    const view = () => call('GET', '/subscriptions/tc-retry-now');
    type Retry = { retry: number; retry_at: string; attempt: number };
    const dunning = (r: { body: Record<string, unknown> }) => r.body.dunning as Retry[];
    expect(dunning(await view())).toEqual([
      expect.objectContaining({
        retry: 1,
        retry_at: failedAt.minus({ hours: 1 }).plus({ days: 1 }).toUTC().toISO(),
      }),
    ]);

    const retried = await call('POST', '/subscriptions/tc-retry-now/retry');
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect(dunning(retried)[0]?.retry_at).toBe(failedAt.toUTC().toISO());
    // Declined again at once (no advance): the next retry keeps its gap after this failure.
    const after = await until(view, {
      done: (r) => dunning(r)[0]?.retry === 2,
      what: 'the retry run now on the clock',
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    expect(dunning(after)[0]?.attempt).toBe(2);
    expect(
      Object.keys(sandbox.ledger().references).filter((r) => r.startsWith('sub_tc-retry-now_')),
    ).toEqual(['sub_tc-retry-now_20250120_1', 'sub_tc-retry-now_20250120_2']);
    expect((await call('GET', `/test-clocks/${clock}`)).body).toMatchObject({
      status: 'ready',
      frozen_time: failedAt.toUTC().toISO(),
    });
  });
});
