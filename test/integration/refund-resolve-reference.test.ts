/**
 * A refund a person resolves with Sayswitch's agreement (docs/operations.md "Resolving
 * needs_review") keeps the `RF_…` reference the lookup found, as the reconciler's adoption does
 * (apply-outcome.ts). The charge's later refunds are matched among its refunds by the references
 * their siblings recorded (payments/refunds/match.ts): a resolved sibling without one made every
 * later refund whose answer was lost ambiguous for good (`needs_review`, a person each time), even
 * with the list naming every refund. Real Redis; the gateway's list is stubbed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import type { HandlerContext } from '../../src/infra/queues/processor.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { GatewayRefund, PaymentGateway } from '../../src/kernel/ports.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { resolveDeps, resolvePayment } from '../../src/payments/resolve.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createTestCharge, moveTestIntent, reserveTestRefund } from '../support/intents.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
});
afterAll(async () => {
  await t?.close();
});

const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

const move = (
  key: string,
  to: Parameters<TestApp['app']['store']['transition']>[1],
  at: number,
  patch: Record<string, unknown> = {},
) => moveTestIntent(t.app.store, key, to, at, patch);

const reserve = (chargeKey: string, amount: number, now: number) =>
  reserveTestRefund(t.app.refunds, chargeKey, amount, now);

/** The app's gateway, listing `list` as the transaction's refunds. */
function listing(list: GatewayRefund[]): PaymentGateway {
  const gateway = Object.create(paymentsDeps(t.app).gateway) as PaymentGateway;
  gateway.refundsOf = () => Promise.resolve(list);
  return gateway;
}

describe('a refund resolved with Sayswitch agreeing', () => {
  it('records the RF_ reference found, so the next refund of the charge can be matched', async () => {
    const chargeKey = await createTestCharge(t.app.store, 'rf-resolved-ref');
    await move(chargeKey, 'submitting', 2, { leaseUntil: 60_000, sentAt: 2 });
    const charge = await move(chargeKey, 'succeeded', 3);
    const item = (rf: string): GatewayRefund => ({
      gatewayReference: rf,
      transactionReference: charge.reference,
      amount: 500 as AmountMinor,
      status: 'succeeded',
    });

    // Refund 1: its answer lost, its checks ran out; Sayswitch lists it (RF_A) as succeeded.
    const rf1 = await reserve(chargeKey, 500, 10);
    await move(rf1.key, 'submitting', 11, { leaseUntil: 60_000, sentAt: 11 });
    await move(rf1.key, 'unknown', 12);
    await move(rf1.key, 'needs_review', 13);
    const resolved = await resolvePayment(
      { ...resolveDeps(t.app), gateway: listing([item('RF_A')]) },
      rf1.key,
      { outcome: 'succeeded', note: 'Sayswitch shows it', force: false, by: 'test' },
    );
    expect(resolved).toMatchObject({ status: 'resolved', gateway: 'succeeded', forced: false });
    expect((await t.app.store.get(rf1.key))?.gatewayReference).toBe('RF_A');

    // Refund 2: its answer lost too; the list names both refunds. RF_B is the one nobody claims.
    const rf2 = await reserve(chargeKey, 500, 20);
    await move(rf2.key, 'submitting', 21, { leaseUntil: 60_000, sentAt: 21 });
    await move(rf2.key, 'unknown', 22);
    const deps = paymentsDeps(t.app);
    const check = createReconcileHandler({
      ...deps,
      gateway: listing([item('RF_A'), item('RF_B')]),
      clock: { now: () => 30 },
    });
    await check({ key: rf2.key, cause: 'schedule', checks: 0 }, {
      log,
    } as unknown as HandlerContext);
    expect(await t.app.store.get(rf2.key)).toMatchObject({
      state: 'succeeded',
      gatewayReference: 'RF_B',
    });
  });
});
