/**
 * Transitions decided on a state, not on the gateway's word (TransitionOptions.onlyFrom): a batch
 * cancel fails only rows still `queued`, and a person's resolution lands only on the state it was
 * decided on. A claim keeps the attempt, so `expectAttempt` alone let a cancel that read `queued`
 * just before a claim mark the claimed row `failed` while its reference was on its way to the
 * gateway (CI caught it once under load: a canceled row with a submission at the sandbox). Each
 * race is forced here, deterministically, on real Redis: the claim is made between the read and
 * the transition. The same holds for a reconcile check's resubmission, decided on `unknown`; and a
 * worker paused past its lease records nothing over the claim that replaced its own (its copy's
 * lease is a fence, TransitionOptions.claimLease).
 */
import { describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import type { HandlerContext } from '../../src/infra/queues/processor.ts';
import { applyOutcome, heldClaim, markUnresolved } from '../../src/payments/apply-outcome.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { cancelBatch } from '../../src/batches/operations.ts';
import type { FullBatchStore } from '../../src/batches/ports.ts';
import { submitBatch } from '../../src/batches/ingest.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { PaymentGateway } from '../../src/kernel/ports.ts';
import { resolveDeps, resolvePayment } from '../../src/payments/resolve.ts';
import { appWithoutRoles } from '../support/app.ts';
import { createTestCharge, unresolvedTestCharge } from '../support/intents.ts';

// No worker: rows stay `queued` until the test claims them itself.
const env = appWithoutRoles();

const charge = (name: string) => createTestCharge(env.t.app.store, name);

const claim = (key: string, now: number) =>
  env.t.app.store.transition(key, 'submitting', now, {
    expectAttempt: 1,
    patch: { leaseUntil: now + 60_000, sentAt: now },
  });

/** A charge claimed at 2 and marked `unknown` at 3 (its worker's call ended without an answer). */
const unknownCharge = (name: string) => unresolvedTestCharge(env.t.app.store, name);

/**
 * `gateway`, except that while verify is asked about `key`, the reconciler proves its reference
 * unsent and re-queues it on the same attempt and a worker claims it again: a submission of the
 * same reference is on its way when verify answers "not found".
 */
function claimedAgainWhileAsked(gateway: PaymentGateway, key: IntentKey): PaymentGateway {
  const stub = Object.create(gateway) as PaymentGateway;
  stub.verifyCharge = async (reference) => {
    const requeued = await env.t.app.store.transition(key, 'queued', 4, {
      expectAttempt: 1,
      unsentResubmit: true,
    });
    expect(requeued.ok).toBe(true);
    expect((await claim(key, 5)).ok).toBe(true);
    return { status: 'not_found', reference };
  };
  return stub;
}

describe('onlyFrom', () => {
  it('refuses a transition from any other state, and never widens the table', async () => {
    const claimed = await charge('only-claimed');
    expect((await claim(claimed, 2)).ok).toBe(true);
    const cancel = { expectAttempt: 1, onlyFrom: ['queued'] as const, reason: 'canceled' };
    expect(await env.t.app.store.transition(claimed, 'failed', 3, cancel)).toMatchObject({
      ok: false,
      why: 'refused',
      state: 'submitting',
    });
    expect((await env.t.app.store.get(claimed))?.state).toBe('submitting');
    expect(await env.t.app.store.history(claimed)).toHaveLength(2);

    const queued = await charge('only-queued');
    expect(await env.t.app.store.transition(queued, 'failed', 3, cancel)).toMatchObject({
      ok: true,
      from: 'queued',
    });

    // `succeeded → failed` is not in the table: naming it in onlyFrom does not open it.
    const paid = await charge('only-paid');
    expect((await claim(paid, 2)).ok).toBe(true);
    expect((await env.t.app.store.transition(paid, 'succeeded', 3, { expectAttempt: 1 })).ok).toBe(
      true,
    );
    expect(
      await env.t.app.store.transition(paid, 'failed', 4, {
        expectAttempt: 1,
        onlyFrom: ['succeeded'],
      }),
    ).toMatchObject({ ok: false, why: 'refused', state: 'succeeded' });
  });
});

describe('batch cancel racing a claim', () => {
  it('a row claimed after the cancel read it as queued is left to finish, not failed', async () => {
    const rows = [1, 2, 3].map((i) => `rc-${i},0123456789,058,GTBank,Ada Obi,10${i}.00,NGN,race`);
    const r = await submitBatch(env.t.app, {
      input: `reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n${rows.join('\n')}\n`,
      type: 'payout',
      id: 'cancel-race',
    });
    expect(r.status).toBe('created');
    const first = 'bat_cancel-race_rc-1';
    // The cancel reads every row as `queued`; a worker claims the first one right after.
    const batches: FullBatchStore = Object.create(env.t.app.batches) as FullBatchStore;
    batches.intentFields = async (keys, fields) => {
      const read = await env.t.app.batches.intentFields(keys, fields);
      if (keys.includes(first)) expect((await claim(first, Date.now())).ok).toBe(true);
      return read;
    };
    const res = await cancelBatch({ ...env.t.app, batches }, 'cancel-race', 'test');
    expect(res).toMatchObject({ status: 'canceled', canceledNow: 2 });
    const intent = await env.t.app.store.get(first);
    expect(intent?.state).toBe('submitting');
    expect(intent?.reason).toBeUndefined();
    for (const key of ['bat_cancel-race_rc-2', 'bat_cancel-race_rc-3']) {
      expect(await env.t.app.store.get(key)).toMatchObject({ state: 'failed', reason: 'canceled' });
    }
  });
});

describe('a resolution racing a resubmission', () => {
  it('a person’s failed does not land on the same reference submitted again meanwhile', async () => {
    const key = await unknownCharge('resolve-race');
    const deps = resolveDeps(env.t.app);
    const gateway = claimedAgainWhileAsked(deps.gateway, key);
    const later = { now: () => 3 + deps.unknownResolvableAfterMs + 1 };
    const res = await resolvePayment({ ...deps, gateway, clock: later }, key, {
      outcome: 'failed',
      note: 'customer says no charge',
      force: true,
      by: 'test',
    });
    expect(res).toMatchObject({ status: 'not_resolvable' });
    expect((await env.t.app.store.get(key))?.state).toBe('submitting');
  });
});

describe('two reconcile checks proving the same reference unsent', () => {
  it('the second does not re-queue the intent the first re-queued and a worker claimed', async () => {
    const key = await unknownCharge('resubmit-race');
    const deps = paymentsDeps(env.t.app);
    // Another check re-queues the intent while this one asks (see claimedAgainWhileAsked).
    const gateway = claimedAgainWhileAsked(deps.gateway, key);
    // Long past the not-found grace, with resubmissions left.
    const later = { now: () => 3 + deps.policy.notFoundGraceMs + 1 };
    const check = createReconcileHandler({ ...deps, gateway, clock: later });
    const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
    await check({ key, cause: 'schedule', checks: 0 }, { log } as unknown as HandlerContext);
    const after = await env.t.app.store.get(key);
    expect(after).toMatchObject({ state: 'submitting', unsentResubmits: 1 });
  });
});

describe('a worker paused past its lease', () => {
  it('records nothing over the claim that replaced its own; the new claim’s answer lands', async () => {
    const key = await charge('late-worker');
    const deps = paymentsDeps(env.t.app);
    const a = await claim(key, 2);
    if (!a.ok) throw new Error('claim A refused');
    // A stops (GC, a stopped VM). Its lease runs out; the sweep marks it unknown, verify proves
    // the reference unsent, it is re-queued and worker B claims it on the same attempt.
    expect((await markUnresolved(deps, a.intent, 'unknown', 70_000)).ok).toBe(true);
    const requeued = await env.t.app.store.transition(key, 'queued', 71_000, {
      expectAttempt: 1,
      unsentResubmit: true,
    });
    expect(requeued.ok).toBe(true);
    const b = await claim(key, 80_000);
    if (!b.ok) throw new Error('claim B refused');

    // A wakes up with an answer: each of its three ways to record one is refused as stale.
    const reference = a.intent.reference;
    const declined = { status: 'failed' as const, reason: 'declined' as const, reference };
    expect(await applyOutcome(deps, a.intent, declined, 81_000)).toMatchObject({
      ok: false,
      why: 'stale',
    });
    expect(await markUnresolved(deps, a.intent, 'unknown', 81_000)).toMatchObject({
      ok: false,
      why: 'stale',
    });
    expect(
      await env.t.app.store.transition(key, 'queued', 81_000, {
        expectAttempt: 1,
        ...heldClaim(a.intent),
      }),
    ).toMatchObject({ ok: false, why: 'stale' });
    expect(await env.t.app.store.get(key)).toMatchObject({
      state: 'submitting',
      leaseUntil: b.intent.leaseUntil,
    });

    // B's answer is recorded.
    const paid = { status: 'succeeded' as const, reference };
    expect(await applyOutcome(deps, b.intent, paid, 82_000)).toMatchObject({
      ok: true,
      from: 'submitting',
    });
  });
});
