/**
 * What a reconcile check's answer does to an intent, on real Redis, the check handler called
 * directly with the gateway's answer stubbed (payments/apply-outcome.ts, payments/reconcile.ts):
 * - a payout the gateway already calls `reversed` while we hold it `pending` records the success
 *   first, then the reversal (`reversed` is reached only from `succeeded`): both facts, in order;
 * - a `pending` answer for an `unknown` intent is the gateway showing the reference: a later "not
 *   found" (its read side lagging) proves nothing, and the reference is not resubmitted;
 * - an intent that enters `unknown` again after a resubmission starts its check schedule over;
 * - a scheduled check whose count is stale (a duplicate of a check already recorded) verifies but
 *   does not move the schedule: only the chain's current check counts against it;
 * - a webhook's check for an intent not written yet fails to be retried (the webhook can beat the
 *   write); a scheduled one has nothing to do.
 * No other test noticed any of these breaking (each was found by mutating the code that decides it).
 */
import { describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import { markUnresolved } from '../../src/payments/apply-outcome.ts';
import { RetryableError } from '../../src/kernel/errors.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { LookupOutcome, PaymentGateway } from '../../src/kernel/ports.ts';
import { appWithoutRoles } from '../support/app.ts';
import { createTestPayout, moveTestIntent, unresolvedTestCharge } from '../support/intents.ts';
import { quietHandlerContext } from '../support/stub-gateway.ts';

// No roles: the test drives every check itself.
const env = appWithoutRoles();

/** The app's gateway, answering every verify and payout lookup with `status`. */
function answering(status: LookupOutcome['status']): PaymentGateway {
  const gateway = Object.create(env.t.app.gateway) as PaymentGateway;
  gateway.verifyCharge = (reference) => Promise.resolve({ reference, status } as LookupOutcome);
  gateway.lookupPayout = (reference) => Promise.resolve({ reference, status } as LookupOutcome);
  return gateway;
}

/** A reconcile check at `now` whose lookups answer `status`. */
function checkAt(status: LookupOutcome['status'], now: number) {
  return createReconcileHandler({
    ...paymentsDeps(env.t.app),
    gateway: answering(status),
    clock: { now: () => now },
  });
}

describe('a pending payout the gateway already calls reversed', () => {
  it('records succeeded, then reversed', async () => {
    const key = await createTestPayout(env.t.app.store, 'answers-reversed', 1, 4000 as AmountMinor);
    await moveTestIntent(env.t.app.store, key, 'submitting', 2, { leaseUntil: 60_002, sentAt: 2 });
    await moveTestIntent(env.t.app.store, key, 'pending', 3);

    const res = await checkAt('reversed', 10)(
      { key, cause: 'schedule', checks: 0 },
      quietHandlerContext,
    );
    expect(res).toEqual({ moved: 'reversed' });
    expect((await env.t.app.store.get(key))?.state).toBe('reversed');
    const moves = (await env.t.app.store.history(key)).map((h) => h.to);
    expect(moves.slice(-2)).toEqual(['succeeded', 'reversed']);
  });
});

describe('an unknown charge the gateway once called pending', () => {
  it('is not resubmitted when a later lookup does not find its reference', async () => {
    const key = await unresolvedTestCharge(env.t.app.store, 'answers-seen');
    const { policy } = paymentsDeps(env.t.app);
    // `unknown → pending` is not in the table: the intent stays unknown, its reference now seen.
    await checkAt('pending', 10)({ key, cause: 'webhook' }, quietHandlerContext);
    const seen = await env.t.app.store.get(key);
    expect(seen).toMatchObject({ state: 'unknown', seenAtGateway: 10 });

    // Long past the not-found grace, with resubmissions left: "not found" is the lookup lagging.
    const later = 3 + policy.notFoundGraceMs + 1;
    await checkAt('not_found', later)({ key, cause: 'webhook' }, quietHandlerContext);
    expect(await env.t.app.store.get(key)).toMatchObject({ state: 'unknown', unsentResubmits: 0 });
  });
});

describe('an intent unknown again after a resubmission', () => {
  it('starts its check schedule over', async () => {
    const key = await unresolvedTestCharge(env.t.app.store, 'answers-again');
    const deps = paymentsDeps(env.t.app);
    // Two checks of its schedule ran while it was unknown.
    const unknown = (await env.t.app.store.get(key))!;
    expect(await env.t.app.store.recordCheck(unknown, 2, 100)).toBe(true);
    // Verify proved it unsent: re-queued on the same attempt, claimed, and its call timed out.
    await env.t.app.store.transition(key, 'queued', 200, {
      expectAttempt: 1,
      unsentResubmit: true,
    });
    const claim = await env.t.app.store.transition(key, 'submitting', 300, {
      expectAttempt: 1,
      patch: { leaseUntil: 60_300, sentAt: 300 },
    });
    if (!claim.ok) throw new Error('claim refused');
    expect(claim.intent.checks).toBe(2);

    const res = await markUnresolved(deps, claim.intent, 'unknown', 400);
    expect(res).toMatchObject({ ok: true, intent: { state: 'unknown', checks: 0 } });
    expect((await env.t.app.store.get(key))?.checks).toBe(0);
  });
});

describe('a scheduled check whose count is stale', () => {
  it('verifies, but does not count against the schedule', async () => {
    const key = await unresolvedTestCharge(env.t.app.store, 'answers-stale-check');
    const unknown = (await env.t.app.store.get(key))!;
    expect(await env.t.app.store.recordCheck(unknown, 1, 100)).toBe(true);
    // The job of check 0 runs again (a duplicate, or the sweep's copy of it) after check 1.
    const res = await checkAt('pending', 200)(
      { key, cause: 'schedule', checks: 0 },
      quietHandlerContext,
    );
    expect(res).toEqual({ unchanged: 'unknown' });
    expect((await env.t.app.store.get(key))?.checks).toBe(1);
  });
});

describe('a check of an intent not written yet', () => {
  it('is retried when a webhook asked for it, skipped otherwise', async () => {
    const key = 'api_answers-early' as IntentKey;
    const early = checkAt('succeeded', 10)({ key, cause: 'webhook' }, quietHandlerContext);
    await expect(early).rejects.toBeInstanceOf(RetryableError);
    await expect(early).rejects.toMatchObject({ code: 'intent_not_yet_written' });
    expect(
      await checkAt('succeeded', 10)({ key, cause: 'schedule', checks: 0 }, quietHandlerContext),
    ).toEqual({ skipped: 'missing' });
  });
});
