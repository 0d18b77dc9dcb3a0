/**
 * A refund whose answer was lost is looked for among its charge's refunds (docs/refunds.md,
 * payments/refunds/match.ts). A listed refund the list does not attribute proves nothing about
 * ours. Real Redis; the gateway's list is stubbed.
 *
 * - The items need not say their Sayswitch reference (`RF_…`: the adapter reads it when present,
 *   schemas.ts). An item without one cannot be told apart from a refund of the charge that
 *   recorded its reference, unless that reference is listed too: when the only item is such a
 *   sibling's refund (here a `failed` one) and ours has not reached the list yet, adopting it
 *   ended our refund `failed` by inference, its amount refundable again while its request may
 *   have landed.
 * - What Sayswitch puts in an item's `merchant_reference` is undocumented. One that is neither
 *   our reference nor another refund's of the charge (here the charge's own reference) ruled the
 *   item out as ours: the list read "not found" and, after the grace, the refund was sent again —
 *   a second refund of the same money if that item was ours.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import type { HandlerContext } from '../../src/infra/queues/processor.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { GatewayRefund, PaymentGateway } from '../../src/kernel/ports.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { chargeRefunds } from '../../src/payments/refunds/view.ts';
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

const deps = () => paymentsDeps(t.app);

/** The app's gateway, listing `list` as the transaction's refunds. */
function listing(list: GatewayRefund[]): PaymentGateway {
  const gateway = Object.create(deps().gateway) as PaymentGateway;
  gateway.refundsOf = () => Promise.resolve(list);
  return gateway;
}

/** A succeeded charge of 1000. */
async function succeededCharge(name: string) {
  const chargeKey = await createTestCharge(t.app.store, name);
  await move(chargeKey, 'submitting', 2, { leaseUntil: 60_000, sentAt: 2 });
  return move(chargeKey, 'succeeded', 3);
}

const move = (
  key: string,
  to: Parameters<TestApp['app']['store']['transition']>[1],
  at: number,
  patch: Record<string, unknown> = {},
) => moveTestIntent(t.app.store, key, to, at, patch);

const reserve = (chargeKey: string, amount: number, now: number) =>
  reserveTestRefund(t.app.refunds, chargeKey, amount, now);

describe('a listed refund without its Sayswitch reference', () => {
  it('is not adopted as ours while a sibling that recorded its reference could be it', async () => {
    const charge = await succeededCharge('rf-unref');
    const chargeKey = charge.key;

    // Refund 1 of 500: sent, Sayswitch answered `failed` with its reference RF_A.
    const rf1 = await reserve(chargeKey, 500, 10);
    await move(rf1.key, 'submitting', 11, { leaseUntil: 60_000, sentAt: 11 });
    await move(rf1.key, 'failed', 12, { gatewayReference: 'RF_A', reason: 'gateway_rejected' });

    // Refund 2 of 500: sent, its answer lost (unknown).
    const rf2 = await reserve(chargeKey, 500, 20);
    await move(rf2.key, 'submitting', 21, { leaseUntil: 60_000, sentAt: 21 });
    await move(rf2.key, 'unknown', 22);

    // Sayswitch lists the transaction's one refund it shows yet, without its RF_ reference: by its
    // amount and status it is refund 1's (ours may not have reached the list).
    const listed: GatewayRefund = {
      transactionReference: charge.reference,
      amount: 500 as AmountMinor,
      status: 'failed',
    };
    const check = createReconcileHandler({
      ...deps(),
      gateway: listing([listed]),
      clock: { now: () => 30 },
    });
    await check({ key: rf2.key, cause: 'schedule', checks: 0 }, {
      log,
    } as unknown as HandlerContext);

    // Not failed: nothing says refund 2 moved nothing, so its 500 stays reserved.
    const after = await t.app.store.get(rf2.key);
    expect(after?.state).not.toBe('failed');
    const view = await chargeRefunds({ store: t.app.store, refunds: t.app.refunds }, chargeKey);
    expect(view?.refundableMinor).toBe(500);
    const again = await t.app.refunds.reserve({
      chargeKey,
      amount: 1000 as AmountMinor,
      requestHash: 'h-again',
      requestedBy: 'test',
      now: 40,
    });
    expect(again.status).toBe('exceeds');
  });
});

describe("a listed refund whose merchant_reference is neither ours nor a sibling's", () => {
  it('does not prove ours unsent: never sent again', async () => {
    const charge = await succeededCharge('rf-foreign-mref');
    // Refund 1, the charge's only one: sent at 11, its answer lost (unknown).
    const rf1 = await reserve(charge.key, 500, 10);
    await move(rf1.key, 'submitting', 11, { leaseUntil: 60_000, sentAt: 11 });
    await move(rf1.key, 'unknown', 12);

    // The transaction's one refund, carrying the charge's reference as merchant_reference.
    const listed: GatewayRefund = {
      gatewayReference: 'RF_X',
      transactionReference: charge.reference,
      merchantReference: charge.reference,
      amount: 500 as AmountMinor,
      status: 'succeeded',
    };
    // Long past the not-found grace, with resubmissions left.
    const later = 11 + deps().policy.notFoundGraceMs + 1;
    const check = createReconcileHandler({
      ...deps(),
      gateway: listing([listed]),
      clock: { now: () => later },
    });
    await check({ key: rf1.key, cause: 'schedule', checks: 0 }, {
      log,
    } as unknown as HandlerContext);

    const after = await t.app.store.get(rf1.key);
    expect(after?.unsentResubmits).toBe(0);
    expect(after?.state).not.toBe('queued');
  });
});
