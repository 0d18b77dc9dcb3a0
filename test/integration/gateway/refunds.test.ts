/**
 * The Sayswitch adapter's refunds (src/infra/gateway/sayswitch/refunds.ts) against the sandbox
 * over HTTP: the documented answer, the status and list lookups, and what the error mapping makes
 * of refusals and ambiguous answers (docs/sayswitch-wire.md "Refunds").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BillingError } from '../../../src/kernel/errors.ts';
import type { AttemptReference } from '../../../src/kernel/ids.ts';
import type { AmountMinor } from '../../../src/kernel/money.ts';
import { SayswitchGateway } from '../../../src/infra/gateway/sayswitch/client.ts';
import type { Sandbox, SandboxOptionsInput } from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import {
  TEST_SECRET_KEY,
  callSandbox,
  chargeBody,
  startTestSandbox,
} from '../../support/sandbox.ts';

const opened: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

/**
 * `timeoutMs` is the adapter's deadline. Only the held answer below waits for it; everywhere else
 * it just ends a local call, and at 500 ms a loaded machine let it end calls that were answering
 * (or not yet sent: "nothing was sent", not outcome_unknown).
 */
async function setup(opts: SandboxOptionsInput = {}, timeoutMs = 10_000) {
  const sandbox = await startTestSandbox({ hangMs: 60_000, ...opts });
  opened.push(sandbox);
  const gateway = new SayswitchGateway({
    baseUrl: sandbox.url,
    secretKey: TEST_SECRET_KEY,
    timeoutMs,
  });
  opened.push({ close: () => gateway.close() });
  return { sandbox, gateway };
}

async function charged(sandbox: Sandbox, reference: string, amount = '50.00') {
  await callSandbox(sandbox, '/api/s2s/transaction/initialize', {
    body: chargeBody(reference, amount),
  });
}

const request = (transactionReference: string, amount?: number) => ({
  reference: `rf1_${transactionReference}` as AttemptReference,
  transactionReference,
  currency: 'NGN' as const,
  ...(amount !== undefined ? { amount: amount as AmountMinor } : {}),
});

describe('SayswitchGateway refunds', () => {
  it('refund → pending with its RF_ reference; status and list find it, then succeeded', async () => {
    const { sandbox, gateway } = await setup({ refundSettleMs: 20 });
    await charged(sandbox, 'tx_ok_1');
    const answer = await gateway.refund(request('tx_ok_1', 1000));
    expect(answer).toMatchObject({
      status: 'pending',
      gatewayReference: 'RF_00000001',
      transactionReference: 'tx_ok_1',
      amount: 1000,
    });
    const done = await until(() => gateway.refundStatus('RF_00000001'), {
      done: (r) => r?.status === 'succeeded',
      what: 'refund succeeded',
    });
    expect(done).toMatchObject({ amount: 1000 });
    expect(await gateway.refundsOf('tx_ok_1')).toEqual([
      expect.objectContaining({ gatewayReference: 'RF_00000001', status: 'succeeded' }),
    ]);
    expect(await gateway.refundsOf('tx_other_1')).toEqual([]);
    expect(await gateway.refundStatus('RF_99999999')).toBeUndefined();
  });

  it('a refusal is fatal (nothing moved); a 500 is outcome_unknown (verify, never resend blindly)', async () => {
    const { sandbox, gateway } = await setup({ refundFault: 'lost-response' });
    await charged(sandbox, 'tx_err_1');
    const unknown = await gateway.refund(request('tx_err_1')).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(BillingError);
    expect((unknown as BillingError).kind).toBe('outcome_unknown');
    // It did land: the list shows it.
    expect(await gateway.refundsOf('tx_err_1')).toHaveLength(1);
    const refused = await gateway.refund(request('tx_err_1')).catch((e: unknown) => e);
    expect((refused as BillingError).kind).toBe('fatal');
    const missing = await gateway.refund(request('tx_missing_1')).catch((e: unknown) => e);
    expect((missing as BillingError).kind).toBe('fatal');
  });

  it('an answer held past the timeout is outcome_unknown', async () => {
    // Held for a minute: the 2 s deadline ends it, with the request sent long before.
    const { sandbox, gateway } = await setup({ refundFault: 'hang' }, 2_000);
    await charged(sandbox, 'tx_hang_1');
    const err = await gateway.refund(request('tx_hang_1', 500)).catch((e: unknown) => e);
    expect((err as BillingError).kind).toBe('outcome_unknown');
  });

  it('a lookup not-found as 200 success:false is an answer, not an error', async () => {
    const { gateway } = await setup({ notFound: '200-failure' });
    expect(await gateway.refundStatus('RF_00000042')).toBeUndefined();
  });
});
