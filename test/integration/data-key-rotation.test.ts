/**
 * Rotating DATA_ENCRYPTION_KEY (docs/operations.md "Rotating secrets"), across restarts on one
 * Redis prefix: what the old key sealed (a queued payment's card token, a subscription's) still
 * opens under DATA_ENCRYPTION_KEY_PREVIOUS and the payment is paid; requests retried across the
 * change (a payment, a subscription, a refund) are still recognized as the same request; without
 * the previous key the same retries are conflicts; `billing keys reseal` moves every sealed
 * value (payments, subscriptions, rows held for approval) to the new key, after which the old key
 * can go. Real app, real Redis, real sandbox, the CLI in process.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { submitBatch } from '../../src/batches/ingest.ts';
import { approveBatch } from '../../src/batches/operations.ts';
import type { ResealCounts } from '../../src/kernel/ports.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { csrfTokens } from '../../src/console/access.ts';
import { createSealer } from '../../src/infra/sealing.ts';
import { importSubscriptions, subscriptionServiceDeps } from '../../src/subscriptions/service.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

const OLD_KEY = '11'.repeat(32); // FAST_ENV's DATA_ENCRYPTION_KEY
const NEW_KEY = '22'.repeat(32);
const AUTH = { authorization: `Bearer ${TEST_API_TOKEN}` };
const DASHBOARD = { DASHBOARD_USER: 'ops', DASHBOARD_PASSWORD: 'rotation password' };
/** The import line of the subscription createMonthlySubscription makes. */
const SUB_CSV =
  'id,customer_email,card_token,amount,currency,interval,interval_count,anchor,timezone\n' +
  'rot-sub,sub@example.com,tok_console_sub_0123456789,49.99,NGN,month,1,2030-01-31T09:00:00+01:00,Africa/Lagos\n';
