/**
 * The refund rules that keep a refund from giving money back twice, each at the smallest scale
 * that shows it (docs/refunds.md "Never more than charged", "Exactly once at the gateway"):
 *
 * - a refund in `needs_review` keeps its amount reserved and the charge's refund slot, until a
 *   person decides (only `failed`, the gateway's word, releases them);
 * - the lookup of a refund whose answer was lost (payments/refunds/lookup.ts) weighs the charge's
 *   other refunds that were sent: one that never recorded its `RF_…` may be the one listed, a
 *   `failed` one too, and one never sent cannot be.
 *
 * Real Redis (the store's Lua scripts); the gateway's refund list is stubbed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { GatewayRefund, PaymentGateway, RefundRequest } from '../../src/kernel/ports.ts';
import { OutcomeUnknownError } from '../../src/kernel/errors.ts';
import { lookupRefund } from '../../src/payments/refunds/lookup.ts';
import { submitRefund } from '../../src/payments/refunds/submit.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createTestCharge, moveTestIntent, reserveTestRefund } from '../support/intents.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
});
afterAll(async () => {
  await t?.close();
});

const move = (key: string, to: Parameters<TestApp['app']['store']['transition']>[1], at: number) =>
  moveTestIntent(
    t.app.store,
    key,
    to,
    at,
    to === 'submitting' ? { leaseUntil: at + 60_000, sentAt: at } : {},
  );

const reserve = (chargeKey: string, amount: number, now: number) =>
  reserveTestRefund(t.app.refunds, chargeKey, amount, now);

/** A succeeded 10.00 charge `api_<name>`, with its reference. */
async function succeededCharge(name: string) {
  const key = await createTestCharge(t.app.store, name);
  await move(key, 'submitting', 2);
  return move(key, 'succeeded', 3);
}

/** Moves a queued refund through a submission whose answer was lost, to `to`. */
async function unresolved(key: string, at: number, to: 'unknown' | 'needs_review') {
  await move(key, 'submitting', at);
  await move(key, 'unknown', at + 1);
  if (to === 'needs_review') await move(key, 'needs_review', at + 2);
}

describe('a refund in needs_review holds what it may have given back', () => {
  it('keeps its amount reserved: the rest of the charge only', async () => {
    const charge = await succeededCharge('rf-rules-reserve');
    const rf1 = await reserve(charge.key, 600, 10);
    await unresolved(rf1.key, 11, 'needs_review');

    const again = await t.app.refunds.reserve({
      chargeKey: charge.key,
      amount: 500 as AmountMinor,
      requestHash: 'h-again',
      requestedBy: 'test',
      now: 20,
    });
    expect(again).toMatchObject({ status: 'exceeds', reservedMinor: 600, requestedMinor: 500 });
    // What is left is refundable; a `failed` refund (the gateway's word) would release its part.
    expect((await reserve(charge.key, 400, 21)).amount).toBe(400);
  });

  it("keeps the charge's refund slot: the next refund waits", async () => {
    const charge = await succeededCharge('rf-rules-slot');
    const rf1 = await reserve(charge.key, 500, 10);
    const rf2 = await reserve(charge.key, 500, 11);
    expect(await t.app.refunds.takeSlot(charge.key, rf1.key)).toEqual({ ok: true });
    await unresolved(rf1.key, 12, 'needs_review');

    expect(await t.app.refunds.takeSlot(charge.key, rf2.key)).toEqual({
      ok: false,
      holder: rf1.key,
      state: 'needs_review',
    });
  });
});

