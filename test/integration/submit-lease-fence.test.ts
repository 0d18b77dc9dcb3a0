/**
 * The submit lease stays a fence once the new claim has left `submitting` (docs/operations.md "The
 * submit lease"). Worker A claims a charge and stops before sending (a GC pause, a stopped VM). Its
 * lease runs out: the reconciler marks the charge `unknown`, verify finds the reference nowhere
 * after the grace and re-queues it (same reference, `unsentResubmits` 1); worker B claims it, sends
 * it and records the gateway's answer, `pending` or `requires_action`. Then A wakes and sends the
 * same reference; the gateway refuses the repeat, in no words (400 `Validation failed`) or with a
 * 422 naming the reference (a decline), and A's copy, from before the resubmission, reads that as
 * the refusal of a first submission: `failed`. The store refuses every transition of A's claim,
 * since the intent is no longer `submitting` under A's lease, and A's job ends there. The charge
 * ends as the gateway holds it (B's charge), never `failed`, and no second reference exists for it.
 *
 * Both workers are the real submit handler, the lease expiry and the re-queue the real reconcile
 * handler, all over HTTP against the sandbox. Only A's pause is a gate in its gateway, and the 422
 * (the sandbox never answers one) is the decline the adapter reads from it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsDeps } from '../../src/app/composition.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { GatewayOutcome, PaymentGateway } from '../../src/kernel/ports.ts';
import type { HandlerContext } from '../../src/infra/queues/processor.ts';
import { createReconcileHandler } from '../../src/payments/reconcile.ts';
import { createRefund, refundDeps } from '../../src/payments/refunds/create.ts';
import { createSubmitHandler } from '../../src/payments/submit.ts';
import type { Sandbox, SandboxOptionsInput } from '../../src/sandbox/index.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const silent = () => undefined;
const ctx = {
  log: { debug: silent, info: silent, warn: silent, error: silent },
} as unknown as HandlerContext;

/** How the gateway refuses A's repeat of the reference B already sent. */
type Refusal = '400-opaque' | '422-naming-reference';

interface Setup {
  sandbox: Sandbox;
  t: TestApp;
}

async function open(opts: SandboxOptionsInput): Promise<Setup> {
  const sandbox = await startTestSandbox({ duplicateReference: '400-opaque', ...opts });
  // No roles: the test runs each worker's and the reconciler's handler itself.
  const t = await startTestApp({ sandboxUrl: sandbox.url, roles: [] });
  return { sandbox, t };
}

/** A queued API charge of `amountMinor` minor units, created in the store (no job). */
async function newCharge(t: TestApp, key: IntentKey, amountMinor: number): Promise<void> {
  await t.app.store.create(
    {
      key,
      type: 'charge',
      origin: 'api',
      amount: amountMinor as AmountMinor,
      currency: 'NGN',
      payee: {
        kind: 'charge',
        email: 'fence@example.com',
        cardTokenSealed: t.app.sealer.seal('tok_fence_0123456789'),
      },
    },
    Date.now(),
  );
}

/** The real submit and reconcile handlers, on a clock the test moves (`clock.at`). */
function handlers(t: TestApp) {
  const clock = { at: Date.now() };
  const deps = { ...paymentsDeps(t.app), clock: { now: () => clock.at } };
  const submit = (gateway: PaymentGateway) =>
    createSubmitHandler({ ...deps, gateway, leaseMs: deps.submitLeaseMs });
  return { clock, deps, submit, reconcile: createReconcileHandler(deps) };
}

