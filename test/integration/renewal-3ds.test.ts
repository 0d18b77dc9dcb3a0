/**
 * Renewals behind a 3-D Secure challenge (docs/subscriptions.md "Unresolved renewals" and "What
 * renewals need from Sayswitch"), end to end: the real workers and reconciler against the sandbox
 * with `cardFlow: '3ds2'`, where every card charge answers the documented challenge and waits,
 * money unmoved, until the payer completes, fails or abandons it, or it expires.
 *
 * For each ending: the renewal's payment is `requires_action`, the subscription's billing is held
 * awaiting the customer (no period is charged on top, no retry opens a new attempt), and then
 * - completed: renewed; the periods held meanwhile are billed after, in order;
 * - failed, abandoned, expired: the gateway says failed, dunning starts, and each retry is a new
 *   challenge that holds billing again until it ends.
 * Every charge is checked in the sandbox ledger: money moved at most once per reference and once
 * per period.
 *
 * When a challenge ends Sayswitch sends a webhook, and the webhook intake enqueues a check of the
 * reference; the harness runs no HTTP server, so `endChallenge` enqueues that same check.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import type { PaymentGateway } from '../../src/kernel/ports.ts';
import type { Sandbox, SandboxOptionsInput, ThreeDsAction } from '../../src/sandbox/index.ts';
import { dunningJobId } from '../../src/subscriptions/jobs.ts';
import { applyAction, showSubscription } from '../../src/subscriptions/service.ts';
import { createSubscriptionFromBody } from '../../src/subscriptions/service.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { startSubsHarness, type SubsHarness } from '../support/subscription-harness.ts';

const DAY = 86_400_000;
const START = Date.parse('2025-02-01T09:00:00Z');
/** What the gateway wrapper adds to a verified success: a reusable authorization (a secret). */
const AUTHORIZATION = 'ss-tkn-reusable-secret-7f3a';

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of opened.reverse()) await c.close();
  opened.length = 0;
});

/**
 * The real gateway, except that a verified success carries a reusable authorization, as
 * Sayswitch's verify documents (`authorization.authorization_code`, `card.token`) and the sandbox
 * does not simulate.
 */
function withAuthorization(real: PaymentGateway): PaymentGateway {
  return {
    chargeCard: (req) => real.chargeCard(req),
    verifyCharge: async (ref) => {
      const out = await real.verifyCharge(ref);
      return out.status === 'succeeded' ? { ...out, authorization: AUTHORIZATION } : out;
    },
    payout: (req) => real.payout(req),
    lookupPayout: (ref) => real.lookupPayout(ref),
    listBanks: (c) => real.listBanks(c),
    resolveAccountName: (q) => real.resolveAccountName(q),
    walletBalance: (c) => real.walletBalance(c),
    refund: (r) => real.refund(r),
    refundStatus: (ref) => real.refundStatus(ref),
    refundsOf: (ref) => real.refundsOf(ref),
  };
}

async function setup(
  sandboxOpts: SandboxOptionsInput,
  env: Record<string, string> = {},
): Promise<{ sandbox: Sandbox; h: SubsHarness }> {
  const sandbox = await startTestSandbox({ cardFlow: '3ds2', ...sandboxOpts });
  opened.push(sandbox);
  const h = await startSubsHarness({
    sandboxUrl: sandbox.url,
    start: START,
    gateway: withAuthorization,
    // The tests move the (manual) clock on by days while a challenge waits; a window that long
    // keeps the payment `requires_action` meanwhile (what the window's end does is payments').
    env: { REQUIRES_ACTION_WINDOW: '20d', ...env },
  });
  opened.push(h);
  return { sandbox, h };
}

/** A daily subscription whose first period starts an hour before the harness clock. */
async function createDaily(h: SubsHarness, id: string) {
  const res = await createSubscriptionFromBody(h.service, {
    id,
    customer_email: 'ada@example.com',
    card_token: 'tok_card_secret_3ds',
    amount: '1500',
    currency: 'NGN',
    interval: 'day',
    interval_count: 1,
    anchor: '2025-02-01T08:00:00Z',
    timezone: 'UTC',
  });
  if (res.status !== 'created') throw new Error(`create failed: ${JSON.stringify(res)}`);
}

const keyOf = (id: string, ymd: string) => `sub_${id}_${ymd}` as IntentKey;

