/**
 * A payout an operator resolves `succeeded` is watched for a reversal like one the reconciler saw
 * succeed (PAYOUT_WATCH_SCHEDULE): its first watch check is due in the same step as the
 * resolution, so the sweep runs it even if nothing else schedules one. Before, the resolution's
 * transition dropped the payout from the due index and a later reversal was never noticed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { PaymentGateway } from '../../src/kernel/ports.ts';
import { paymentsDeps } from '../../src/app/composition.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { resolveDeps, resolvePayment } from '../../src/payments/resolve.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createTestPayout } from '../support/intents.ts';
import { discrepancyCount } from '../support/metrics-text.ts';
import { quietHandlerContext } from '../support/stub-gateway.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox;
let t: TestApp;
const logLines: string[] = [];

beforeAll(async () => {
  sandbox = await startTestSandbox();
  // No roles: the test drives the store and reads the schedule.
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: [],
    env: { PAYOUT_WATCH_SCHEDULE: '1h,1d', LOG_LEVEL: 'error' },
    logDestination: { write: (line) => void logLines.push(line) },
  });
});

afterAll(async () => {
  await t.close();
  await sandbox.close();
});

/** A payout in `needs_review`, the way the reconciler leaves one it could not settle. */
async function payoutInReview(name: string): Promise<IntentKey> {
  const { store } = t.app;
  const key = await createTestPayout(store, name, 1_000, 4000 as AmountMinor);
  const claimed = await store.transition(key, 'submitting', 2_000, {
    expectAttempt: 1,
    patch: { leaseUntil: 3_000, sentAt: 2_000 },
  });
  expect(claimed.ok).toBe(true);
  for (const to of ['unknown', 'needs_review'] as const)
    expect((await store.transition(key, to, 4_000, { expectAttempt: 1 })).ok).toBe(true);
  return key;
}

/**
 * Resolves `key` as succeeded, as a person would once Sayswitch settled it: through a gateway whose
 * payout lookup agrees (returned, for the checks that follow).
 */
async function resolveAsSettled(key: IntentKey): Promise<PaymentGateway> {
  const succeeded = Object.create(t.app.gateway) as PaymentGateway;
  succeeded.lookupPayout = (reference) => Promise.resolve({ reference, status: 'succeeded' });
  const res = await resolvePayment({ ...resolveDeps(t.app), gateway: succeeded }, key, {
    outcome: 'succeeded',
    note: 'Sayswitch settled it',
    by: 'test',
    force: false,
  });
  expect(res.status).toBe('resolved');
  return succeeded;
}

describe('resolving a payout succeeded', () => {
  it('schedules its first watch check in the same step', async () => {
    const key = await payoutInReview('watch1');
    const gateway = Object.create(t.app.gateway) as PaymentGateway;
    gateway.lookupPayout = (reference) => Promise.resolve({ reference, status: 'succeeded' });
    const now = Date.now();
    const res = await resolvePayment({ ...resolveDeps(t.app), gateway }, key, {
      outcome: 'succeeded',
      note: 'Sayswitch settled it',
      by: 'test',
      force: false,
    });
    expect(res.status).toBe('resolved');
    expect(await t.app.store.dueForReconcile(now + 3_600_000 - 60_000, 100)).not.toContain(key);
    expect(await t.app.store.dueForReconcile(now + 3_600_000 + 60_000, 100)).toContain(key);
    expect((await t.app.store.get(key))?.checks).toBe(0);
  });
});

describe('a watched payout the gateway later calls failed', () => {
  it('stays succeeded (nothing is paid again on it) and every check that hears it logs an error', async () => {
    const key = await payoutInReview('contradicted');
    await resolveAsSettled(key);

    // A reversal told as `failed` (the only failure word Sayswitch documents for payouts).
    const failed = Object.create(t.app.gateway) as PaymentGateway;
    failed.lookupPayout = (reference) =>
      Promise.resolve({ reference, status: 'failed', reason: 'declined' });
    const check = createReconcileHandler({ ...paymentsDeps(t.app), gateway: failed });
    const counted = () => discrepancyCount(t.app.metrics.registry, 'payout_failed_after_success');
    const before = await counted();
    for (let i = 0; i < 2; i++) {
      const intent = await t.app.store.get(key);
      await check({ key, cause: 'schedule', checks: intent?.checks ?? 0 }, quietHandlerContext);
    }
    expect(await t.app.store.get(key)).toMatchObject({ state: 'succeeded', checks: 2 });
    const errors = logLines
      .map((l) => JSON.parse(l) as { level: string; key?: string; msg: string })
      .filter((l) => l.level === 'error' && l.key === key);
    expect(errors.map((l) => l.msg)).toEqual([
      'the gateway now says failed for a payout it said succeeded: check at Sayswitch whether it was reversed',
      'the gateway now says failed for a payout it said succeeded: check at Sayswitch whether it was reversed',
    ]);
    // billing_gateway_discrepancies_total{kind="payout_failed_after_success"}: the alert's metric.
    expect(await counted()).toBe(before + 2);
  });
});

describe('the watch of a succeeded payout', () => {
  it('runs every check of PAYOUT_WATCH_SCHEDULE, each its delay after the one before, then ends', async () => {
    const key = await payoutInReview('watch-steps');
    const succeeded = await resolveAsSettled(key);
    const check = createReconcileHandler({ ...paymentsDeps(t.app), gateway: succeeded });

    // The first check (1h) schedules the second (1d after it): a reversal that day is still seen.
    const before = Date.now();
    const first = (await check({ key, cause: 'schedule', checks: 0 }, quietHandlerContext)) as {
      unchanged: string;
      nextCheckAt: number;
    };
    expect(first).toMatchObject({ unchanged: 'succeeded' });
    expect(first.nextCheckAt).toBeGreaterThanOrEqual(before + 86_400_000);
    expect(first.nextCheckAt).toBeLessThanOrEqual(Date.now() + 86_400_000);
    expect(await t.app.store.get(key)).toMatchObject({ state: 'succeeded', checks: 1 });

    // The second is the last.
    expect(await check({ key, cause: 'schedule', checks: 1 }, quietHandlerContext)).toEqual({
      watched: 'done',
    });
    expect(await t.app.store.get(key)).toMatchObject({ state: 'succeeded', checks: 2 });
  });
});