/** A worker's pause: `hold()` stops it until `release()`; `reached` resolves once it stopped. */
function gate() {
  let reachedIt!: () => void;
  const reached = new Promise<void>((resolve) => (reachedIt = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    reached,
    release,
    hold: () => {
      reachedIt();
      return released;
    },
  };
}

/**
 * Plays the sequence of the file's comment on a new charge of `amountMinor` and returns its key
 * and what A's job returned. `answered` is the state B's answer leaves the charge in.
 */
async function lateWorker(
  { t }: Setup,
  name: string,
  amountMinor: number,
  refusal: Refusal,
  answered: 'pending' | 'requires_action',
): Promise<{ key: IntentKey; lateJob: unknown }> {
  const key = `api_${name}` as IntentKey;
  await newCharge(t, key, amountMinor);
  const { clock, deps, submit, reconcile } = handlers(t);
  const job = { key, attempt: 1, amount: amountMinor, currency: 'NGN' };

  // Worker A claims, then stops before its request leaves.
  const pause = gate();
  const gatewayA = Object.create(deps.gateway) as PaymentGateway;
  gatewayA.chargeCard = async (req): Promise<GatewayOutcome> => {
    await pause.hold();
    if (refusal === '400-opaque') return deps.gateway.chargeCard(req);
    return { reference: req.reference, status: 'failed', reason: 'declined', message: 'Declined' };
  };
  const jobA = submit(gatewayA)(job, ctx);
  await pause.reached;
  const claimA = await t.app.store.get(key);
  expect(claimA).toMatchObject({ state: 'submitting', unsentResubmits: 0 });

  // A's lease runs out: the reconciler marks the charge unknown; after the not-found grace, verify
  // finds the reference nowhere and re-queues it on the same attempt.
  clock.at = (claimA?.leaseUntil ?? clock.at) + 1;
  expect(await reconcile({ key, cause: 'lease' }, ctx)).toEqual({ moved: 'unknown' });
  clock.at += deps.policy.notFoundGraceMs + 1;
  expect(await reconcile({ key, cause: 'schedule', checks: 0 }, ctx)).toEqual({ moved: 'queued' });
  expect(await t.app.store.get(key)).toMatchObject({ state: 'queued', unsentResubmits: 1 });

  // Worker B claims it, sends it, and records the gateway's answer.
  clock.at += 1;
  expect(await submit(deps.gateway)(job, ctx)).toEqual({ status: answered });
  expect((await t.app.store.get(key))?.state).toBe(answered);

  // A wakes, sends the same reference, and meets the refusal of the repeat.
  clock.at += 1;
  pause.release();
  const lateJob = await jobA.catch((err: unknown) => ({ threw: err }));
  return { key, lateJob };
}

/** What must hold once A's late answer arrived: B's state, one attempt, nothing failed. */
async function nothingRecordedForA(
  { t, sandbox }: Setup,
  key: IntentKey,
  lateJob: unknown,
  answered: 'pending' | 'requires_action',
  refusal: Refusal,
): Promise<void> {
  const after = await t.app.store.get(key);
  expect(after?.state).toBe(answered);
  expect(after).toMatchObject({ attempt: 1, reference: `${key}_1`, unsentResubmits: 1 });
  expect(after?.reason).toBeUndefined();
  expect((await t.app.store.history(key)).map((h) => h.to)).not.toContain('failed');
  // A's job ended without recording anything and without an error to retry or re-run it.
  expect(lateJob).toEqual({ skipped: 'claim_replaced' });
  const ledger = sandbox.ledger();
  expect(ledger.references[`${key}_2`]).toBeUndefined();
  expect(ledger.activity[`${key}_1`]).toMatchObject({
    submissions: refusal === '400-opaque' ? 2 : 1,
    duplicates: refusal === '400-opaque' ? 1 : 0,
  });
}

/** Checks the charge until it is succeeded: the gateway's answer about B's charge lands. */
async function settles({ t }: Setup, key: IntentKey): Promise<void> {
  const reconcile = createReconcileHandler(paymentsDeps(t.app));
  const done = await until(
    async () => {
      await reconcile({ key, cause: 'manual' }, ctx);
      return t.app.store.get(key);
    },
    { done: (i) => i?.state === 'succeeded', what: `${key} succeeded`, timeoutMs: 20_000 },
  );
  expect(done).toMatchObject({ state: 'succeeded', attempt: 1, reference: `${key}_1` });
}

const REFUSALS: Refusal[] = ['400-opaque', '422-naming-reference'];

describe('a paused worker’s late refusal after the new claim recorded pending', () => {
  let s: Setup;
  beforeAll(async () => {
    // 52: the sandbox answers pending, then succeeds.
    s = await open({});
  });
  afterAll(async () => {
    await s?.t.close();
    await s?.sandbox.close();
  });

  for (const refusal of REFUSALS) {
    it(`${refusal}: refused as stale; the charge stays pending, then succeeds, under one reference`, async () => {
      const { key, lateJob } = await lateWorker(s, `fence-p-${refusal}`, 1052, refusal, 'pending');
      await nothingRecordedForA(s, key, lateJob, 'pending', refusal);
      await settles(s, key);
      expect(s.sandbox.ledger().activity[`${key}_1`]).toMatchObject({ moves: 1 });
    });
  }
});

describe('a paused worker’s late refusal after the new claim recorded requires_action', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await open({ cardFlow: '3ds2' });
  });
  afterAll(async () => {
    await s?.t.close();
    await s?.sandbox.close();
  });

  for (const refusal of REFUSALS) {
    it(`${refusal}: refused as stale; the challenge stands and, completed, succeeds`, async () => {
      const { key, lateJob } = await lateWorker(
        s,
        `fence-ra-${refusal}`,
        1000,
        refusal,
        'requires_action',
      );
      await nothingRecordedForA(s, key, lateJob, 'requires_action', refusal);
      expect(s.sandbox.authenticate(`${key}_1`, 'complete').status).toBe(200);
      await settles(s, key);
      expect(s.sandbox.ledger().activity[`${key}_1`]).toMatchObject({ moves: 1 });
    });
  }
});

