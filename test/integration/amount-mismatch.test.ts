/**
 * The gateway recorded another amount than the one we sent (sayswitch-api.md §6.1: what its
 * amounts mean is not documented). Its success is final, so it stands and nothing is sent again;
 * an error line tells a person to compare. A charge is compared by `requested_amount` only: its
 * `amount` is the total charged, fee included, which would read as a mismatch on every charge.
 * Real HTTP to a stub gateway, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { unresolvedTestCharge } from '../support/intents.ts';
import { discrepancyCount } from '../support/metrics-text.ts';
import {
  quietHandlerContext,
  referenceOf,
  startStubGateway,
  type StubGateway,
} from '../support/stub-gateway.ts';

/** The `data` the stub's verify answers, besides the reference (NGN 10.00 is ours). */
let data: Record<string, unknown> = {};
let gateway: StubGateway;
let t: TestApp;
const lines: string[] = [];

beforeAll(async () => {
  gateway = await startStubGateway((path) => ({
    status: 200,
    body: {
      success: true,
      message: 'Verification successful',
      data: { reference: referenceOf(path), currency: 'NGN', status: 'success', ...data },
    },
  }));
  t = await startTestApp({
    sandboxUrl: gateway.url,
    roles: [],
    env: { LOG_LEVEL: 'info' },
    logDestination: { write: (line) => void lines.push(line) },
  });
});
afterAll(async () => {
  await t?.close();
  await gateway?.close();
});

const ctx = quietHandlerContext;

const MISMATCH = 'the gateway recorded another amount than ours: check the payment at Sayswitch';

function mismatchLines(key: string): Record<string, unknown>[] {
  return lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === MISMATCH && l.key === key);
}

describe('a success for another amount than ours', () => {
  it('stands (final, nothing sent again), with an error line naming both amounts and a count', async () => {
    data = { requested_amount: '100.00', amount: '101.50', fees: '1.50' };
    const key = await unresolvedTestCharge(t.app.store, 'amount-other');
    const before = await discrepancyCount(t.app.metrics.registry, 'amount_mismatch');
    await createReconcileHandler(paymentsDeps(t.app))({ key, cause: 'webhook' }, ctx);
    // billing_gateway_discrepancies_total{kind="amount_mismatch"}: the alert's metric.
    expect(await discrepancyCount(t.app.metrics.registry, 'amount_mismatch')).toBe(before + 1);
    expect(await t.app.store.get(key)).toMatchObject({ state: 'succeeded', attempt: 1 });
    expect(mismatchLines(key)).toEqual([
      expect.objectContaining({
        level: 'error',
        reference: `${key}_1`,
        ours: 1000,
        theirs: 10000,
        currency: 'NGN',
      }),
    ]);
  });

  it('ours, with the fee on top of the total: no line (amount is not requested_amount)', async () => {
    data = { requested_amount: '10.00', amount: '10.15', fees: '0.15' };
    const key = await unresolvedTestCharge(t.app.store, 'amount-same');
    const before = await discrepancyCount(t.app.metrics.registry, 'amount_mismatch');
    await createReconcileHandler(paymentsDeps(t.app))({ key, cause: 'webhook' }, ctx);
    expect(await t.app.store.get(key)).toMatchObject({ state: 'succeeded', fee: 15 });
    expect(mismatchLines(key)).toEqual([]);
    expect(await discrepancyCount(t.app.metrics.registry, 'amount_mismatch')).toBe(before);
  });

  it('no requested_amount: nothing to compare, no line', async () => {
    data = { amount: '10.15', fees: '0.15' };
    const key = await unresolvedTestCharge(t.app.store, 'amount-total-only');
    await createReconcileHandler(paymentsDeps(t.app))({ key, cause: 'webhook' }, ctx);
    expect(await t.app.store.get(key)).toMatchObject({ state: 'succeeded' });
    expect(mismatchLines(key)).toEqual([]);
  });
});
