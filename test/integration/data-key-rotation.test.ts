/**
 * Rotating DATA_ENCRYPTION_KEY (docs/operations.md "Rotating secrets"), across restarts on one
 * Redis prefix: what the old key sealed (a queued payment's card token, a subscription's) still
 * opens under DATA_ENCRYPTION_KEY_PREVIOUS and the payment is paid; requests retried across the
 * change (a payment, a subscription, a refund) are still recognized as the same request; without
 * the previous key the same retries are conflicts. Real app, real Redis, real sandbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createSealer } from '../../src/infra/sealing.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

const OLD_KEY = '11'.repeat(32); // FAST_ENV's DATA_ENCRYPTION_KEY
const NEW_KEY = '22'.repeat(32);
const AUTH = { authorization: `Bearer ${TEST_API_TOKEN}` };
const charge = (key: string, card: string) => ({
  type: 'charge',
  key,
  email: 'ada@example.com',
  amount: '25.00',
  currency: 'NGN',
  card_token: card,
});

let sandbox: Sandbox;
let prefix: string;
const apps: TestApp[] = [];
beforeAll(async () => {
  sandbox = await startTestSandbox();
});
afterAll(async () => {
  for (const a of apps.reverse()) await a.close();
  await sandbox?.close();
});

async function phase(
  env: Record<string, string>,
  roles: ('api' | 'worker')[],
): Promise<{ t: TestApp; http: FastifyInstance }> {
  const t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles,
    env: { DATA_ENCRYPTION_KEY: OLD_KEY, ...env },
    ...(prefix !== undefined ? { prefix } : {}),
  });
  prefix = t.prefix;
  apps.push(t);
  return { t, http: t.running.http! };
}

/** Closes a phase, keeping its data for the next one unless it is the last. */
async function end(t: TestApp, last = false) {
  apps.splice(apps.indexOf(t), 1);
  await t.close({ keepData: !last });
}

describe('rotating DATA_ENCRYPTION_KEY', () => {
  it('keeps what the old key sealed and hashed usable, and only with the previous key set', async () => {
    // Under the old key: a paid charge with a refund, a subscription, and a charge left queued.
    const before = await phase({}, ['api', 'worker']);
    const paid = await before.http.inject({
      method: 'POST',
      url: '/payments',
      headers: AUTH,
      payload: charge('rot-paid', 'tok_rotation_paid_0123'),
    });
    expect(paid.statusCode).toBe(201);
    await until(async () => (await before.t.app.store.get('api_rot-paid'))?.state === 'succeeded', {
      what: 'api_rot-paid succeeded',
    });
    const refund = { key: 'rot-refund-1', reason: 'duplicate order' };
    const refunded = await before.http.inject({
      method: 'POST',
      url: '/payments/api_rot-paid/refunds',
      headers: AUTH,
      payload: refund,
    });
    expect(refunded.statusCode).toBe(201);
    expect((await createMonthlySubscription(before.t.app, 'rot-sub')).status).toBe('created');
    await end(before.t);
    const apiOnly = await phase({}, ['api']);
    const queued = await apiOnly.http.inject({
      method: 'POST',
      url: '/payments',
      headers: AUTH,
      payload: charge('rot-queued', 'tok_rotation_queued_0123'),
    });
    expect(queued.statusCode).toBe(201);
    const sealed = (await apiOnly.t.app.store.get('api_rot-queued'))!.payee;
    expect(
      sealed.kind === 'charge' &&
        createSealer(Buffer.from(OLD_KEY, 'hex')).unseal(sealed.cardTokenSealed),
    ).toBe('tok_rotation_queued_0123');
    await end(apiOnly.t);

    // The new key, without the previous one: the old requests are no longer recognized.
    const without = await phase({ DATA_ENCRYPTION_KEY: NEW_KEY }, ['api']);
    const conflict = await without.http.inject({
      method: 'POST',
      url: '/payments',
      headers: AUTH,
      payload: charge('rot-paid', 'tok_rotation_paid_0123'),
    });
    expect(conflict.statusCode).toBe(409);
    expect((await createMonthlySubscription(without.t.app, 'rot-sub')).status).toBe('conflict');
    await end(without.t);

    // The new key with the previous one: retries are the same requests, the queued charge is paid.
    const during = await phase(
      { DATA_ENCRYPTION_KEY: NEW_KEY, DATA_ENCRYPTION_KEY_PREVIOUS: OLD_KEY },
      ['api', 'worker'],
    );
    const retried = await during.http.inject({
      method: 'POST',
      url: '/payments',
      headers: AUTH,
      payload: charge('rot-paid', 'tok_rotation_paid_0123'),
    });
    expect(retried.statusCode).toBe(200);
    const changed = await during.http.inject({
      method: 'POST',
      url: '/payments',
      headers: AUTH,
      payload: charge('rot-paid', 'tok_another_card_0123'),
    });
    expect(changed.statusCode).toBe(409);
    const refundAgain = await during.http.inject({
      method: 'POST',
      url: '/payments/api_rot-paid/refunds',
      headers: AUTH,
      payload: refund,
    });
    expect(refundAgain.statusCode).toBe(200);
    const refundOther = await during.http.inject({
      method: 'POST',
      url: '/payments/api_rot-paid/refunds',
      headers: AUTH,
      payload: { ...refund, reason: 'another reason' },
    });
    expect(refundOther.statusCode).toBe(409);
    expect((await createMonthlySubscription(during.t.app, 'rot-sub')).status).toBe('existing');
    await until(
      async () => (await during.t.app.store.get('api_rot-queued'))?.state === 'succeeded',
      {
        what: 'api_rot-queued paid with its card token sealed under the previous key',
      },
    );
    const paidLate = (await during.t.app.store.get('api_rot-queued'))!;
    expect(sandbox.ledger().references[paidLate.reference]).toBeDefined();
    // What is sealed now is sealed under the new key.
    const fresh = await during.http.inject({
      method: 'POST',
      url: '/payments',
      headers: AUTH,
      payload: charge('rot-new', 'tok_rotation_new_0123'),
    });
    expect(fresh.statusCode).toBe(201);
    const payee = (await during.t.app.store.get('api_rot-new'))!.payee;
    expect(
      payee.kind === 'charge' &&
        createSealer(Buffer.from(NEW_KEY, 'hex')).unseal(payee.cardTokenSealed),
    ).toBe('tok_rotation_new_0123');
    await end(during.t, true);
  });
});
