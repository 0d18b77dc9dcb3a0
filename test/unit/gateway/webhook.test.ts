import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseWebhook } from '../../../src/infra/gateway/sayswitch/webhook.ts';

const body = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('parseWebhook', () => {
  it.each([
    [
      { notify: 'payout', notifyType: 'successful', data: { reference: 'r1', status: 'success' } },
      { kind: 'payout', reference: 'r1', status: 'succeeded' },
    ],
    [
      { notify: 'payout', notifyType: 'failed', data: { reference: 'r2', status: 'failed' } },
      { kind: 'payout', reference: 'r2', status: 'failed' },
    ],
    [
      {
        notify: 'payout',
        notifyType: 'reversed',
        data: { reference: 'r3', status: 'reversed', amount: '100', fee: '10' },
      },
      { kind: 'payout', reference: 'r3', status: 'reversed' },
    ],
    [
      {
        notify: 'transaction',
        notifyType: 'successful',
        data: { reference: 'c1', status: 'success', amount: 1500 },
      },
      { kind: 'transaction', reference: 'c1', status: 'succeeded' },
    ],
    [
      { notify: 'transaction', notifyType: 'failed', data: { reference: 'c2', status: 'failed' } },
      { kind: 'transaction', reference: 'c2', status: 'failed' },
    ],
    // notifyType is the fallback when data.status is missing
    [
      { notify: 'payout', notifyType: 'successful', data: { reference: 'r4' } },
      { kind: 'payout', reference: 'r4', status: 'succeeded' },
    ],
    // an unknown status word is non-final
    [
      { notify: 'payout', notifyType: 'weird', data: { reference: 'r5', status: 'on_hold' } },
      { kind: 'payout', reference: 'r5', status: 'pending' },
    ],
    // data.status wins over notifyType
    [
      { notify: 'payout', notifyType: 'successful', data: { reference: 'r6', status: 'failed' } },
      { kind: 'payout', reference: 'r6', status: 'failed' },
    ],
    // both spellings of cancelled are a failure (the verify that follows gives the reason)
    [
      {
        notify: 'payout',
        notifyType: 'successful',
        data: { reference: 'r8', status: 'Cancelled' },
      },
      { kind: 'payout', reference: 'r8', status: 'failed' },
    ],
    [
      { notify: 'transaction', data: { reference: 'c3', status: 'canceled' } },
      { kind: 'transaction', reference: 'c3', status: 'failed' },
    ],
    // a known non-final word in data.status still wins over notifyType
    [
      {
        notify: 'payout',
        notifyType: 'successful',
        data: { reference: 'r9', status: 'processing' },
      },
      { kind: 'payout', reference: 'r9', status: 'pending' },
    ],
    // an unparsable amount does not hide the reference
    [
      { notify: 'payout', data: { reference: 'r7', status: 'success', amount: 'lots' } },
      { kind: 'payout', reference: 'r7', status: 'succeeded' },
    ],
    // the documented collection sample (`type: payment.success`; sandbox `documented`)
    [
      {
        id: 'evt_sandbox_1',
        type: 'payment.success',
        created: '2026-02-27T10:00:00.000Z',
        data: {
          reference: 'api_k_1',
          amount: 10.12,
          currency: 'NGN',
          status: 'success',
          customer: { email: 'payer@example.com' },
        },
      },
      { kind: 'transaction', reference: 'api_k_1', status: 'succeeded' },
    ],
    [
      { id: 'evt_2', type: 'payment.failed', data: { reference: 'api_k_2', status: 'failed' } },
      { kind: 'transaction', reference: 'api_k_2', status: 'failed' },
    ],
    // the type's suffix is the status when data has none
    [
      { type: 'payment.failed', data: { reference: 'api_k_3' } },
      { kind: 'transaction', reference: 'api_k_3', status: 'failed' },
    ],
    [
      { type: 'payment.pending', data: { reference: 'api_k_4' } },
      { kind: 'transaction', reference: 'api_k_4', status: 'pending' },
    ],
    // the old template's transfer events are payouts; `event` works like `type`
    [
      { event: 'transfer.success', data: { reference: 'bat_b_1_1' } },
      { kind: 'payout', reference: 'bat_b_1_1', status: 'succeeded' },
    ],
    // a shape we do not know that names a reference still yields it, to be verified
    [
      { data: { reference: 'r10', status: 'success' } },
      { kind: 'unclassified', reference: 'r10', status: 'succeeded' },
    ],
    [
      { notify: 'refund', data: { reference: 'r11' } },
      { kind: 'unclassified', reference: 'r11', status: 'pending' },
    ],
    [
      { reference: 'api_top_1', state: 'whatever' },
      { kind: 'unclassified', reference: 'api_top_1', status: 'pending' },
    ],
    // of several references, ours (kernel/ids.ts) is the one
    [
      {
        type: 'refund.processed',
        data: { reference: 'RF_123', transaction: { transaction_reference: 'sub_s1_20260101_1' } },
      },
      { kind: 'unclassified', reference: 'sub_s1_20260101_1', status: 'pending' },
    ],
    [
      { notify: 'transaction', data: { status: 'success', meta: { tx_ref: 'api_deep_1' } } },
      { kind: 'transaction', reference: 'api_deep_1', status: 'succeeded' },
    ],
  ])('%j → %j', (input, expected) => {
    expect(parseWebhook(body(input))).toEqual(expected);
    expect(parseWebhook(JSON.stringify(input))).toEqual(expected);
  });

  it.each([
    ['not JSON', Buffer.from('{nope')],
    ['empty', Buffer.from('')],
    ['null', body(null)],
    ['array', body([1, 2])],
    ['string', body('api_x_1')],
    ['no data', body({ notify: 'payout' })],
    ['no reference', body({ notify: 'payout', data: { status: 'success' } })],
    ['empty reference', body({ notify: 'payout', data: { reference: '' } })],
    ['numeric reference', body({ notify: 'payout', data: { reference: 12 } })],
    ['documented shape without reference', body({ type: 'payment.success', data: { amount: 1 } })],
    ['reference too deep', body({ a: { b: { c: { reference: 'api_x_1' } } } })],
  ])('%s → unsupported', (_name, raw) => {
    expect(parseWebhook(raw).kind).toBe('unsupported');
  });

  it('never throws on arbitrary bytes or JSON', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array().map((a) => Buffer.from(a)),
          fc.jsonValue().map((v) => body(v)),
        ),
        (raw) => {
          const e = parseWebhook(raw);
          expect(['payout', 'transaction', 'unclassified', 'unsupported']).toContain(e.kind);
        },
      ),
    );
  });
});