describe("a lost refund's lookup weighs the charge's other sent refunds", () => {
  /** The app's gateway, listing `list` as the transaction's refunds. */
  function listing(list: GatewayRefund[]): PaymentGateway {
    const gateway = Object.create(paymentsDeps(t.app).gateway) as PaymentGateway;
    gateway.refundsOf = () => Promise.resolve(list);
    return gateway;
  }
  const item = (rf: string, reference: string, status: GatewayRefund['status']): GatewayRefund => ({
    gatewayReference: rf,
    transactionReference: reference,
    amount: 500 as AmountMinor,
    status,
  });
  const lookup = async (key: string, list: GatewayRefund[]) => {
    const intent = await t.app.store.get(key);
    if (!intent) throw new Error(`${key} missing`);
    return lookupRefund({ gateway: listing(list), refunds: t.app.refunds }, intent);
  };

  it('a sibling that succeeded without its RF_ may be the one listed: never adopted', async () => {
    const charge = await succeededCharge('rf-rules-sibling-unknown-rf');
    // Refund 1 went through without Sayswitch's reference recorded (resolved by a person before
    // the reference was kept): the one refund listed may be it.
    const rf1 = await reserve(charge.key, 500, 10);
    await unresolved(rf1.key, 11, 'needs_review');
    await move(rf1.key, 'succeeded', 14);
    const rf2 = await reserve(charge.key, 500, 20);
    await unresolved(rf2.key, 21, 'unknown');

    expect(await lookup(rf2.key, [item('RF_X', charge.reference, 'succeeded')])).toEqual({
      status: 'pending',
      reference: rf2.reference,
      message: 'another refund of the charge has no Sayswitch reference recorded',
    });
  });

  it('a failed sibling without its RF_ may be the failed one listed: never failed on it', async () => {
    const charge = await succeededCharge('rf-rules-sibling-failed');
    const rf1 = await reserve(charge.key, 500, 10);
    await unresolved(rf1.key, 11, 'needs_review');
    await move(rf1.key, 'failed', 14);
    const rf2 = await reserve(charge.key, 500, 20);
    await unresolved(rf2.key, 21, 'unknown');

    // Adopting it would fail refund 2 and make its 500 refundable again while it may have landed.
    expect(await lookup(rf2.key, [item('RF_X', charge.reference, 'failed')])).toMatchObject({
      status: 'pending',
      message: 'a failed refund is listed and another failed refund of the charge could be it',
    });
  });

  it('a sibling never sent (waiting for the slot) cannot be the one listed', async () => {
    const charge = await succeededCharge('rf-rules-sibling-unsent');
    const rf1 = await reserve(charge.key, 500, 10);
    await unresolved(rf1.key, 11, 'unknown');
    await reserve(charge.key, 500, 20); // queued behind refund 1's slot, never sent

    expect(await lookup(rf1.key, [item('RF_X', charge.reference, 'succeeded')])).toMatchObject({
      status: 'succeeded',
      reference: rf1.reference,
      gatewayReference: 'RF_X',
    });
  });
});

describe("a refund's own answer", () => {
  it('naming the RF_ a sibling recorded is about that refund: unknown, never adopted', async () => {
    const charge = await succeededCharge('rf-rules-answer-sibling');
    const rf1 = await reserve(charge.key, 500, 10);
    await move(rf1.key, 'submitting', 11);
    await moveTestIntent(t.app.store, rf1.key, 'succeeded', 12, { gatewayReference: 'RF_A' });
    const rf2 = await reserve(charge.key, 500, 20);
    const gateway = Object.create(paymentsDeps(t.app).gateway) as PaymentGateway;
    gateway.refund = () =>
      Promise.resolve({
        gatewayReference: 'RF_A',
        amount: 500 as AmountMinor,
        status: 'succeeded',
      });

    await expect(submitRefund({ gateway, refunds: t.app.refunds }, rf2)).rejects.toThrow(
      OutcomeUnknownError,
    );
    await expect(submitRefund({ gateway, refunds: t.app.refunds }, rf2)).rejects.toMatchObject({
      code: 'refund_answer_not_ours',
    });
  });

  it('asks for the whole charge without an amount (the documented request), a part with one', async () => {
    const charge = await succeededCharge('rf-rules-amount-sent');
    const asked: RefundRequest[] = [];
    const gateway = Object.create(paymentsDeps(t.app).gateway) as PaymentGateway;
    gateway.refund = (req) => {
      asked.push(req);
      return Promise.resolve({ status: 'pending' });
    };
    const whole = await reserve(charge.key, 1000, 10);
    await submitRefund({ gateway, refunds: t.app.refunds }, whole);
    expect(asked[0]).not.toHaveProperty('amount');

    const other = await succeededCharge('rf-rules-amount-sent-part');
    const part = await reserve(other.key, 400, 20);
    await submitRefund({ gateway, refunds: t.app.refunds }, part);
    expect(asked[1]).toMatchObject({ amount: 400, transactionReference: other.reference });
  });
});