/** Waits until the intent of `key` is on `attempt` in `state`. */
function intentIn(h: SubsHarness, key: IntentKey, attempt: number, state: string) {
  return until(() => h.app.store.get(key), {
    done: (i: Intent | undefined) => i?.attempt === attempt && i.state === state,
    what: `${key} attempt ${attempt} ${state}`,
    timeoutMs: 10_000,
  }) as Promise<Intent>;
}

/** Waits until the subscription's billing is held by `key`'s `attempt` in `state`. */
async function heldBy(h: SubsHarness, id: string, key: IntentKey, attempt: number, state: string) {
  const sub = await until(async () => (await h.subs.get(id))?.sub, {
    done: (s) => {
      const hold = s?.openCharges.find((c) => c.hold)?.hold;
      return (
        s?.openCharges.find((c) => c.hold)?.key === key &&
        hold?.attempt === attempt &&
        hold.state === state
      );
    },
    what: `${id} held by ${key} attempt ${attempt} (${state})`,
    timeoutMs: 10_000,
  });
  return sub!;
}

/**
 * The payer ends the challenge of `reference`; then the check the webhook intake enqueues when
 * Sayswitch's webhook for it arrives.
 */
async function endChallenge(
  sandbox: Sandbox,
  h: SubsHarness,
  key: IntentKey,
  attempt: number,
  action: ThreeDsAction,
) {
  const intent = await intentIn(h, key, attempt, 'requires_action');
  expect(sandbox.authenticate(intent.reference, action).status).toBe(200);
  await h.app.dispatcher.reconcile(intent, { delayMs: 0, cause: 'webhook', runId: action });
}

/** Events a person's action causes (created, paused, …): not what these tests follow. */
const LIFECYCLE = new Set([
  'subscription.created',
  'subscription.updated',
  'subscription.paused',
  'subscription.resumed',
]);

/** Billing events of subscription `id` (holds, dunning, renewals, cancel), as `[type, id]`. */
async function subEvents(h: SubsHarness, id: string) {
  return (await h.events())
    .filter(
      (e) =>
        e.type.startsWith('subscription.') &&
        !LIFECYCLE.has(e.type) &&
        e.data.subscriptionId === id,
    )
    .map((e) => [e.type, e.id]);
}

/**
 * The ledger of one subscription: per reference its status, moves and authentication; asserts
 * that money moved at most once per reference and at most once per period.
 */
function ledgerOf(sandbox: Sandbox, id: string) {
  const { references, activity } = sandbox.ledger();
  const refs = Object.keys(activity)
    .filter((r) => r.startsWith(`sub_${id}_`))
    .sort();
  const movedPerKey = new Map<string, number>();
  const rows = refs.map((ref) => {
    const a = activity[ref]!;
    expect(a.moves, `${ref} moves`).toBeLessThanOrEqual(1);
    const key = ref.replace(/_\d+$/, '');
    movedPerKey.set(key, (movedPerKey.get(key) ?? 0) + a.moves - a.reversals);
    return [ref, references[ref]?.status, a.moves, a.authentication] as const;
  });
  for (const [key, n] of movedPerKey) expect(n, `${key} charged`).toBeLessThanOrEqual(1);
  return rows;
}

