/**
 * The sandbox's refunds (docs/sayswitch-wire.md "Refunds"): never more than a transaction moved,
 * the refund unknowns (`refundPartial`, `refundCallerReference`, `refundSettleMs`), the lookups,
 * and the ledger's view of the money given back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox, SandboxOptionsInput } from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import { callSandbox, chargeBody, payoutBody, startTestSandbox } from '../../support/sandbox.ts';

const open: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function sandbox(opts: SandboxOptionsInput = {}): Promise<Sandbox> {
  const sb = await startTestSandbox(opts);
  open.push(sb);
  return sb;
}

async function charged(sb: Sandbox, reference: string, amount = '100.00') {
  const res = await callSandbox(sb, '/api/s2s/transaction/initialize', {
    body: chargeBody(reference, amount),
  });
  expect(res.status).toBe(200);
}

const refund = (sb: Sandbox, body: Record<string, unknown>) =>
  callSandbox(sb, '/api/v1/refund', { body });

describe('sandbox refunds', () => {
  it('answers the documented shape, pending, then success after refundSettleMs; the ledger gives it back', async () => {
    const sb = await sandbox({ refundSettleMs: 20 });
    await charged(sb, 'tx_full_1');
    const res = await refund(sb, { reference: 'tx_full_1' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      success: true,
      message: 'Refund submitted and in progress',
      data: { reference: 'RF_00000001', status: 'pending', transaction_reference: 'tx_full_1' },
    });
    expect(typeof res.body.data.refund_id).toBe('number');
    const done = await until(() => callSandbox(sb, '/api/v1/refund/status/RF_00000001'), {
      done: (r) => r.body?.data?.status === 'success',
      what: 'refund success',
    });
    expect(done.body.data.status).toBe('success');
    const ledger = sb.ledger();
    expect(ledger.activity.tx_full_1).toMatchObject({ refunds: 1, refundedMinor: 10000 });
    expect(ledger.refunds.RF_00000001).toMatchObject({ amount: 10000, status: 'success' });
  });

  it('never gives back more than the transaction moved, whatever is asked', async () => {
    const sb = await sandbox();
    await charged(sb, 'tx_cap_1');
    expect((await refund(sb, { reference: 'tx_cap_1', amount: '60.00' })).status).toBe(200);
    const over = await refund(sb, { reference: 'tx_cap_1', amount: '40.01' });
    expect(over.status).toBe(400);
    expect(over.body.message).toBe('Refund amount exceeds the refundable balance');
    expect((await refund(sb, { reference: 'tx_cap_1' })).status).toBe(200);
    expect(Object.values(sb.ledger().refunds).map((r) => r.amount)).toEqual([6000, 4000]);
    const none = await refund(sb, { reference: 'tx_cap_1' });
    expect(none.status).toBe(400);
    expect(Object.keys(sb.ledger().refunds)).toHaveLength(2);
  });

  it('refuses what cannot be refunded: unknown, a payout, a declined charge', async () => {
    const sb = await sandbox();
    expect((await refund(sb, { reference: 'nothing_1' })).status).toBe(404);
    await callSandbox(sb, '/api/v1/bank_transfer', { body: payoutBody('po_1', '10.00') });
    expect((await refund(sb, { reference: 'po_1' })).status).toBe(404);
    await charged(sb, 'tx_declined_1', '10.51');
    expect((await refund(sb, { reference: 'tx_declined_1' })).status).toBe(400);
    expect((await refund(sb, {})).status).toBe(400);
    expect(sb.ledger().refunds).toEqual({});
  });

  it.each([
    ['supported', 200, 2500],
    ['full-only', 200, 10000],
    ['rejected', 400, undefined],
  ] as const)(
    'refundPartial %s: a partial request answers %i, refunding %s',
    async (mode, http, minor) => {
      const sb = await sandbox({ refundPartial: mode });
      await charged(sb, 'tx_part_1');
      const res = await refund(sb, { reference: 'tx_part_1', amount: '25.00' });
      expect(res.status).toBe(http);
      const refunds = Object.values(sb.ledger().refunds);
      expect(refunds.map((r) => r.amount)).toEqual(minor === undefined ? [] : [minor]);
    },
  );

  it.each([
    ['ignored', 2, undefined],
    ['honoured', 1, 'ours_1'],
  ] as const)(
    'refundCallerReference %s: the same merchant_reference twice makes %i refund(s)',
    async (mode, count, echoed) => {
      const sb = await sandbox({ refundCallerReference: mode });
      await charged(sb, 'tx_ref_1');
      const body = { reference: 'tx_ref_1', amount: '10.00', merchant_reference: 'ours_1' };
      const first = await refund(sb, body);
      await refund(sb, body);
      expect(first.body.data.merchant_reference).toBe(echoed);
      expect(Object.keys(sb.ledger().refunds)).toHaveLength(count);
      const list = await callSandbox(sb, '/api/v1/refund?reference=tx_ref_1');
      expect(list.body.data).toHaveLength(count);
    },
  );

  it('lists a transaction’s refunds only; lookups honour the lag and the not-found shape', async () => {
    const sb = await sandbox({ lookupLagMs: 60_000, notFound: '200-failure' });
    await charged(sb, 'tx_a_1');
    await charged(sb, 'tx_b_1');
    await refund(sb, { reference: 'tx_a_1', amount: '1.00' });
    // Hidden by the lag: the list is empty and the status is not found (200 failure).
    expect((await callSandbox(sb, '/api/v1/refund?reference=tx_a_1')).body.data).toEqual([]);
    const missing = await callSandbox(sb, '/api/v1/refund/status/RF_00000001');
    expect(missing.status).toBe(200);
    expect(missing.body).toEqual({ success: false, message: 'Refund not found' });
    expect((await callSandbox(sb, '/api/v1/refund?reference=tx_b_1')).body.data).toEqual([]);
  });

  it.each([
    ['lost-response', 500, 1],
    ['unrecorded-500', 500, 0],
  ] as const)(
    'refundFault %s: the first request answers %i and records %i refund',
    async (fault, http, n) => {
      const sb = await sandbox({ refundFault: fault });
      await charged(sb, 'tx_fault_1');
      expect((await refund(sb, { reference: 'tx_fault_1', amount: '5.00' })).status).toBe(http);
      expect(Object.keys(sb.ledger().refunds)).toHaveLength(n);
      // Only the first request of the transaction meets the fault.
      expect((await refund(sb, { reference: 'tx_fault_1', amount: '5.00' })).status).toBe(200);
    },
  );
});
