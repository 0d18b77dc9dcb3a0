import { afterEach, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../../../src/infra/gateway/sayswitch/crypto.ts';
import type { Sandbox } from '../../../src/sandbox/index.ts';
import { clientRequestFailed } from '../../support/http-events.ts';
import { until } from '../../support/poll.ts';
import {
  TEST_SECRET_KEY,
  callSandbox,
  chargeBody,
  payoutBody,
  startTestSandbox,
  startWebhookReceiver,
  type ReceivedWebhook,
  type WebhookReceiver,
} from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const PAYOUT = '/api/v1/bank_transfer';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function setup(
  overrides: Parameters<typeof startTestSandbox>[0] = {},
): Promise<{ sb: Sandbox; rx: WebhookReceiver }> {
  const rx = await startWebhookReceiver();
  open.push(rx);
  const sb = await startTestSandbox({ webhookUrl: rx.url, ...overrides });
  open.unshift(sb);
  return { sb, rx };
}

const summary = (w: ReceivedWebhook) =>
  `${w.json.notify}:${w.json.notifyType}:${w.json.data.reference}:${w.json.data.status}`;

describe('webhooks', () => {
  it('are signed with HMAC-SHA512 of the raw body and the secret key', async () => {
    const { sb, rx } = await setup();
    await callSandbox(sb, CHARGE, { body: chargeBody('wh_1', '10') });
    const [w] = await rx.waitFor(1);
    expect(w!.signature).toMatch(/^[0-9a-f]{128}$/);
    expect(verifyWebhookSignature(w!.rawBody, w!.signature, TEST_SECRET_KEY)).toBe(true);
    expect(verifyWebhookSignature(w!.rawBody, w!.signature, 'sk_test_other')).toBe(false);
    expect(w!.json).toMatchObject({
      notify: 'transaction',
      notifyType: 'successful',
      data: {
        reference: 'wh_1',
        amount: '10.12',
        requested_amount: '10',
        currency: 'NGN',
        status: 'success',
      },
    });
    expect(w!.rawBody).not.toContain('tok_opaque_card');
  });

  it('follow the outcome table: declines, settlements and reversals', async () => {
    const { sb, rx } = await setup({ settleMs: 30 });
    await callSandbox(sb, CHARGE, { body: chargeBody('wh_c51', '10.51') });
    await callSandbox(sb, CHARGE, { body: chargeBody('wh_c52', '10.52') });
    await callSandbox(sb, PAYOUT, { body: payoutBody('wh_p53', '10.53') });
    await callSandbox(sb, PAYOUT, { body: payoutBody('wh_p58', '10.58') });
    await rx.waitFor(5);
    expect(rx.received.map(summary).sort()).toEqual(
      [
        'transaction:failed:wh_c51:failed',
        'transaction:successful:wh_c52:success',
        'payout:failed:wh_p53:failed',
        'payout:successful:wh_p58:success',
        'payout:reversed:wh_p58:reversed',
      ].sort(),
    );
    const reversal = rx.received.find((w) => w.json.notifyType === 'reversed')!;
    expect(reversal.json.data).toMatchObject({ amount: '10.58', fee: '10', currency: 'NGN' });
    // Delivery order is not guaranteed (deliveries run concurrently and are retried), so a
    // receiver orders a reference's events by their own timestamps, which the sandbox does
    // guarantee: both describe the same payout, the success as recorded, the reversal stamped
    // when the ledger moved the payout on, settleMs later.
    const success = rx.received.find((w) => summary(w) === 'payout:successful:wh_p58:success')!;
    type Stamps = { created_at: string; updated_at: string };
    const [was, now] = [success.json.data as Stamps, reversal.json.data as Stamps];
    expect(now.created_at).toBe(was.created_at);
    expect(was.updated_at).toBe(was.created_at);
    expect(Date.parse(now.updated_at)).toBeGreaterThan(Date.parse(was.updated_at));
  });

  it('are sent for 54/55 (money moved) but not for 56/57 (nothing recorded)', async () => {
    const { sb, rx } = await setup({ hangMs: 10 });
    await callSandbox(sb, CHARGE, { body: chargeBody('wh_54', '10.54') });
    await callSandbox(sb, CHARGE, { body: chargeBody('wh_55', '10.55') });
    await callSandbox(sb, CHARGE, { body: chargeBody('wh_56', '10.56') });
    await callSandbox(sb, CHARGE, { body: chargeBody('wh_57', '10.57') });
    await callSandbox(sb, CHARGE, { body: chargeBody('wh_last', '10') });
    await rx.waitFor(3);
    expect(rx.received.map((w) => w.json.data.reference as string).sort()).toEqual([
      'wh_54',
      'wh_55',
      'wh_last',
    ]);
  });

  it('are delivered webhookDuplicates times each', async () => {
    const { sb, rx } = await setup({ webhookDuplicates: 3 });
    await callSandbox(sb, CHARGE, { body: chargeBody('dup_1', '10') });
    await callSandbox(sb, PAYOUT, { body: payoutBody('dup_2', '10') });
    await rx.waitFor(6);
    const copies = (r: string) => rx.received.filter((w) => w.json.data.reference === r);
    expect(copies('dup_1')).toHaveLength(3);
    expect(copies('dup_2')).toHaveLength(3);
    // Copies are byte-identical, signature included: a receiver can deduplicate on them.
    expect(new Set(copies('dup_1').map((w) => w.rawBody + w.signature)).size).toBe(1);
  });

  it('are shuffled reproducibly for a seed when webhookShuffle is on', async () => {
    const refs = Array.from({ length: 6 }, (_, i) => `shuf_${i}`);
    const orderFor = async (seed: number) => {
      // Each charge waits for its payer, and all six are completed in one synchronous step, so
      // their webhooks are queued in one window whatever the machine's speed. (Sent as the six
      // charges were answered, they had to land within the window: on a loaded machine they did
      // not, and the batches, so the orders, differed between two runs of one seed.)
      const { sb, rx } = await setup({
        cardFlow: '3ds2',
        webhookShuffle: true,
        webhookShuffleWindowMs: 500,
        webhookDuplicates: 2,
        seed,
      });
      await Promise.all(refs.map((r) => callSandbox(sb, CHARGE, { body: chargeBody(r, '10') })));
      for (const r of refs) expect(sb.authenticate(r, 'complete').status).toBe(200);
      await rx.waitFor(12);
      return rx.received.map((w) => w.json.data.reference as string);
    };
    const first = await orderFor(5);
    const again = await orderFor(5);
    const other = await orderFor(6);
    expect([...first].sort()).toEqual(refs.flatMap((r) => [r, r]));
    const unshuffled = refs.flatMap((r) => [r, r]);
    expect(first).not.toEqual(unshuffled);
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
  });

  it('are retried with backoff while the receiver answers 5xx', async () => {
    const { sb, rx } = await setup();
    rx.status = 503;
    await callSandbox(sb, CHARGE, { body: chargeBody('retry_1', '10') });
    await until(() => rx.attempts >= 2, { what: 'two refused delivery attempts' });
    rx.status = 200;
    const [w] = await rx.waitFor(1);
    expect(w!.json.data.reference).toBe('retry_1');
  });

  it('reach a receiver that comes up after the first attempt failed', async () => {
    const probe = await startWebhookReceiver();
    const port = Number(new URL(probe.url).port);
    await probe.close(); // nothing listens there now: connection refused
    const sb = await startTestSandbox({ webhookUrl: probe.url });
    open.push(sb);
    const firstFailure = clientRequestFailed(port);
    await callSandbox(sb, CHARGE, { body: chargeBody('late_1', '10') });
    // Only once the first attempt has failed does the receiver come up.
    expect((await firstFailure).code).toBe('ECONNREFUSED');
    const rx = await startWebhookReceiver(port);
    open.push(rx);
    const [w] = await rx.waitFor(1);
    expect(w!.json.data.reference).toBe('late_1');
  });
});