/** A console action (basic auth) carrying the CSRF token a page made under `key`. */
const consoleAction = (http: FastifyInstance, key: string) =>
  http.inject({
    method: 'POST',
    url: '/console/payments/api_rot-nope/resolve',
    headers: {
      authorization: `Basic ${Buffer.from('ops:rotation password').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    payload: new URLSearchParams({
      _csrf: csrfTokens(Buffer.from(key, 'hex')).tokenFor('console:ops'),
      outcome: 'failed',
      note: '',
    }).toString(),
  });
const charge = (key: string, card: string) => ({
  type: 'charge',
  key,
  email: 'ada@example.com',
  amount: '25.00',
  currency: 'NGN',
  card_token: card,
});

let sandbox: Sandbox;
let prefix: string | undefined;
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

/** POSTs `payload` to `url` with API_TOKEN. */
const post = (http: FastifyInstance, url: string, payload: object) =>
  http.inject({ method: 'POST', url, headers: AUTH, payload });

/** Closes a phase, keeping its data for the next one unless it is the last. */
async function end(t: TestApp, last = false) {
  apps.splice(apps.indexOf(t), 1);
  await t.close({ keepData: !last });
}

describe('rotating DATA_ENCRYPTION_KEY', () => {
  it('keeps what the old key sealed and hashed usable, and only with the previous key set', async () => {
    // Under the old key: a paid charge with a refund, a subscription, and a charge left queued.
    const before = await phase({}, ['api', 'worker']);
    const paid = await post(before.http, '/payments', charge('rot-paid', 'tok_rotation_paid_0123'));
    expect(paid.statusCode).toBe(201);
    await until(async () => (await before.t.app.store.get('api_rot-paid'))?.state === 'succeeded', {
      what: 'api_rot-paid succeeded',
    });
    const refund = { key: 'rot-refund-1', reason: 'duplicate order' };
    const refunded = await post(before.http, '/payments/api_rot-paid/refunds', refund);
    expect(refunded.statusCode).toBe(201);
    expect((await createMonthlySubscription(before.t.app, 'rot-sub')).status).toBe('created');
    await end(before.t);
    const apiOnly = await phase({}, ['api']);
    const queued = await post(
      apiOnly.http,
      '/payments',
      charge('rot-queued', 'tok_rotation_queued_0123'),
    );
    expect(queued.statusCode).toBe(201);
    const sealed = (await apiOnly.t.app.store.get('api_rot-queued'))!.payee;
    expect(
      sealed.kind === 'charge' &&
        createSealer(Buffer.from(OLD_KEY, 'hex')).unseal(sealed.cardTokenSealed),
    ).toBe('tok_rotation_queued_0123');
    await end(apiOnly.t);

    // The new key, without the previous one: the old requests are no longer recognized.
    const without = await phase({ DATA_ENCRYPTION_KEY: NEW_KEY, ...DASHBOARD }, ['api']);
    const conflict = await post(
      without.http,
      '/payments',
      charge('rot-paid', 'tok_rotation_paid_0123'),
    );
    expect(conflict.statusCode).toBe(409);
    expect((await createMonthlySubscription(without.t.app, 'rot-sub')).status).toBe('conflict');
    expect(
      await importSubscriptions(subscriptionServiceDeps(without.t.app), SUB_CSV),
    ).toMatchObject({ ok: false });
    // A console form opened under the old key is stale.
    expect((await consoleAction(without.http, OLD_KEY)).statusCode).toBe(403);
    await end(without.t);

    // The new key with the previous one: retries are the same requests, the queued charge is paid.
    const during = await phase(
      { DATA_ENCRYPTION_KEY: NEW_KEY, DATA_ENCRYPTION_KEY_PREVIOUS: OLD_KEY, ...DASHBOARD },
      ['api', 'worker'],
    );
    const retried = await post(
      during.http,
      '/payments',
      charge('rot-paid', 'tok_rotation_paid_0123'),
    );
    expect(retried.statusCode).toBe(200);
    const changed = await post(
      during.http,
      '/payments',
      charge('rot-paid', 'tok_another_card_0123'),
    );
    expect(changed.statusCode).toBe(409);
    const refundAgain = await post(during.http, '/payments/api_rot-paid/refunds', refund);
    expect(refundAgain.statusCode).toBe(200);
    const refundOther = await post(during.http, '/payments/api_rot-paid/refunds', {
      ...refund,
      reason: 'another reason',
    });
    expect(refundOther.statusCode).toBe(409);
    expect((await createMonthlySubscription(during.t.app, 'rot-sub')).status).toBe('existing');
    expect(await importSubscriptions(subscriptionServiceDeps(during.t.app), SUB_CSV)).toMatchObject(
      { ok: true, created: [], existing: ['rot-sub'] },
    );
    // A console form opened before the restart still submits; one made under the new key too.
    expect((await consoleAction(during.http, OLD_KEY)).statusCode).toBe(303);
    expect((await consoleAction(during.http, NEW_KEY)).statusCode).toBe(303);
    await until(
      async () => (await during.t.app.store.get('api_rot-queued'))?.state === 'succeeded',
      {
        what: 'api_rot-queued paid with its card token sealed under the previous key',
      },
    );
    const paidLate = (await during.t.app.store.get('api_rot-queued'))!;
    expect(sandbox.ledger().references[paidLate.reference]).toBeDefined();
    // What is sealed now is sealed under the new key.
    const fresh = await post(during.http, '/payments', charge('rot-new', 'tok_rotation_new_0123'));
    expect(fresh.statusCode).toBe(201);
    const payee = (await during.t.app.store.get('api_rot-new'))!.payee;
    expect(
      payee.kind === 'charge' &&
        createSealer(Buffer.from(NEW_KEY, 'hex')).unseal(payee.cardTokenSealed),
    ).toBe('tok_rotation_new_0123');
    await end(during.t, true);
  });
});

describe('billing keys reseal', () => {
  it('moves every sealed value to the new key, once, and the old key can then go', async () => {
    prefix = undefined;
    const OLD = Buffer.from(OLD_KEY, 'hex');
    const NEW = Buffer.from(NEW_KEY, 'hex');
    // Under the old key: a paid charge, a subscription, a charge left queued, a held batch row.
    const before = await phase({}, ['api', 'worker']);
    await post(before.http, '/payments', charge('rs-paid', 'tok_reseal_paid_0123'));
    await until(async () => (await before.t.app.store.get('api_rs-paid'))?.state === 'succeeded', {
      what: 'api_rs-paid succeeded',
    });
    expect((await createMonthlySubscription(before.t.app, 'rs-sub')).status).toBe('created');
    await end(before.t);
    const apiOnly = await phase({}, ['api']);
    await post(apiOnly.http, '/payments', charge('rs-queued', 'tok_reseal_queued_0123'));
    const held = await submitBatch(apiOnly.t.app, {
      input:
        'reference,email,amount,currency,card_token\nrs-row1,ada@example.com,12.00,NGN,tok_reseal_held_0123\n',
      type: 'charge',
      id: 'rs-held',
      approval: 'all',
    });
    expect(held.batch?.state).toBe('awaiting_approval');
    await end(apiOnly.t);

    // The rotation: the new key with the old one as previous; two passes.
    const during = await phase(
      { DATA_ENCRYPTION_KEY: NEW_KEY, DATA_ENCRYPTION_KEY_PREVIOUS: OLD_KEY },
      ['api'],
    );
    const reseal = async () => {
      const res = await runCliInProcess(during.t.app.config, ['--json', 'keys', 'reseal']);
      return { code: res.code, doc: JSON.parse(res.out) as Record<string, ResealCounts & object> };
    };
    const first = await reseal();
    expect(first.code).toBe(0);
    expect(first.doc.subscriptions).toMatchObject({ resealed: 1, unreadable: 0 });
    expect(first.doc.heldRows).toMatchObject({ resealed: 1, unreadable: 0 });
    // Both charges' card tokens, and the paid one's authorization when Sayswitch gave one.
    const paid = (await during.t.app.store.get('api_rs-paid'))!;
    const payments = first.doc.payments!;
    expect(payments.resealed).toBe(paid.authorizationSealed !== undefined ? 3 : 2);
    expect(payments).toMatchObject({ changed: 0, unreadable: 0 });
    expect(first.doc.done).toBe(false);
    const second = await reseal();
    expect(second.code).toBe(0);
    expect(second.doc.total).toMatchObject({ resealed: 0, changed: 0, unreadable: 0 });
    expect(second.doc.done).toBe(true);

    // Everything opens with the new key alone, to the same card tokens.
    const onlyNew = createSealer(NEW);
    const tokenOf = async (key: string) => {
      const p = (await during.t.app.store.get(key))!.payee;
      return p.kind === 'charge' ? onlyNew.unseal(p.cardTokenSealed) : undefined;
    };
    expect(await tokenOf('api_rs-paid')).toBe('tok_reseal_paid_0123');
    expect(await tokenOf('api_rs-queued')).toBe('tok_reseal_queued_0123');
    const sub = (await during.t.app.subscriptions.get('rs-sub'))!;
    expect(onlyNew.unseal(sub.sub.cardTokenSealed)).toBe('tok_console_sub_0123456789');
    expect(sub.version).toBeGreaterThan(1);
    const rows = await during.t.app.batches.heldRows('rs-held', 0, 10);
    expect(rows).toHaveLength(1);
    const heldPayee = JSON.parse(rows[0]!.payee) as { cardTokenSealed: string };
    expect(onlyNew.unseal(heldPayee.cardTokenSealed)).toBe('tok_reseal_held_0123');
    expect(() => createSealer(OLD).unseal(heldPayee.cardTokenSealed)).toThrow();
    await end(during.t);

    // Without the previous key: the queued charge and the approved held row are paid.
    const after = await phase({ DATA_ENCRYPTION_KEY: NEW_KEY }, ['api', 'worker']);
    expect(await approveBatch(after.t.app, 'rs-held', 'cli:approver')).toMatchObject({
      status: 'approved',
    });
    for (const key of ['api_rs-queued', 'bat_rs-held_rs-row1'])
      await until(async () => (await after.t.app.store.get(key))?.state === 'succeeded', {
        what: `${key} succeeded under the new key alone`,
      });
    // A value no key opens is reported, named, and left as it is.
    const foreign = createSealer(randomBytes(32)).seal('tok_foreign');
    await after.t.app.redis.hset(
      `${after.t.prefix}:intent:api_rs-paid`,
      'authorizationSealed',
      foreign,
    );
    const res = await runCliInProcess(after.t.app.config, ['--json', 'keys', 'reseal']);
    expect(res.code).toBe(1);
    expect(res.out).toContain('"unreadable":1');
    expect(res.out).toContain('unreadable_sealed_values');
    expect(res.out).toContain('api_rs-paid');
    expect(
      await after.t.app.redis.hget(`${after.t.prefix}:intent:api_rs-paid`, 'authorizationSealed'),
    ).toBe(foreign);
    await end(after.t, true);
  });
});
