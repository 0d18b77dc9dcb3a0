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
  ])('%j → %j', (input, expected) => {
    expect(parseWebhook(body(input))).toEqual(expected);
    expect(parseWebhook(JSON.stringify(input))).toEqual(expected);
  });

  it.each([
    ['not JSON', Buffer.from('{nope')],
    ['empty', Buffer.from('')],
    ['null', body(null)],
    ['array', body([1, 2])],
    ['no notify', body({ data: { reference: 'r' } })],
    ['no data', body({ notify: 'payout' })],
    ['no reference', body({ notify: 'payout', data: { status: 'success' } })],
    ['empty reference', body({ notify: 'payout', data: { reference: '' } })],
    ['numeric reference', body({ notify: 'payout', data: { reference: 12 } })],
    ['unknown notify', body({ notify: 'refund', data: { reference: 'r' } })],
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
          expect(['payout', 'transaction', 'unsupported']).toContain(e.kind);
        },
      ),
    );
  });
});