describe('a renewal behind a 3-D Secure challenge', () => {
  it('holds billing awaiting the customer; completed, it renews and the held periods are billed after', async () => {
    const { sandbox, h } = await setup({ threeDsExpiryMs: 600_000 });
    const id = '3ds-ok';
    await createDaily(h, id);
    expect(await h.tick()).toMatchObject({ created: 1 });
    const k1 = keyOf(id, '20250201');
    await intentIn(h, k1, 1, 'requires_action');
    await heldBy(h, id, k1, 1, 'requires_action');

    // The merchant has the link for the customer in payment.requires_action; the subscription
    // says its billing is held awaiting the customer.
    const events = await h.events();
    const challenge = events.find((e) => e.type === 'payment.requires_action');
    expect(challenge?.data).toMatchObject({ key: k1, reference: `${k1}_1`, subscriptionId: id });
    expect(String(challenge?.data.authorizationUrl)).toContain(`/__sandbox/3ds/${k1}_1`);
    expect(await showSubscription(h.service, id)).toMatchObject({
      status: 'active',
      next_charge_at: null,
      billing_held: {
        key: k1,
        reference: `${k1}_1`,
        state: 'requires_action',
        awaiting: 'customer',
      },
    });

    // Two days pass without the customer: nothing is charged on top.
    h.clock.advance(2 * DAY);
    expect(await h.tick()).toMatchObject({ created: 0 });
    expect(await h.tick()).toMatchObject({ created: 0 });

    await endChallenge(sandbox, h, k1, 1, 'complete');
    await until(async () => (await h.subs.get(id))?.sub.currentPeriod?.index === 0, {
      what: `${id} renewed`,
      timeoutMs: 10_000,
    });
    const renewed = (await h.subs.get(id))!.sub;
    expect(renewed).toMatchObject({
      status: 'active',
      openCharges: [],
      reusableAuthorization: { key: k1, attempt: 1 },
    });
    const view = await showSubscription(h.service, id);
    expect(view).toMatchObject({ billing_held: null, reusable_authorization: { key: k1 } });
    // That an authorization exists is recorded; the secret itself stays sealed on the payment.
    expect(JSON.stringify(renewed)).not.toContain(AUTHORIZATION);
    expect(JSON.stringify(await h.events())).not.toContain(AUTHORIZATION);

    // The two days held meanwhile are billed now, oldest first, each its own challenge.
    expect(await h.tick()).toMatchObject({ created: 2, skipped: 0 });
    const [k2, k3] = [keyOf(id, '20250202'), keyOf(id, '20250203')];
    await intentIn(h, k2, 1, 'requires_action');
    await intentIn(h, k3, 1, 'requires_action');
    await heldBy(h, id, k2, 1, 'requires_action');
    await endChallenge(sandbox, h, k2, 1, 'complete');
    await heldBy(h, id, k3, 1, 'requires_action');
    await endChallenge(sandbox, h, k3, 1, 'complete');
    await until(async () => (await h.subs.get(id))?.sub.currentPeriod?.index === 2, {
      what: `${id} renewed through Feb 3`,
      timeoutMs: 10_000,
    });
    expect((await h.subs.get(id))?.sub).toMatchObject({ status: 'active', openCharges: [] });

    expect(ledgerOf(sandbox, id)).toEqual([
      [`${k1}_1`, 'success', 1, 'completed'],
      [`${k2}_1`, 'success', 1, 'completed'],
      [`${k3}_1`, 'success', 1, 'completed'],
    ]);
    expect(await subEvents(h, id)).toEqual([
      ['subscription.billing_held', `evt_${k1}_1_held_requires_action`],
      ['subscription.billing_resumed', `evt_${k1}_1_resumed`],
      ['subscription.renewed', `evt_${k1}_renewed`],
      ...[k2, k3].map((k) => ['subscription.billing_held', `evt_${k}_1_held_requires_action`]),
      ...[k2, k3].flatMap((k) => [
        ['subscription.billing_resumed', `evt_${k}_1_resumed`],
        ['subscription.renewed', `evt_${k}_renewed`],
      ]),
    ]);
  });

  it('a challenge left past REQUIRES_ACTION_WINDOW is an ordinary pending payment: still held, awaiting the gateway', async () => {
    const { sandbox, h } = await setup(
      { threeDsExpiryMs: 600_000 },
      { REQUIRES_ACTION_WINDOW: '1h' },
    );
    const id = '3ds-late';
    await createDaily(h, id);
    await h.tick();
    const k1 = keyOf(id, '20250201');
    await heldBy(h, id, k1, 1, 'requires_action');
    // The window passes; the next check (one now, as the sweep would) finds the gateway still
    // pending.
    h.clock.advance(2 * 3_600_000);
    const waiting = await intentIn(h, k1, 1, 'requires_action');
    await h.app.dispatcher.reconcile(waiting, { delayMs: 0, cause: 'manual', runId: 'late' });
    await heldBy(h, id, k1, 1, 'pending');
    expect(await showSubscription(h.service, id)).toMatchObject({
      billing_held: { key: k1, state: 'pending', awaiting: 'gateway' },
    });
    h.clock.advance(DAY);
    expect(await h.tick()).toMatchObject({ created: 0 });
    // The customer completes it late all the same: renewed, then the held day is billed.
    expect(sandbox.authenticate(`${k1}_1`, 'complete').status).toBe(200);
    const intent = await intentIn(h, k1, 1, 'pending');
    await h.app.dispatcher.reconcile(intent, { delayMs: 0, cause: 'webhook', runId: 'complete' });
    await until(async () => (await h.subs.get(id))?.sub.currentPeriod?.index === 0, {
      what: `${id} renewed`,
      timeoutMs: 10_000,
    });
    expect(await h.tick()).toMatchObject({ created: 1 });
    expect((await subEvents(h, id)).slice(0, 4)).toEqual([
      ['subscription.billing_held', `evt_${k1}_1_held_requires_action`],
      ['subscription.billing_held', `evt_${k1}_1_held_pending`],
      ['subscription.billing_resumed', `evt_${k1}_1_resumed`],
      ['subscription.renewed', `evt_${k1}_renewed`],
    ]);
    expect(ledgerOf(sandbox, id)[0]).toEqual([`${k1}_1`, 'success', 1, 'completed']);
  });

  it('failed: dunning starts; the retry is a new challenge, and no attempt is opened while it is unresolved', async () => {
    const { sandbox, h } = await setup({ threeDsExpiryMs: 600_000 }, { DUNNING_SCHEDULE: '50ms' });
    const id = '3ds-fail';
    await createDaily(h, id);
    await h.tick();
    const k1 = keyOf(id, '20250201');
    await heldBy(h, id, k1, 1, 'requires_action');

    await endChallenge(sandbox, h, k1, 1, 'fail');
    // The gateway said failed: past_due, and the retry (50 ms) opens attempt 2, a new challenge.
    await intentIn(h, k1, 2, 'requires_action');
    const held = await heldBy(h, id, k1, 2, 'requires_action');
    expect(held).toMatchObject({
      status: 'past_due',
      dunning: [{ key: k1, attempt: 1, step: 0, reason: 'authentication_required' }],
    });

    // While attempt 2 waits for the customer, nothing opens attempt 3: not a tick days later, not
    // the retry re-scheduled at once by a pause and resume.
    h.clock.advance(3 * DAY);
    expect(await h.tick()).toMatchObject({ created: 0 });
    await applyAction(h.service, id, 'pause');
    await applyAction(h.service, id, 'resume');
    const queue = h.app.dispatcher.queue('subscriptions');
    const jobId = dunningJobId({ key: k1, step: 0, resumes: 1 });
    await until(async () => (await queue.getJob(jobId))?.finishedOn !== undefined, {
      what: `dunning job ${jobId} finished`,
      timeoutMs: 10_000,
    });
    expect((await queue.getJob(jobId))?.returnvalue).toMatchObject({
      skipped: 'already_opened',
      state: 'requires_action',
      attempt: 2,
    });
    expect(await h.app.store.get(k1)).toMatchObject({ attempt: 2, state: 'requires_action' });
    expect(sandbox.ledger().activity[`${k1}_3`]).toBeUndefined();

    // The customer completes the retry's challenge: renewed, and billing resumes with the days
    // that came due meanwhile (the resume moved billing on to the period containing it).
    await endChallenge(sandbox, h, k1, 2, 'complete');
    await until(async () => (await h.subs.get(id))?.sub.status === 'active', {
      what: `${id} active`,
      timeoutMs: 10_000,
    });
    expect((await h.subs.get(id))?.sub).toMatchObject({ dunning: [], openCharges: [] });
    expect((await h.tick()).created).toBeGreaterThan(0);

    expect(ledgerOf(sandbox, id).filter(([ref]) => ref.startsWith(k1))).toEqual([
      [`${k1}_1`, 'failed', 0, 'failed'],
      [`${k1}_2`, 'success', 1, 'completed'],
    ]);
    expect((await subEvents(h, id)).slice(0, 5)).toEqual([
      ['subscription.billing_held', `evt_${k1}_1_held_requires_action`],
      ['subscription.billing_resumed', `evt_${k1}_1_resumed`],
      ['subscription.past_due', `evt_${k1}_1_past_due`],
      ['subscription.billing_held', `evt_${k1}_2_held_requires_action`],
      ['subscription.billing_resumed', `evt_${k1}_2_resumed`],
    ]);
    const failure = (await h.events()).find((e) => e.id === `evt_${k1}_1_failed`);
    expect(failure?.data).toMatchObject({ reason: 'authentication_required' });
  });

  it('abandoned: every retry is a new challenge; abandoned each time, dunning is exhausted and the subscription canceled', async () => {
    const { sandbox, h } = await setup(
      { threeDsExpiryMs: 600_000 },
      { DUNNING_SCHEDULE: '50ms,100ms' },
    );
    const id = '3ds-abandon';
    await createDaily(h, id);
    await h.tick();
    const k1 = keyOf(id, '20250201');
    for (let attempt = 1; attempt <= 3; attempt++) {
      await heldBy(h, id, k1, attempt, 'requires_action');
      // Unresolved: the next attempt does not exist, and a tick a day later bills nothing.
      expect(sandbox.ledger().activity[`${k1}_${attempt + 1}`]).toBeUndefined();
      h.clock.advance(DAY);
      expect(await h.tick()).toMatchObject({ created: 0 });
      await endChallenge(sandbox, h, k1, attempt, 'abandon');
    }
    await until(async () => (await h.subs.get(id))?.sub.status === 'canceled', {
      what: `${id} canceled`,
      timeoutMs: 10_000,
    });
    expect((await h.subs.get(id))?.sub).toMatchObject({
      cancelReason: 'dunning_exhausted',
      dunning: [],
      openCharges: [],
    });
    expect(ledgerOf(sandbox, id)).toEqual([
      [`${k1}_1`, 'failed', 0, 'abandoned'],
      [`${k1}_2`, 'failed', 0, 'abandoned'],
      [`${k1}_3`, 'failed', 0, 'abandoned'],
    ]);
    expect(await subEvents(h, id)).toEqual([
      ...[1, 2].flatMap((n) => [
        ['subscription.billing_held', `evt_${k1}_${n}_held_requires_action`],
        ['subscription.billing_resumed', `evt_${k1}_${n}_resumed`],
        ['subscription.past_due', `evt_${k1}_${n}_past_due`],
      ]),
      ['subscription.billing_held', `evt_${k1}_3_held_requires_action`],
      ['subscription.billing_resumed', `evt_${k1}_3_resumed`],
      ['subscription.canceled', `evt_sub_${id}_canceled`],
    ]);
    h.clock.advance(5 * DAY);
    expect((await h.tick()).due).toBe(0);
  });

  it('expired: nobody answers, the gateway fails each challenge when it expires, and dunning runs its course', async () => {
    // Expiry in (real) milliseconds; the reconciler's own checks find each failure.
    const { sandbox, h } = await setup(
      { threeDsExpiryMs: 150 },
      { DUNNING_SCHEDULE: '50ms', DUNNING_EXHAUSTED: 'past_due' },
    );
    const id = '3ds-expire';
    await createDaily(h, id);
    await h.tick();
    const k1 = keyOf(id, '20250201');
    // Attempt 1 expires, the retry's attempt 2 expires: the period is written off.
    await until(async () => (await h.subs.get(id))?.sub.delinquent === true, {
      what: `${id} written off`,
      timeoutMs: 20_000,
    });
    expect((await h.subs.get(id))?.sub).toMatchObject({
      status: 'past_due',
      dunning: [],
      openCharges: [],
    });
    expect(ledgerOf(sandbox, id)).toEqual([
      [`${k1}_1`, 'failed', 0, 'expired'],
      [`${k1}_2`, 'failed', 0, 'expired'],
    ]);
    const failures = (await h.events()).filter(
      (e) => e.type === 'payment.failed' && e.data.subscriptionId === id,
    );
    expect(failures.map((e) => e.data.reason)).toEqual([
      'authentication_required',
      'authentication_required',
    ]);
    expect(await subEvents(h, id)).toEqual([
      ['subscription.billing_held', `evt_${k1}_1_held_requires_action`],
      ['subscription.billing_resumed', `evt_${k1}_1_resumed`],
      ['subscription.past_due', `evt_${k1}_1_past_due`],
      ['subscription.billing_held', `evt_${k1}_2_held_requires_action`],
      ['subscription.billing_resumed', `evt_${k1}_2_resumed`],
      ['subscription.past_due', `evt_${k1}_2_past_due`],
    ]);
    // Written off, billing goes on: the next day is a new challenge, held again.
    h.clock.advance(DAY);
    expect(await h.tick()).toMatchObject({ created: 1 });
    await heldBy(h, id, keyOf(id, '20250202'), 1, 'requires_action');
  });
});
