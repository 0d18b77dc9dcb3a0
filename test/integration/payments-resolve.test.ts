/**
 * An operator resolves `needs_review` (payments/resolve.ts, POST /payments/:key/resolve) through
 * the real pipeline and the sandbox: a 3-D Secure charge nobody completes ends in needs_review
 * (the gateway says pending); the payer completing it later makes the gateway say succeeded.
 * Refused when the gateway disagrees or has no final answer, unless forced; who, the note, what
 * the gateway said and whether it was forced go to the history and the event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayment } from '../../src/payments/create.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { findFreePort } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const READ_TOKEN = 'test-read-token-0123456789';
/** A JSON answer of the API: a view, a list or an error. */
interface ApiBody {
  error?: { code: string; message: string; details?: unknown };
  [field: string]: unknown;
}

let sandbox: Sandbox;
let t: TestApp;

beforeAll(async () => {
  const port = await findFreePort();
  // No webhooks: a webhook after the payer completes would let the reconciler settle the payment
  // itself, before the operator gets to it (which is right, but not what this test is about).
  sandbox = await startTestSandbox({ profile: 'strict-docs', threeDsExpiryMs: 600_000 });
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker', 'reconciler'],
    env: {
      PORT: String(port),
      REQUIRES_ACTION_WINDOW: '300ms',
      API_READ_TOKEN: READ_TOKEN,
      RESOLVE_UNKNOWN_AFTER: '1h',
    },
  });
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

async function inReview(key: string): Promise<Intent> {
  const r = await createPayment(createDeps(t.app), {
    type: 'charge',
    key,
    email: 'review@example.com',
    amount: '75.00',
    currency: 'NGN',
    card_token: 'tok_review_0123456789',
  });
  expect(r.status).toBe('created');
  const intent = await until(() => t.app.store.get(`api_${key}`), {
    done: (i) => i?.state === 'needs_review',
    what: () => `api_${key} in needs_review`,
    timeoutMs: 30_000,
  });
  return intent!;
}

async function resolve(key: string, body: unknown, token = TEST_API_TOKEN) {
  const res = await fetch(`${t.url}/payments/${key}/resolve`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as ApiBody };
}

describe('POST /payments/:key/resolve', () => {
  it('refuses while the gateway has no final answer, and when it disagrees; agrees → resolved', async () => {
    const intent = await inReview('rev1');

    const unconfirmed = await resolve(intent.key, { outcome: 'failed', note: 'customer says no' });
    expect(unconfirmed.status).toBe(409);
    expect(unconfirmed.body).toMatchObject({
      error: { code: 'gateway_unconfirmed', details: { gateway: 'pending' } },
    });

    // The payer completes the challenge after all: the gateway now says succeeded.
    expect(sandbox.authenticate(intent.reference, 'complete').status).toBe(200);
    const disagrees = await resolve(intent.key, {
      outcome: 'failed',
      note: 'dashboard says failed',
    });
    expect(disagrees.status).toBe(409);
    expect(disagrees.body).toMatchObject({
      error: { code: 'gateway_disagrees', details: { gateway: 'succeeded' } },
    });
    expect((await t.app.store.get(intent.key))?.state).toBe('needs_review');

    // The read token cannot resolve; bad input names the field; neither changes anything.
    expect(
      (await resolve(intent.key, { outcome: 'succeeded', note: 'x' }, READ_TOKEN)).status,
    ).toBe(403);
    const invalid = await resolve(intent.key, { outcome: 'paid', note: '' });
    expect(invalid.status).toBe(422);
    expect((invalid.body.error?.details as { field: string }[]).map((d) => d.field).sort()).toEqual(
      ['note', 'outcome'],
    );

    const ok = await resolve(intent.reference, { outcome: 'succeeded', note: 'checked Sayswitch' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      key: intent.key,
      state: 'succeeded',
      resolution: { gateway: 'succeeded', forced: false },
    });
    const last = (await t.app.store.history(intent.key)).at(-1);
    expect(last).toMatchObject({
      from: 'needs_review',
      to: 'succeeded',
      resolution: {
        by: 'API_TOKEN',
        note: 'checked Sayswitch',
        gateway: 'succeeded',
        forced: false,
      },
    });
    const events = await t.app.events.read();
    const event = events.find((e) => e.type === 'payment.succeeded' && e.data.key === intent.key);
    expect(event?.data).toMatchObject({ resolution: { by: 'API_TOKEN', forced: false } });
    expect(sandbox.ledger().activity[intent.reference]).toMatchObject({ moves: 1 });

    // Final now: a second resolution is refused.
    const again = await resolve(intent.key, { outcome: 'succeeded', note: 'twice' });
    expect(again.status).toBe(409);
    expect(again.body.error?.code).toBe('not_resolvable');
  });

  it('force records the operator outcome over an unconfirmed gateway, as operator_forced', async () => {
    const intent = await inReview('rev2');
    const forced = await resolve(intent.key, {
      outcome: 'failed',
      note: 'customer abandoned; Sayswitch support confirmed',
      force: true,
    });
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({
      state: 'failed',
      reason: 'operator_forced',
      resolution: { gateway: 'pending', forced: true },
    });
    expect((await t.app.store.history(intent.key)).at(-1)?.resolution).toMatchObject({
      forced: true,
      gateway: 'pending',
    });
  });

  it('refuses a payment that is not in review, and one that does not exist', async () => {
    expect((await resolve('api_nope', { outcome: 'failed', note: 'x' })).status).toBe(404);
    const r = await createPayment(createDeps(t.app), {
      type: 'payout',
      key: 'rev3',
      account_number: '0123456789',
      bank_code: '000013',
      bank_name: 'GTBank',
      account_name: 'Review Test',
      amount: '12.00',
      currency: 'NGN',
      narration: 'review',
    });
    expect(r.status).toBe('created');
    const res = await resolve('api_rev3', { outcome: 'failed', note: 'x' });
    expect(res.status).toBe(409);
    expect(res.body.error?.code).toBe('not_resolvable');
  });
});
