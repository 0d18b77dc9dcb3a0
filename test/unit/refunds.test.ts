/** The pure rules of refunds (docs/refunds.md): keys, matching, totals, outcomes, events. */
import { describe, expect, it } from 'vitest';
import { refundEventFor } from '../../src/kernel/events.ts';
import {
  MAX_REFUNDS_PER_CHARGE,
  apiIntentKey,
  batchIntentKey,
  intentKeySchema,
  attemptReference,
  parseRefundKey,
  parseRefundReference,
  refundIntentKey,
} from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { GatewayRefund } from '../../src/kernel/ports.ts';
import { matchRefund, type OwnRefund } from '../../src/payments/refunds/match.ts';
import { ownRefundOutcome } from '../../src/payments/refunds/outcome.ts';
import { refundTotals } from '../../src/payments/refunds/view.ts';

const m = (n: number) => n as AmountMinor;

describe('refund keys', () => {
  it('rf<n>_<chargeKey>, parsed back, valid in job payloads', () => {
    const key = refundIntentKey('api_order-1', 3);
    expect(key).toBe('rf3_api_order-1');
    expect(parseRefundKey(key)).toEqual({ chargeKey: 'api_order-1', n: 3 });
    expect(intentKeySchema.parse(key)).toBe(key);
    expect(parseRefundKey('api_order-1')).toBeUndefined();
    // A caller's key can never be a refund's: charge keys start sub_, bat_ or api_.
    expect(parseRefundKey(apiIntentKey('rf1_api_x'))).toBeUndefined();
  });

  it("a refund's attempt reference parses back to its charge, number and attempt", () => {
    const key = refundIntentKey('api_order_1', 12);
    expect(parseRefundReference(attemptReference(key, 3))).toEqual({
      chargeKey: 'api_order_1',
      n: 12,
      attempt: 3,
    });
    expect(parseRefundReference('api_order_1_3')).toBeUndefined();
    expect(parseRefundReference('rf12_api_order')).toBeUndefined();
    expect(parseRefundReference(`rf1_api_${'x'.repeat(60)}_1`)).toBeUndefined();
  });

  it('the longest charge key still gives a reference Sayswitch accepts (64)', () => {
    const longest = batchIntentKey('b'.repeat(20), 'r'.repeat(32));
    const key = refundIntentKey(longest, MAX_REFUNDS_PER_CHARGE);
    expect(`${key}_1`.length).toBeLessThanOrEqual(64);
  });

  it.each([0, MAX_REFUNDS_PER_CHARGE + 1, 1.5])('refuses refund number %s', (n) => {
    expect(() => refundIntentKey('api_x', n)).toThrow(RangeError);
  });
});

describe('matchRefund', () => {
  const own = (over: Partial<OwnRefund> = {}): OwnRefund => ({
    reference: 'rf2_api_x_1',
    amount: 500,
    othersAllKnown: true,
    othersFailedUnknown: 0,
    othersGatewayReferences: new Set(['RF_1']),
    ...over,
  });
  const listed = (gatewayReference: string, extra: Partial<GatewayRefund> = {}): GatewayRefund => ({
    gatewayReference,
    status: 'succeeded',
    amount: m(500),
    ...extra,
  });

  it.each<[string, GatewayRefund[], Partial<OwnRefund>, unknown]>([
    ['nothing listed: not found', [], {}, { found: undefined }],
    ['only refunds others recorded: not found', [listed('RF_1')], {}, { found: undefined }],
    ['one unclaimed: ours', [listed('RF_1'), listed('RF_2')], {}, { found: listed('RF_2') }],
    [
      'two unclaimed: ambiguous',
      [listed('RF_2'), listed('RF_3')],
      {},
      { ambiguous: '2 refunds of the transaction could be ours' },
    ],
    [
      'unclaimed of another amount: ambiguous',
      [listed('RF_2', { amount: m(10_000) })],
      {},
      { ambiguous: 'the only unclaimed refund is of 10000, ours is of 500' },
    ],
    [
      'another refund without its reference: ambiguous',
      [listed('RF_2')],
      { othersAllKnown: false },
      { ambiguous: 'another refund of the charge has no Sayswitch reference recorded' },
    ],
    [
      'a failed listing while a failed sibling is unattributed: ambiguous',
      [listed('RF_2', { status: 'failed' })],
      { othersFailedUnknown: 1 },
      {
        ambiguous: 'a failed refund is listed and another failed refund of the charge could be it',
      },
    ],
    [
      'our merchant_reference echoed wins over everything',
      [listed('RF_2'), listed('RF_3', { merchantReference: 'rf2_api_x_1' })],
      { othersAllKnown: false },
      { found: listed('RF_3', { merchantReference: 'rf2_api_x_1' }) },
    ],
    [
      'listed without its RF_ while a recorded RF_ is not listed: ambiguous (it may be that one)',
      [{ status: 'failed', amount: m(500) }],
      {},
      {
        ambiguous: 'a refund is listed without its Sayswitch reference and could be another one',
      },
    ],
    [
      'listed without its RF_ beside every recorded RF_: ours',
      [listed('RF_1'), { status: 'succeeded', amount: m(500) }],
      {},
      { found: { status: 'succeeded', amount: m(500) } },
    ],
    [
      "a merchant_reference neither ours nor a sibling's: ambiguous, never not found",
      [listed('RF_2', { merchantReference: 'api_x_1' })],
      {},
      {
        ambiguous:
          "a refund is listed with merchant_reference api_x_1, neither ours nor another refund's of the charge",
      },
    ],
    [
      "another caller's merchant_reference is not ours",
      [listed('RF_2', { merchantReference: 'rf1_api_x_1' })],
      {},
      { found: undefined },
    ],
  ])('%s', (_what, list, over, expected) => {
    expect(matchRefund(list, own(over))).toEqual(expected);
  });
});

describe('refund outcomes, totals and events', () => {
  it('a refund shown with another amount than ours is never adopted as final', () => {
    const intent = { reference: 'rf1_api_x_1', amount: 300 };
    expect(ownRefundOutcome(intent, { status: 'succeeded', amount: m(10_000) })).toMatchObject({
      status: 'pending',
      message: 'Sayswitch shows the refund for 10000, ours is for 300',
    });
    expect(
      ownRefundOutcome(intent, { status: 'succeeded', amount: m(300), gatewayReference: 'RF_9' }),
    ).toEqual({
      status: 'succeeded',
      reference: 'rf1_api_x_1',
      gatewayReference: 'RF_9',
      amount: m(300),
    });
    expect(ownRefundOutcome(intent, { status: 'failed' })).toMatchObject({
      status: 'failed',
      reason: 'gateway_rejected',
    });
  });

  it('totals: failed refunds release their amount; in-flight ones hold it', () => {
    expect(
      refundTotals(1000, [
        { state: 'succeeded', amount: m(300) },
        { state: 'failed', amount: m(500) },
        { state: 'pending', amount: m(200) },
      ]),
    ).toEqual({
      refundedMinor: 300,
      inFlightMinor: 200,
      refundableMinor: 500,
      status: 'partially_refunded',
    });
    expect(refundTotals(1000, [{ state: 'succeeded', amount: m(1000) }]).status).toBe('refunded');
    expect(refundTotals(1000, []).status).toBe('not_refunded');
  });

  it('refunds publish refund.*, never payment.*', () => {
    expect(refundEventFor('succeeded')).toBe('refund.succeeded');
    expect(refundEventFor('failed')).toBe('refund.failed');
    expect(refundEventFor('needs_review')).toBe('refund.needs_review');
    expect(refundEventFor('pending')).toBeUndefined();
  });
});
