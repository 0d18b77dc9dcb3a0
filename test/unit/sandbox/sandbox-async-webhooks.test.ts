import { afterEach, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../../../src/infra/gateway/sayswitch/crypto.ts';
import type { Sandbox, SandboxOptionsInput } from '../../../src/sandbox/index.ts';
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

async function setup(opts: SandboxOptionsInput): Promise<{ sb: Sandbox; rx: WebhookReceiver }> {
  const rx = await startWebhookReceiver();
  open.push(rx);
  const sb = await startTestSandbox({ webhookUrl: rx.url, settleMs: 30, ...opts });
  open.unshift(sb);
  return { sb, rx };
}

const payoutHooks = (rx: WebhookReceiver, ref: string) =>
  rx.received
    .filter((w) => w.json.data.reference === ref)
    .map((w) => `${w.json.notifyType}:${w.json.data.status}`);

describe('async payout flow', () => {
  it.each([
    ['00', ['success'], true, ['successful:success']],
    ['51', ['failed'], false, ['failed:failed']],
    ['52', ['success'], true, ['successful:success']],
    ['53', ['failed'], false, ['failed:failed']],
    ['58', ['success', 'reversed'], false, ['successful:success', 'reversed:reversed']],
  ] as const)(
    '%s: answers pending, then becomes %j by webhook and lookup',
    async (rem, finals, movedAtEnd, hooks) => {
      const { sb, rx } = await setup({ payoutFlow: 'async' });
      const ref = `ap_${rem}`;
      const res = await callSandbox(sb, PAYOUT, { body: payoutBody(ref, `10.${rem}`) });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        success: true,
        data: { reference: ref, status: 'pending' },
      });

      const last = finals[finals.length - 1];
      await until(() => sb.ledger().references[ref]?.status === last, { what: `${ref} ${last}` });
      await rx.waitFor(hooks.length);
      expect(payoutHooks(rx, ref)).toEqual(hooks);
      expect(sb.ledger().references[ref]?.moneyMoved).toBe(movedAtEnd);
      // Pending first (the ledger's history), then the final statuses.
      expect(sb.ledger().activity[ref]?.statuses).toEqual(['pending', ...finals]);
      const lookup = await callSandbox(sb, `/api/v1/payout/${ref}`);
      expect(lookup.body.data.status).toBe(last);
      if (rem === '51') expect(lookup.body.data.gateway_response).toBe('Declined');
    },
  );

  it('54: recorded pending, answers 500, still succeeds later', async () => {
    const { sb } = await setup({ payoutFlow: 'async' });
    expect((await callSandbox(sb, PAYOUT, { body: payoutBody('ap_54', '10.54') })).status).toBe(
      500,
    );
    await until(() => sb.ledger().references.ap_54?.moneyMoved === true, { what: 'ap_54 moved' });
    expect(sb.ledger().activity.ap_54?.statuses).toEqual(['pending', 'success']);
  });

  it('56 and 57 still record nothing', async () => {
    const { sb } = await setup({ payoutFlow: 'async' });
    expect((await callSandbox(sb, PAYOUT, { body: payoutBody('ap_56', '10.56') })).status).toBe(
      500,
    );
    expect((await callSandbox(sb, PAYOUT, { body: payoutBody('ap_57', '10.57') })).status).toBe(
      429,
    );
    expect(sb.ledger().references.ap_56).toBeUndefined();
    expect(sb.ledger().references.ap_57).toBeUndefined();
  });

  it('debits the wallet only once the payout succeeds', async () => {
    const balance = async (sb: Sandbox) =>
      Number((await callSandbox(sb, '/api/v1/wallet_balance/NGN')).body.data.balance);
    // Never settles during the test: the payout stays pending, the wallet untouched.
    const { sb: slow } = await setup({ payoutFlow: 'async', settleMs: 600_000 });
    const start = await balance(slow);
    await callSandbox(slow, PAYOUT, { body: payoutBody('ap_wallet', '100') });
    expect(slow.ledger().references.ap_wallet).toMatchObject({
      status: 'pending',
      moneyMoved: false,
    });
    expect(await balance(slow)).toBe(start);

    const { sb } = await setup({ payoutFlow: 'async' });
    await callSandbox(sb, PAYOUT, { body: payoutBody('ap_wallet', '100') });
    await until(() => sb.ledger().references.ap_wallet?.moneyMoved === true, { what: 'moved' });
    expect(await balance(sb)).toBe(start - 110);
  });

  it('leaves charges alone', async () => {
    const { sb } = await setup({ payoutFlow: 'async' });
    const res = await callSandbox(sb, CHARGE, { body: chargeBody('ap_charge', '10') });
    expect(res.body.data.status).toBe('success');
  });
});

describe('collection webhook shape', () => {
  it('documented: charges send the `type: payment.success` sample shape, signed', async () => {
    const { sb, rx } = await setup({ collectionWebhook: 'documented' });
    await callSandbox(sb, CHARGE, { body: chargeBody('cw_ok', '10') });
    const [w] = await rx.waitFor(1);
    expect(verifyWebhookSignature(w!.rawBody, w!.signature, TEST_SECRET_KEY)).toBe(true);
    expect(w!.json).toEqual({
      id: expect.stringMatching(/^evt_/),
      type: 'payment.success',
      created: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      data: {
        reference: 'cw_ok',
        amount: 10.12,
        currency: 'NGN',
        status: 'success',
        customer: { email: 'payer@example.com' },
      },
    });
    expect(w!.rawBody).not.toContain('tok_opaque_card');
  });

  it('documented: failures are payment.failed, settled ones arrive late; payouts keep notify', async () => {
    const { sb, rx } = await setup({ collectionWebhook: 'documented' });
    await callSandbox(sb, CHARGE, { body: chargeBody('cw_51', '10.51') });
    await callSandbox(sb, CHARGE, { body: chargeBody('cw_53', '10.53') });
    await callSandbox(sb, PAYOUT, { body: payoutBody('cw_p', '10') });
    await rx.waitFor(3);
    const seen = rx.received
      .map((w: ReceivedWebhook) => `${w.json.type ?? w.json.notify}:${w.json.data.reference}`)
      .sort();
    expect(seen).toEqual(['payment.failed:cw_51', 'payment.failed:cw_53', 'payout:cw_p']);
    const ids = rx.received.filter((w) => w.json.type).map((w): string => String(w.json.id));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documented: duplicated deliveries carry the same event id', async () => {
    const { sb, rx } = await setup({ collectionWebhook: 'documented', webhookDuplicates: 2 });
    await callSandbox(sb, CHARGE, { body: chargeBody('cw_dup', '10') });
    const [a, b] = await rx.waitFor(2);
    expect(a!.rawBody).toBe(b!.rawBody);
  });

  it('notify (default): charges keep the payout-style body', async () => {
    const { sb, rx } = await setup({ collectionWebhook: 'notify' });
    await callSandbox(sb, CHARGE, { body: chargeBody('cw_notify', '10') });
    const [w] = await rx.waitFor(1);
    expect(w!.json).toMatchObject({ notify: 'transaction', notifyType: 'successful' });
  });
});
