/**
 * The submit handler around its claim (payments/submit.ts), called directly on real Redis:
 * - a job that finds another worker's claim (a duplicate job, or a retry of its own job while its
 *   call is still out) never touches a claim whose lease still holds: it parks until the lease ends
 *   (DelayRequest) and never calls the gateway. Only once the lease has run out with no answer
 *   recorded does it hand the intent to the reconciler as `unknown` (`lease_expired`). Marking a
 *   live claim `unknown` would drop its worker's answer (refused as stale) and start verifying a
 *   reference whose request may still be on its way;
 * - anything unexpected thrown after the claim (not one of our error kinds) may have come after
 *   the request left: `unknown`, verified, never re-queued as unsent;
 * - a worker whose claim was replaced records nothing, but a refusal of our credentials is still
 *   rethrown: it pauses the queue for every job alike (infra/queues/processor.ts).
 */
import { describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import { DelayRequest } from '../../src/infra/queues/processor.ts';
import { FatalError } from '../../src/kernel/errors.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { PaymentGateway } from '../../src/kernel/ports.ts';
import { createSubmitHandler } from '../../src/payments/submit.ts';
import { appWithoutRoles } from '../support/app.ts';
import { moveTestIntent } from '../support/intents.ts';
import { quietHandlerContext } from '../support/stub-gateway.ts';

// No roles: the test runs the submit handler itself.
const env = appWithoutRoles();

/** A queued API charge `api_<name>` of 10.00 NGN with a card token the worker can unseal. */
async function newCharge(name: string): Promise<IntentKey> {
  const key = `api_${name}` as IntentKey;
  await env.t.app.store.create(
    {
      key,
      type: 'charge',
      origin: 'api',
      amount: 1000 as AmountMinor,
      currency: 'NGN',
      payee: {
        kind: 'charge',
        email: 'claims@example.com',
        cardTokenSealed: env.t.app.sealer.seal('tok_claims_0123456789'),
      },
    },
    1,
  );
  return key;
}

/** The app's gateway, refusing to submit anything: a held claim is never sent twice. */
function neverSubmits(): PaymentGateway {
  const gateway = Object.create(env.t.app.gateway) as PaymentGateway;
  gateway.chargeCard = () => Promise.reject(new Error('a held claim was submitted again'));
  return gateway;
}

/** The app's gateway, whose charge calls run `charge` instead. */
function charging(charge: PaymentGateway['chargeCard']): PaymentGateway {
  const gateway = Object.create(env.t.app.gateway) as PaymentGateway;
  gateway.chargeCard = charge;
  return gateway;
}

/** The real submit handler, at `now`, on `gateway`. */
function submitAt(now: number, gateway = neverSubmits()) {
  const deps = paymentsDeps(env.t.app);
  return createSubmitHandler({
    ...deps,
    gateway,
    clock: { now: () => now },
    leaseMs: deps.submitLeaseMs,
  });
}

describe('a submit job meeting another worker’s claim', () => {
  it('parks until the lease ends while it holds, then hands the intent to the reconciler', async () => {
    const key = await newCharge('held-claim');
    await moveTestIntent(env.t.app.store, key, 'submitting', 2, { leaseUntil: 60_002, sentAt: 2 });
    const job = { key, attempt: 1, amount: 1000, currency: 'NGN' };

    const early = submitAt(30_000)(job, quietHandlerContext);
    await expect(early).rejects.toBeInstanceOf(DelayRequest);
    await expect(early).rejects.toMatchObject({ until: 60_003 });
    expect(await env.t.app.store.get(key)).toMatchObject({
      state: 'submitting',
      leaseUntil: 60_002,
    });

    expect(await submitAt(60_003)(job, quietHandlerContext)).toEqual({ skipped: 'lease_expired' });
    expect(await env.t.app.store.get(key)).toMatchObject({
      state: 'unknown',
      claimLapsedAt: 60_003,
    });
  });
});

describe('an unexpected error after the claim', () => {
  it('leaves the intent unknown, to be verified, never queued as unsent', async () => {
    const key = await newCharge('claim-unexpected');
    const job = { key, attempt: 1, amount: 1000, currency: 'NGN' };
    const gateway = charging(() => Promise.reject(new TypeError('a bug after the request left')));
    await expect(submitAt(10, gateway)(job, quietHandlerContext)).rejects.toMatchObject({
      kind: 'outcome_unknown',
      code: 'unexpected',
    });
    expect(await env.t.app.store.get(key)).toMatchObject({ state: 'unknown', unsentResubmits: 0 });
  });
});

describe('a worker whose claim was replaced while it called', () => {
  it('records nothing, and still rethrows a refusal of our credentials', async () => {
    const key = await newCharge('claim-replaced-401');
    const job = { key, attempt: 1, amount: 1000, currency: 'NGN' };
    // While A's call is out, its lease runs out: the intent is marked unknown, proven unsent,
    // re-queued and claimed by B on the same attempt. Then A's call is refused with a 401.
    const gateway = charging(async () => {
      await moveTestIntent(env.t.app.store, key, 'unknown', 70_000);
      const requeued = await env.t.app.store.transition(key, 'queued', 71_000, {
        expectAttempt: 1,
        unsentResubmit: true,
      });
      expect(requeued.ok).toBe(true);
      await moveTestIntent(env.t.app.store, key, 'submitting', 72_000, { leaseUntil: 132_000 });
      throw new FatalError('401', 'unauthorized', { authFailure: true });
    });
    await expect(submitAt(10, gateway)(job, quietHandlerContext)).rejects.toMatchObject({
      authFailure: true,
    });
    expect(await env.t.app.store.get(key)).toMatchObject({
      state: 'submitting',
      leaseUntil: 132_000,
    });
  });
});
