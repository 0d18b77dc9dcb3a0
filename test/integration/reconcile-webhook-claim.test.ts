/**
 * A webhook claims a final status its lookup does not show yet (a lookup can lag behind the
 * webhook), where no scheduled check will look again: a payment in `needs_review`, a succeeded
 * payout (its watch may be over). The check is retried with the job's backoff instead of
 * completing; before, it completed, and a later copy of the same webhook had the same job id and
 * was dropped, so a reversal (or a success) the gateway announced was never seen. The claim is
 * never adopted: only the lookup moves the payment. Real HTTP to a stub gateway, real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import { RetryableError } from '../../src/kernel/errors.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import { QUEUES, reconcileJobId } from '../../src/infra/queues/names.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { takeWebhook } from '../../src/payments/webhook-intake.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createTestPayout, unresolvedTestCharge } from '../support/intents.ts';
import {
  quietHandlerContext,
  referenceOf,
  startStubGateway,
  type StubGateway,
} from '../support/stub-gateway.ts';

/** The status word the stub gateway answers for every charge and payout lookup. */
let word = 'pending';
let gateway: StubGateway;
let t: TestApp;

beforeAll(async () => {
  gateway = await startStubGateway((path) => {
    const reference = referenceOf(path);
    const payout = path.includes('/payout/');
    return {
      status: 200,
      body: {
        success: true,
        message: payout ? 'Payout retrieved' : 'Verification successful',
        data: payout
          ? { reference, amount: '10.00', fee: '0.00', currency: 'NGN', status: word }
          : {
              reference,
              amount: '10.00',
              requested_amount: '10.00',
              fees: '0.00',
              currency: 'NGN',
              status: word,
            },
      },
    };
  });
  t = await startTestApp({ sandboxUrl: gateway.url, roles: [] });
});
afterAll(async () => {
  await t?.close();
  await gateway?.close();
});

const ctx = quietHandlerContext;

/** A succeeded NGN 10.00 payout `api_<name>` whose watch is over (no check scheduled). */
async function succeededPayout(name: string): Promise<IntentKey> {
  const key = await createTestPayout(t.app.store, name);
  for (const [state, at] of [
    ['submitting', 2],
    ['succeeded', 3],
  ] as const) {
    const res = await t.app.store.transition(key, state, at, {
      expectAttempt: 1,
      ...(state === 'submitting' ? { patch: { leaseUntil: at + 60_000, sentAt: at } } : {}),
    });
    if (!res.ok) throw new Error(`${key}: the move to ${state} was refused`);
  }
  return key;
}

describe('a webhook claim the lookup does not confirm (yet)', () => {
  it('needs_review: the check is retried, never adopted; once the lookup agrees it moves', async () => {
    const check = createReconcileHandler(paymentsDeps(t.app));
    const key = await unresolvedTestCharge(t.app.store, 'claim-review', 'needs_review');
    word = 'pending';
    const attempt = check({ key, cause: 'webhook', claimed: 'succeeded' }, ctx);
    await expect(attempt).rejects.toBeInstanceOf(RetryableError);
    await expect(attempt).rejects.toMatchObject({ code: 'webhook_claim_unconfirmed' });
    expect(await t.app.store.get(key)).toMatchObject({ state: 'needs_review' });

    // The job's next attempt, once the lookup has caught up.
    word = 'success';
    await check({ key, cause: 'webhook', claimed: 'succeeded' }, ctx);
    expect(await t.app.store.get(key)).toMatchObject({ state: 'succeeded', attempt: 1 });
  });

  it('a succeeded payout: a reversal webhook is looked for again until the lookup shows it', async () => {
    const check = createReconcileHandler(paymentsDeps(t.app));
    const key = await succeededPayout('claim-reversal');
    word = 'success';
    await expect(check({ key, cause: 'webhook', claimed: 'reversed' }, ctx)).rejects.toMatchObject({
      code: 'webhook_claim_unconfirmed',
    });
    expect(await t.app.store.get(key)).toMatchObject({ state: 'succeeded' });

    word = 'reversed';
    await check({ key, cause: 'webhook', claimed: 'reversed' }, ctx);
    expect(await t.app.store.get(key)).toMatchObject({ state: 'reversed' });
  });

  it('nothing to look again for: a claim the lookup shows, a pending claim, a scheduled check', async () => {
    const check = createReconcileHandler(paymentsDeps(t.app));
    const key = await unresolvedTestCharge(t.app.store, 'claim-none', 'needs_review');
    word = 'pending';
    for (const data of [
      { key, cause: 'webhook' as const, claimed: 'pending' as const },
      { key, cause: 'webhook' as const },
      { key, cause: 'schedule' as const, checks: 0 },
    ]) {
      await expect(check(data, ctx)).resolves.toMatchObject({ unchanged: 'needs_review' });
    }
    // A succeeded payout whose lookup shows what the webhook says: done.
    const payout = await succeededPayout('claim-agrees');
    word = 'success';
    await expect(
      check({ key: payout, cause: 'webhook', claimed: 'succeeded' }, ctx),
    ).resolves.toMatchObject({ unchanged: 'succeeded' });
  });

  it("the intake hands the check the webhook's claim, under the job id it always had", async () => {
    const key = await succeededPayout('claim-intake');
    const intent = (await t.app.store.get(key))!;
    const deps = { store: t.app.store, dispatcher: t.app.dispatcher, logger: t.app.logger };
    await expect(
      takeWebhook(deps, { kind: 'payout', reference: intent.reference, status: 'reversed' }),
    ).resolves.toBe('enqueued');
    const id = reconcileJobId(intent, 'webhook', 'reversed');
    expect(id).toMatch(new RegExp(`^wh-${intent.reference}-q\\d+-succeeded-0-.*reversed$`));
    const job = await t.app.dispatcher.queue(QUEUES.reconcile).getJob(id);
    expect(job?.data).toEqual({ key, cause: 'webhook', checks: 0, claimed: 'reversed' });
  });
});