describe('a refund whose claim lapsed is never resent: nothing at Sayswitch dedupes a refund', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await open({ refundSettleMs: 50 });
  });
  afterAll(async () => {
    await s?.t.close();
    await s?.sandbox.close();
  });

  it('not found after the grace: needs_review, and the paused worker’s request is the only refund', async () => {
    const { t, sandbox } = s;
    const chargeKey = 'api_fence-rf' as IntentKey;
    await newCharge(t, chargeKey, 3000);
    const { clock, deps, submit, reconcile } = handlers(t);
    await submit(deps.gateway)({ key: chargeKey, attempt: 1, amount: 3000, currency: 'NGN' }, ctx);
    await settles(s, chargeKey);

    const reserved = await createRefund(refundDeps(t.app), chargeKey, { requestedBy: 'test' });
    if (reserved.status !== 'created') throw new Error(`refund not created: ${reserved.status}`);
    const key = reserved.intent.key;
    const job = { key, attempt: 1, amount: 3000, currency: 'NGN' };

    // Worker A claims the refund, then stops before its request leaves.
    const pause = gate();
    const gatewayA = Object.create(deps.gateway) as PaymentGateway;
    gatewayA.refund = async (req) => {
      await pause.hold();
      return deps.gateway.refund(req);
    };
    const jobA = submit(gatewayA)(job, ctx);
    await pause.reached;
    const claimA = await t.app.store.get(key);
    expect(claimA?.state).toBe('submitting');

    // A's lease runs out; after the grace the transaction lists no refund of ours. A charge would
    // be re-queued here (a late repeat meets the duplicate check); a refund goes to a person.
    clock.at = (claimA?.leaseUntil ?? clock.at) + 1;
    expect(await reconcile({ key, cause: 'lease' }, ctx)).toEqual({ moved: 'unknown' });
    expect((await t.app.store.get(key))?.claimLapsedAt).toBe(clock.at);
    clock.at += deps.policy.notFoundGraceMs + 1;
    await reconcile({ key, cause: 'schedule', checks: 0 }, ctx);
    expect(await t.app.store.get(key)).toMatchObject({ state: 'needs_review', unsentResubmits: 0 });

    // A wakes and sends: the refund lands once; A's answer is not recorded over the review.
    pause.release();
    expect(await jobA).toEqual({ skipped: 'claim_replaced' });
    const refunds = Object.values(sandbox.ledger().refunds).filter(
      (r) => r.transactionReference === `${chargeKey}_1`,
    );
    expect(refunds).toHaveLength(1);
    expect((await t.app.store.history(key)).map((h) => h.to)).toEqual([
      'queued',
      'submitting',
      'unknown',
      'needs_review',
    ]);
  });
});
