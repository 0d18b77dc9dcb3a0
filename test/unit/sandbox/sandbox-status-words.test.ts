/**
 * The `statusWords` unknown (docs/sayswitch-wire.md, "The matrix of unknowns"): which word a
 * transaction or payout body carries for each ledger status. `documented` is the sandbox's words
 * from before the option, byte for byte; `extended` the other plausible vocabulary, applied to
 * every `status` the sandbox writes on the wire (submission answers, verify, payout lookup,
 * duplicate echoes, both webhook shapes) and never to its own ledger.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readStatusWord } from '../../../src/infra/gateway/sayswitch/status.ts';
import {
  ABANDONED_RESPONSE,
  STATUS_VOCABULARIES,
  statusWord,
  type LedgerStatus,
  type Sandbox,
  type SandboxOptionsInput,
} from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import {
  callSandbox,
  chargeBody,
  payoutBody,
  startTestSandbox,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const PAYOUT = '/api/v1/bank_transfer';
const VERIFY = '/api/v1/transaction/verify';

const STATUSES: readonly LedgerStatus[] = ['success', 'failed', 'pending', 'reversed'];

describe('statusWord', () => {
  it('documented: the ledger status itself, for charges and payouts, whatever the words', () => {
    for (const kind of ['charge', 'payout'] as const) {
      for (const status of STATUSES) {
        expect(statusWord('documented', { kind, status, gatewayResponse: 'x' })).toBe(status);
      }
      // An abandoned challenge is a plain `failed` in the documented words.
      expect(
        statusWord('documented', { kind, status: 'failed', gatewayResponse: ABANDONED_RESPONSE }),
      ).toBe('failed');
    }
  });

  it.each([
    ['charge', 'success', 'Approved', 'successful'],
    ['charge', 'failed', 'Declined', 'declined'],
    ['charge', 'failed', 'Authentication failed', 'declined'],
    ['charge', 'failed', 'Authentication expired', 'declined'],
    ['charge', 'failed', ABANDONED_RESPONSE, 'abandoned'],
    ['charge', 'pending', 'Pending', 'processing'],
    ['charge', 'pending', 'Awaiting 3DS authentication', 'processing'],
    ['charge', 'reversed', 'Reversed', 'reversed'],
    ['payout', 'success', 'Approved', 'successful'],
    ['payout', 'failed', 'Declined', 'cancelled'],
    // `abandoned` is a 3-D Secure word: a payout has no challenge to abandon.
    ['payout', 'failed', ABANDONED_RESPONSE, 'cancelled'],
    ['payout', 'pending', 'Pending', 'processing'],
    ['payout', 'reversed', 'Reversed', 'reversed'],
  ] as const)('extended: a %s %s (%s) says %s', (kind, status, gatewayResponse, word) => {
    expect(statusWord('extended', { kind, status, gatewayResponse })).toBe(word);
  });

  it('the adapter knows every word but `abandoned`, which it reads as pending (never failed)', () => {
    // Not a wish about the adapter: the record of why `extended` is the hostile vocabulary.
    const words = new Set<string>();
    for (const vocabulary of STATUS_VOCABULARIES) {
      for (const kind of ['charge', 'payout'] as const) {
        for (const status of STATUSES) {
          for (const gatewayResponse of ['Declined', ABANDONED_RESPONSE]) {
            words.add(statusWord(vocabulary, { kind, status, gatewayResponse }));
          }
        }
      }
    }
    const unknown = [...words].filter((w) => readStatusWord(w) === undefined);
    expect(unknown).toEqual(['abandoned']);
  });
});

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function setup(opts: SandboxOptionsInput): Promise<{ sb: Sandbox; rx: WebhookReceiver }> {
  const rx = await startWebhookReceiver();
  open.push(rx);
  const sb = await startTestSandbox({
    webhookUrl: rx.url,
    statusWords: 'extended',
    settleMs: 20,
    ...opts,
  });
  open.unshift(sb);
  return { sb, rx };
}

const webhookOf = (rx: WebhookReceiver, ref: string) =>
  until(() => rx.received.find((w) => w.json.data?.reference === ref), {
    what: `a webhook about ${ref}`,
  });

describe('the extended vocabulary on the wire', () => {
  it('an abandoned challenge says `abandoned` in verify, an echoed duplicate and the documented webhook; the ledger says failed', async () => {
    const { sb, rx } = await setup({
      cardFlow: '3ds2',
      threeDsExpiryMs: 600_000,
      collectionWebhook: 'documented',
      duplicateReference: '200-echo',
    });
    await callSandbox(sb, CHARGE, { body: chargeBody('sw_ab', '10') });
    const waiting = await callSandbox(sb, `${VERIFY}/sw_ab`);
    expect(waiting.body.data).toMatchObject({
      status: 'processing',
      gateway_response: 'Awaiting 3DS authentication',
    });

    expect(sb.authenticate('sw_ab', 'abandon').body).toMatchObject({
      authentication: 'abandoned',
      // The /__sandbox endpoints speak the ledger's words.
      status: 'failed',
    });
    const verify = await callSandbox(sb, `${VERIFY}/sw_ab`);
    expect(verify.body.data).toMatchObject({
      status: 'abandoned',
      gateway_response: ABANDONED_RESPONSE,
    });
    const echo = await callSandbox(sb, CHARGE, { body: chargeBody('sw_ab', '10') });
    expect(echo.status).toBe(200);
    expect(echo.body.data).toMatchObject({ reference: 'sw_ab', status: 'abandoned' });
    const hook = await webhookOf(rx, 'sw_ab');
    expect(hook.json).toMatchObject({ type: 'payment.failed', data: { status: 'abandoned' } });
    expect(sb.ledger().references.sw_ab).toMatchObject({ status: 'failed', moneyMoved: false });

    // A failed or expired challenge is an ordinary decline in these words.
    await callSandbox(sb, CHARGE, { body: chargeBody('sw_fail', '10') });
    sb.authenticate('sw_fail', 'fail');
    expect((await callSandbox(sb, `${VERIFY}/sw_fail`)).body.data.status).toBe('declined');
    // And a completed one a success, in the documented webhook too.
    await callSandbox(sb, CHARGE, { body: chargeBody('sw_ok', '10') });
    sb.authenticate('sw_ok', 'complete');
    expect((await callSandbox(sb, `${VERIFY}/sw_ok`)).body.data.status).toBe('successful');
    expect((await webhookOf(rx, 'sw_ok')).json).toMatchObject({
      type: 'payment.success',
      data: { status: 'successful' },
    });
  });

  it('an async payout: processing, then cancelled or successful then reversed, in lookups, echoes and notify webhooks', async () => {
    const { sb, rx } = await setup({ payoutFlow: 'async', duplicateReference: '200-echo' });
    const first = await callSandbox(sb, PAYOUT, { body: payoutBody('sw_p51', '10.51') });
    expect(first.body.data).toMatchObject({ status: 'processing', gateway_response: 'Pending' });
    await callSandbox(sb, PAYOUT, { body: payoutBody('sw_p58', '10.58') });

    await until(() => sb.ledger().references.sw_p58?.status === 'reversed', {
      what: 'sw_p58 reversed',
    });
    expect(sb.ledger().references.sw_p51).toMatchObject({ status: 'failed' });
    expect((await callSandbox(sb, '/api/v1/payout/sw_p51')).body.data).toMatchObject({
      status: 'cancelled',
      gateway_response: 'Declined',
    });
    expect((await callSandbox(sb, '/api/v1/payout/sw_p58')).body.data.status).toBe('reversed');
    const echo = await callSandbox(sb, PAYOUT, { body: payoutBody('sw_p51', '10.51') });
    expect(echo.body.data).toMatchObject({ reference: 'sw_p51', status: 'cancelled' });

    await until(() => rx.received.length >= 3, { what: 'three payout webhooks' });
    const seen = rx.received.map(
      (w) => `${w.json.data.reference}:${w.json.notifyType}:${w.json.data.status}`,
    );
    // `notifyType` keeps its own words; `data.status` is the vocabulary's.
    expect(seen.sort()).toEqual([
      'sw_p51:failed:cancelled',
      'sw_p58:reversed:reversed',
      'sw_p58:successful:successful',
    ]);
  });
});
