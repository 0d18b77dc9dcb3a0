/**
 * Five calls the Redis client runs twice (ioredis resends a command whose reply a dropped
 * connection lost: autoResendUnfulfilledCommands, its default; the cluster client after a
 * failover), so the caller sees only the second run's reply. Each must answer as its first run
 * did and change nothing twice. Before:
 *
 * - a payment's create answered "exists" for the intent it had just created: `POST /payments`
 *   answered 200 (existing) instead of 201 (created);
 * - a reconcile check's record answered "something else moved it": the next scheduled check was
 *   never enqueued, and the payment waited for the sweep;
 * - a test clock's create answered "taken": the service made a second clock and returned that
 *   one, leaving the first an orphan; an advance answered "already advancing" (409) and never
 *   enqueued its first step;
 * - a batch approval answered `already_approved` for the approval that just happened;
 * - a batch cancel counted a row twice in `canceledRows`.
 *
 * Real Redis, no roles (nothing consumes the jobs enqueued).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import { approveBatch, cancelBatch } from '../../src/batches/operations.ts';
import { submitBatch } from '../../src/batches/ingest.ts';
import { ADD_CANCELED_ROW, APPROVE_BATCH } from '../../src/batches/store/batch-lua.ts';
import { RedisBatchStore } from '../../src/batches/store/batch-store.ts';
import type { Dispatcher } from '../../src/infra/queues/dispatcher.ts';
import type { HandlerContext } from '../../src/infra/queues/processor.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { PaymentGateway } from '../../src/kernel/ports.ts';
import { createPayment, createPaymentDeps } from '../../src/payments/create.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { CREATE_INTENT, RECORD_CHECK } from '../../src/payments/store/intent-lua.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { advanceTestClock, createTestClock } from '../../src/subscriptions/clocks-service.ts';
import { subscriptionServiceDeps } from '../../src/subscriptions/service-deps.ts';
import { RedisSubscriptionStore } from '../../src/subscriptions/store/subscription-store.ts';
import { SAVE_CLOCK } from '../../src/subscriptions/store/test-clock-store.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createTestCharge } from '../support/intents.ts';
import { resendingOnce } from '../support/resend.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
  // Loads the scripts, so the proxied EVALSHA finds them.
  for (const s of [CREATE_INTENT, RECORD_CHECK, SAVE_CLOCK, APPROVE_BATCH, ADD_CANCELED_ROW])
    await s.load(t.app.redis);
});
afterAll(async () => {
  await t?.close();
});

const charge = (key: string) => ({
  type: 'charge',
  key,
  email: 'resend@example.com',
  amount: '25.00',
  currency: 'NGN',
  card_token: 'tok_resend_0123456789',
});

const payouts = (tag: string, n: number) =>
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n' +
  Array.from(
    { length: n },
    (_, i) => `${tag}-${i + 1},0123456789,058,GTBank,Ada Obi,10${i}.00,NGN,resend\n`,
  ).join('');

describe('a payment create run twice by one request', () => {
  it('answers created (POST /payments 201), once; another request for the key is existing', async () => {
    const store = new RedisIntentStore(resendingOnce(t.app.redis, CREATE_INTENT), t.prefix);
    const deps = { ...createPaymentDeps(t.app), store };
    const first = await createPayment(deps, charge('resend-create'));
    expect(first.status).toBe('created');
    const key = first.status === 'created' ? first.intent.key : '';
    expect(await t.app.store.history(key)).toHaveLength(1);
    // The same request again, a call of its own: existing, as before.
    const again = await createPayment(deps, charge('resend-create'));
    expect(again.status).toBe('existing');
  });

  it('answers created after a data loss too, with the intent marked afterDataLoss', async () => {
    const store = new RedisIntentStore(resendingOnce(t.app.redis, CREATE_INTENT), t.prefix, {
      dataLossUnacknowledged: () => true,
    });
    const res = await store.create(
      {
        key: 'api_resend-create-lost' as IntentKey,
        type: 'charge',
        origin: 'api',
        amount: 100 as AmountMinor,
        currency: 'NGN',
        payee: { kind: 'charge', email: 'p@example.com', cardTokenSealed: 'sealed' },
      },
      7,
    );
    expect(res.created).toBe(true);
    expect(res.intent.afterDataLoss).toBe(7);
    expect((await t.app.store.get('api_resend-create-lost'))?.afterDataLoss).toBe(7);
  });
});

describe('a reconcile check record run twice by one check', () => {
  it('answers recorded, so the check enqueues the next scheduled check', async () => {
    const key = await createTestCharge(t.app.store, 'resend-check');
    await t.app.store.transition(key, 'submitting', 2, {
      expectAttempt: 1,
      patch: { leaseUntil: 60_000, sentAt: 2 },
    });
    expect((await t.app.store.transition(key, 'unknown', 3, { expectAttempt: 1 })).ok).toBe(true);
    const deps = paymentsDeps(t.app);
    // Not found, inside the grace period: keep checking on the schedule.
    const gateway = Object.create(deps.gateway) as PaymentGateway;
    gateway.verifyCharge = (reference) => Promise.resolve({ status: 'not_found', reference });
    const scheduled: { checks: number; cause: string; delayMs: number }[] = [];
    const dispatcher = Object.create(deps.dispatcher) as Dispatcher;
    dispatcher.reconcile = (intent, opts) => {
      scheduled.push({ checks: intent.checks, cause: opts.cause, delayMs: opts.delayMs });
      return Promise.resolve();
    };
    const store = new RedisIntentStore(resendingOnce(t.app.redis, RECORD_CHECK), t.prefix);
    const check = createReconcileHandler({
      ...deps,
      store,
      gateway,
      dispatcher,
      clock: { now: () => 10 },
    });
    const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const res = (await check({ key, cause: 'schedule', checks: 0 }, {
      log,
    } as unknown as HandlerContext)) as { nextCheckAt: number };
    expect(scheduled).toEqual([{ checks: 1, cause: 'schedule', delayMs: res.nextCheckAt - 10 }]);
    expect((await t.app.store.get(key))?.checks).toBe(1);
  });

  it('still refuses another check of the same count', async () => {
    const key = await createTestCharge(t.app.store, 'resend-check-other');
    await t.app.store.transition(key, 'submitting', 2, { expectAttempt: 1 });
    await t.app.store.transition(key, 'unknown', 3, { expectAttempt: 1 });
    const intent = (await t.app.store.get(key))!;
    expect(await t.app.store.recordCheck(intent, 1, 100)).toBe(true);
    expect(await t.app.store.recordCheck(intent, 1, 100)).toBe(false);
  });
});

describe('a test clock save run twice by one call', () => {
  const resending = () => {
    const subs = new RedisSubscriptionStore(resendingOnce(t.app.redis, SAVE_CLOCK), t.prefix);
    return { ...subscriptionServiceDeps(t.app), subs };
  };

  it('creates one clock and returns it', async () => {
    const clock = await createTestClock(resending(), '2030-01-01T00:00:00Z', 'resend');
    const keys = await t.app.redis.keys(`${t.prefix}:clock:*`);
    expect(keys.filter((k) => /:clock:clock_[0-9a-f]{24}$/.test(k))).toEqual([
      `${t.prefix}:clock:${clock.id}`,
    ]);
    expect(await t.app.subscriptions.clocks.get(clock.id)).toMatchObject({ version: 1 });
  });

  it('answers an advance ok (not already advancing), its first step stored once', async () => {
    const clock = await createTestClock(subscriptionServiceDeps(t.app), '2030-01-01T00:00:00Z');
    const res = await advanceTestClock(resending(), clock.id, '2030-02-01T00:00:00Z');
    expect(res.status).toBe('ok');
    const stored = await t.app.subscriptions.clocks.get(clock.id);
    expect(stored).toMatchObject({ version: 2, clock: { status: 'advancing', seq: 1 } });
  });
});

describe('a batch approval run twice by one call', () => {
  it('answers approved and releases the rows; approving again is already_approved', async () => {
    const up = await submitBatch(t.app, {
      input: payouts('ap', 2),
      type: 'payout',
      id: 'resend-approve',
      approval: 'payouts',
      submittedBy: 'cli:alice',
    });
    expect(up.status).toBe('created');
    expect((await t.app.batches.get('resend-approve'))?.state).toBe('awaiting_approval');
    const batches = new RedisBatchStore(resendingOnce(t.app.redis, APPROVE_BATCH), t.prefix);
    const r = await approveBatch({ ...t.app, batches }, 'resend-approve', 'cli:bob');
    expect(r).toMatchObject({
      status: 'approved',
      batch: { state: 'queued', approvedBy: 'cli:bob' },
    });
    expect(await t.app.store.batchKeys('resend-approve', 0, 10)).toHaveLength(2);
    const again = await approveBatch(t.app, 'resend-approve', 'cli:carol');
    expect(again).toMatchObject({ status: 'already_approved', batch: { approvedBy: 'cli:bob' } });
  });
});

describe('a batch cancel whose count of a row runs twice', () => {
  it('counts every canceled row once', async () => {
    const up = await submitBatch(t.app, {
      input: payouts('cn', 3),
      type: 'payout',
      id: 'resend-cancel',
    });
    expect(up.status).toBe('created');
    // The command that counts a canceled row, whichever it is: HINCRBY before, the script now.
    const redis = resendingOnce(t.app.redis, ADD_CANCELED_ROW, 'hincrby');
    const batches = new RedisBatchStore(redis, t.prefix);
    const r = await cancelBatch({ ...t.app, batches }, 'resend-cancel', 'cli:bob');
    expect(r).toMatchObject({ status: 'canceled', canceledNow: 3, batch: { canceledRows: 3 } });
    const again = await cancelBatch(t.app, 'resend-cancel', 'cli:bob');
    expect(again).toMatchObject({ canceledNow: 0, batch: { canceledRows: 3 } });
  });
});
