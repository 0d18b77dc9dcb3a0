import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox, SandboxOptionsInput } from '../../../src/sandbox/index.ts';
import { until } from '../../support/poll.ts';
import {
  TEST_ENCRYPTION,
  callSandbox,
  chargeBody,
  payoutBody,
  startTestSandbox,
  startWebhookReceiver,
} from '../../support/sandbox.ts';

const CHARGE = '/api/s2s/transaction/initialize';
const VERIFY = '/api/v1/transaction/verify';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

/** A 3ds2 sandbox whose challenges never expire during a test unless asked to. */
async function sandbox(opts: SandboxOptionsInput = {}): Promise<Sandbox> {
  const sb = await startTestSandbox({ cardFlow: '3ds2', threeDsExpiryMs: 600_000, ...opts });
  open.unshift(sb);
  return sb;
}

const post = (sb: Sandbox, path: string, body?: unknown) =>
  callSandbox(sb, path, { method: 'POST', ...(body === undefined ? {} : { body }) });

async function challenged(sb: Sandbox, ref: string, amount = '10') {
  const res = await callSandbox(sb, CHARGE, { body: chargeBody(ref, amount) });
  expect(res.status).toBe(200);
  return res;
}

describe('3ds2 card flow: the challenge', () => {
  it('answers the documented shape with links on the sandbox itself, and nothing moves', async () => {
    const sb = await sandbox();
    const res = await challenged(sb, 'tds_shape');
    expect(res.body).toEqual({
      status: true,
      message: 'Proceed authentication 3DS2',
      data: expect.stringMatching(/^<script id="initiate-authentication-script"[^>]*><\/script>$/),
      _links: { url: `${sb.url}/__sandbox/3ds/tds_shape`, method: 'POST', payload: ['ref'] },
    });
    expect(sb.ledger().references.tds_shape).toEqual({
      kind: 'charge',
      amount: 1000,
      currency: 'NGN',
      status: 'pending',
      moneyMoved: false,
    });
    expect(sb.ledger().activity.tds_shape).toMatchObject({
      authentication: 'awaiting',
      moves: 0,
      statuses: ['pending'],
    });
    expect(sb.ledger().totals).toEqual({});
    const verify = await callSandbox(sb, `${VERIFY}/tds_shape`);
    expect(verify.body.data).toMatchObject({ status: 'pending', reference: 'tds_shape' });
  });

  it('POST to _links.url answers the documented payer-authentication step with alt = the page', async () => {
    const sb = await sandbox();
    const link = (await challenged(sb, 'tds_step3')).body._links.url as string;
    const step3 = await callSandbox(sb, new URL(link).pathname, { body: { ref: 'tds_step3' } });
    expect(step3.status).toBe(200);
    expect(step3.body).toEqual({
      status: true,
      message: 'Proceed payer authentication',
      data: expect.stringContaining('id="threedsChallengeRedirectForm"'),
      alt: link,
    });
    const wrongRef = await callSandbox(sb, new URL(link).pathname, { body: { ref: 'other' } });
    expect(wrongRef.status).toBe(400);
    expect((await post(sb, '/__sandbox/3ds/nope')).status).toBe(404);
  });

  it('serves a tiny HTML page at the link whose buttons end the challenge', async () => {
    const sb = await sandbox();
    const link = (await challenged(sb, 'tds_page')).body._links.url as string;
    const page = await fetch(link);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    for (const action of ['complete', 'fail', 'abandon']) {
      expect(html).toContain(`action="/__sandbox/3ds/tds_page/${action}"`);
    }
    // What a browser sends for the page's empty form.
    const submitted = await fetch(`${sb.url}/__sandbox/3ds/tds_page/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(submitted.status).toBe(200);
    expect(await submitted.text()).toContain('Authentication completed');
    expect(sb.ledger().references.tds_page).toMatchObject({ status: 'success', moneyMoved: true });
    expect((await fetch(`${sb.url}/__sandbox/3ds/unknown`)).status).toBe(404);
  });

  it('keeps form bodies out of the API routes', async () => {
    const sb = await sandbox();
    const res = await fetch(`${sb.url}${CHARGE}`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk_test_sandbox',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'reference=x',
    });
    expect(res.status).toBe(415);
  });

  it('is encrypted like any API answer when encryption is on', async () => {
    const sb = await sandbox({ encryption: TEST_ENCRYPTION });
    const res = await callSandbox(sb, CHARGE, {
      body: chargeBody('tds_enc', '10'),
      encryption: TEST_ENCRYPTION,
    });
    expect(res.raw).not.toContain('3DS2');
    expect(res.body).toMatchObject({ status: true, message: 'Proceed authentication 3DS2' });
  });

  it('leaves payouts alone', async () => {
    const sb = await sandbox();
    const res = await callSandbox(sb, '/api/v1/bank_transfer', { body: payoutBody('tds_p', '10') });
    expect(res.body.data.status).toBe('success');
    expect(sb.ledger().activity.tds_p?.authentication).toBeUndefined();
  });
});

describe('3ds2 card flow: the endings', () => {
  it.each([
    ['complete', 'completed', 'success', true, 'Approved', 'successful'],
    ['fail', 'failed', 'failed', false, 'Authentication failed', 'failed'],
    ['abandon', 'abandoned', 'failed', false, 'Abandoned', 'failed'],
  ] as const)(
    '%s: %s, charge %s, money moved %s',
    async (action, authentication, status, moved, gatewayResponse, notifyType) => {
      const rx = await startWebhookReceiver();
      open.push(rx);
      const sb = await sandbox({ webhookUrl: rx.url });
      const ref = `tds_${action}`;
      await challenged(sb, ref);
      const end = await post(sb, `/__sandbox/3ds/${ref}/${action}`);
      expect(end.status).toBe(200);
      expect(end.body).toEqual({ success: true, reference: ref, authentication, status });

      const ledger = sb.ledger();
      expect(ledger.references[ref]).toMatchObject({ status, moneyMoved: moved });
      expect(ledger.activity[ref]).toEqual({
        submissions: 1,
        duplicates: 0,
        moves: moved ? 1 : 0,
        reversals: 0,
        statuses: ['pending', status],
        authentication,
      });
      expect(ledger.totals.NGN ?? { movedMinor: 0, count: 0 }).toEqual(
        moved ? { movedMinor: 1000, count: 1 } : { movedMinor: 0, count: 0 },
      );
      const verify = await callSandbox(sb, `${VERIFY}/${ref}`);
      expect(verify.body.data).toMatchObject({ status, gateway_response: gatewayResponse });
      const [hook] = await rx.waitFor(1);
      expect(hook!.json).toMatchObject({ notify: 'transaction', notifyType, data: { status } });

      // A challenge ends once.
      for (const again of ['complete', 'fail', 'abandon']) {
        const res = await post(sb, `/__sandbox/3ds/${ref}/${again}`);
        expect(res.status).toBe(409);
        expect(res.body).toEqual({
          success: false,
          message: `Challenge already ${authentication}`,
        });
      }
      expect(sb.ledger().activity[ref]?.moves).toBe(moved ? 1 : 0);
    },
  );

  it('expired: nobody ends it within threeDsExpiryMs, so it fails and nothing moves', async () => {
    const sb = await sandbox({ threeDsExpiryMs: 30 });
    await challenged(sb, 'tds_expire');
    const entry = await until(
      () => {
        const e = sb.ledger().references.tds_expire;
        return e?.status === 'failed' ? e : undefined;
      },
      { what: 'tds_expire failed' },
    );
    expect(entry.moneyMoved).toBe(false);
    expect(sb.ledger().activity.tds_expire).toMatchObject({
      authentication: 'expired',
      moves: 0,
      statuses: ['pending', 'failed'],
    });
    const verify = await callSandbox(sb, `${VERIFY}/tds_expire`);
    expect(verify.body.data).toMatchObject({
      status: 'failed',
      gateway_response: 'Authentication expired',
    });
    expect((await post(sb, '/__sandbox/3ds/tds_expire/complete')).status).toBe(409);
  });

  it('the expiry is scaled by timeScale', async () => {
    const sb = await sandbox({ threeDsExpiryMs: 300_000, timeScale: 0.0001 });
    expect(sb.unknowns.threeDsExpiryMs).toBe(30);
    await challenged(sb, 'tds_scaled');
    await until(() => sb.ledger().activity.tds_scaled?.authentication === 'expired', {
      what: 'tds_scaled expired',
    });
  });

  it('an unknown reference has no challenge', async () => {
    const sb = await sandbox();
    const res = await post(sb, '/__sandbox/3ds/none/complete');
    expect(res.status).toBe(404);
    expect(sb.authenticate('none', 'fail').status).toBe(404);
  });

  it('can be ended programmatically with sandbox.authenticate', async () => {
    const sb = await sandbox();
    await challenged(sb, 'tds_prog');
    expect(sb.authenticate('tds_prog', 'complete')).toEqual({
      status: 200,
      body: {
        success: true,
        reference: 'tds_prog',
        authentication: 'completed',
        status: 'success',
      },
    });
    expect(sb.ledger().references.tds_prog).toMatchObject({ moneyMoved: true });
  });
});

describe('3ds2 card flow with the outcome table', () => {
  it('51 completes into a decline; nothing moves', async () => {
    const sb = await sandbox();
    await challenged(sb, 'tds_51', '10.51');
    expect(sb.authenticate('tds_51', 'complete').body).toMatchObject({ status: 'failed' });
    const verify = await callSandbox(sb, `${VERIFY}/tds_51`);
    expect(verify.body.data).toMatchObject({ status: 'failed', gateway_response: 'Declined' });
    expect(sb.ledger().references.tds_51).toMatchObject({ moneyMoved: false });
  });

  it('52 completes into pending, then settles to success', async () => {
    const sb = await sandbox();
    await challenged(sb, 'tds_52', '10.52');
    expect(sb.authenticate('tds_52', 'complete').body).toMatchObject({ status: 'pending' });
    await until(() => sb.ledger().references.tds_52?.status === 'success', { what: 'settled' });
    expect(sb.ledger().activity.tds_52).toMatchObject({
      statuses: ['pending', 'success'],
      moves: 1,
      authentication: 'completed',
    });
  });

  it('54 records the challenge and answers 500; the charge still waits for its payer', async () => {
    const sb = await sandbox();
    expect((await callSandbox(sb, CHARGE, { body: chargeBody('tds_54', '10.54') })).status).toBe(
      500,
    );
    expect(sb.ledger().references.tds_54).toMatchObject({ status: 'pending', moneyMoved: false });
    expect(sb.authenticate('tds_54', 'complete').body).toMatchObject({ status: 'success' });
  });

  it('56 records nothing, so there is no challenge', async () => {
    const sb = await sandbox();
    expect((await callSandbox(sb, CHARGE, { body: chargeBody('tds_56', '10.56') })).status).toBe(
      500,
    );
    expect(sb.ledger().references.tds_56).toBeUndefined();
    expect(sb.authenticate('tds_56', 'complete').status).toBe(404);
  });

  it('a duplicate echo repeats the challenge while it waits, the result once it ended', async () => {
    const sb = await sandbox({ duplicateReference: '200-echo' });
    const first = await challenged(sb, 'tds_echo');
    expect((await challenged(sb, 'tds_echo')).body).toEqual(first.body);
    sb.authenticate('tds_echo', 'complete');
    const after = await challenged(sb, 'tds_echo');
    expect(after.body).toMatchObject({ status: true, data: { status: 'success' } });
    expect(sb.ledger().activity.tds_echo).toMatchObject({ duplicates: 2, moves: 1 });
  });
});
