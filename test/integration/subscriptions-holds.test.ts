/**
 * Unresolved renewals (docs/subscriptions.md "Unresolved renewals"): a renewal whose payment is
 * `unknown`, `pending`, `requires_action` or `needs_review` may have moved money, so
 * - a dunning retry never opens a new attempt after it (only the gateway's own `failed` allows
 *   one), and
 * - no new period is charged on top of it: the subscription's billing is held, says so, and
 *   resumes with the held periods once the payment is final.
 * The real workers and reconciler against the sandbox, the subscriptions scheduler role, and a
 * manual clock. The sandbox ledger is the truth of what money moved.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import type { GatewayOutcome, PaymentGateway } from '../../src/kernel/ports.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { amountMinor } from '../../src/kernel/money.ts';
import { periodStart, type Schedule } from '../../src/subscriptions/calendar.ts';
import { enqueueDunningRetries, dunningJobId } from '../../src/subscriptions/jobs.ts';
import { periodKey } from '../../src/subscriptions/periods.ts';
import { createSubscription } from '../../src/subscriptions/record.ts';
import { createSubscriptionFromBody, showSubscription } from '../../src/subscriptions/service.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { startSubsHarness, type SubsHarness } from '../support/subscription-harness.ts';

const DAY = 86_400_000;
const START = Date.parse('2025-02-01T09:00:00Z');
/** Reconcile checks only when a test asks for one: no scheduled check or sweep runs meanwhile. */
const MANUAL_RECONCILE = { RECONCILE_SCHEDULE: '1h', RECONCILE_CRON: '0 0 1 1 *' };
const SCHEDULE: Schedule = {
  anchor: '2025-02-01T08:00:00Z',
  timezone: 'UTC',
  interval: 'day',
  intervalCount: 1,
};

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of opened.reverse()) await c.close();
  opened.length = 0;
});

async function setup(
  opts: { env?: Record<string, string>; gateway?: (real: PaymentGateway) => PaymentGateway } = {},
): Promise<{ sandbox: Sandbox; h: SubsHarness }> {
  const sandbox = await startTestSandbox();
  opened.push(sandbox);
  const h = await startSubsHarness({ sandboxUrl: sandbox.url, start: START, ...opts });
  opened.push(h);
  return { sandbox, h };
}

async function createDaily(h: SubsHarness, id: string, amount = '1500') {
  const res = await createSubscriptionFromBody(h.service, {
    id,
    customer_email: 'ada@example.com',
    card_token: 'tok_card_secret_hold',
    amount,
    currency: 'NGN',
    interval: 'day',
    interval_count: 1,
    anchor: '2025-02-01T08:00:00Z',
    timezone: 'UTC',
  });
  if (res.status !== 'created') throw new Error(`create failed: ${JSON.stringify(res)}`);
  return res.subscription;
}

const keyOf = (id: string, ymd: string) => `sub_${id}_${ymd}` as IntentKey;

function intentIn(h: SubsHarness, key: IntentKey, attempt: number, state: string) {
  return until(() => h.app.store.get(key), {
    done: (i: Intent | undefined) => i?.attempt === attempt && i.state === state,
    what: `${key} attempt ${attempt} ${state}`,
    timeoutMs: 10_000,
  }) as Promise<Intent>;
}

/** Asks the gateway about `key` now (as a scheduled check, the sweep or a webhook would). */
async function checkNow(h: SubsHarness, key: IntentKey, runId: string) {
  const intent = await h.app.store.get(key);
  if (!intent) throw new Error(`no intent ${key}`);
  await h.app.dispatcher.reconcile(intent, { delayMs: 0, cause: 'manual', runId });
}

/** Every reference of the subscription in the ledger: at most one move each, one per period. */
function ledgerOf(sandbox: Sandbox, id: string) {
  const { activity } = sandbox.ledger();
  const refs = Object.keys(activity)
    .filter((r) => r.startsWith(`sub_${id}_`))
    .sort();
  const moved = new Map<string, number>();
  for (const ref of refs) {
    expect(activity[ref]!.moves, `${ref} moves`).toBeLessThanOrEqual(1);
    const key = ref.replace(/_\d+$/, '');
    moved.set(key, (moved.get(key) ?? 0) + activity[ref]!.moves);
  }
  for (const [key, n] of moved) expect(n, `${key} charged`).toBeLessThanOrEqual(1);
  return refs.map((ref) => [ref, activity[ref]!.moves] as const);
}

/** The billing events of subscription `id` (its lifecycle's `subscription.created` left out). */
async function subEvents(h: SubsHarness, id: string) {
  return (await h.events())
    .filter(
      (e) =>
        e.type.startsWith('subscription.') &&
        e.type !== 'subscription.created' &&
        e.data.subscriptionId === id,
    )
    .map((e) => [e.type, e.id]);
}

describe('a dunning retry opens a new attempt only after the gateway said failed', () => {
  /**
   * A subscription in dunning for its first period (attempt 1 failed, retry step 0 due) whose
   * intent was driven, through the intent store's own transitions, along `path` first. The record
   * is stored only once the outcome consumer has seen those transitions' events (for a
   * subscription it did not know yet), so no retry but the test's own runs.
   */
  async function inDunning(h: SubsHarness, id: string, path: string[]) {
    const sub = createSubscription(
      {
        id,
        customerEmail: 'ada@example.com',
        cardTokenSealed: h.app.sealer.seal('tok_card_secret_hold'),
        amount: amountMinor(150_000),
        currency: 'NGN',
        schedule: SCHEDULE,
        metadata: {},
      },
      START,
    );
    const key = periodKey(sub, 0);
    await h.app.store.create(
      {
        key,
        type: 'charge',
        origin: 'subscription',
        amount: sub.amount,
        currency: sub.currency,
        subscriptionId: id,
        payee: { kind: 'charge', email: sub.customerEmail, cardTokenSealed: sub.cardTokenSealed },
      },
      START,
    );
    for (const to of path) {
      const cur = (await h.app.store.get(key))!;
      const res = await h.app.store.transition(key, to as Intent['state'], START, {
        expectAttempt: cur.attempt,
        ...(to === 'submitting' ? { patch: { leaseUntil: START + 60_000 } } : {}),
        ...(cur.state === 'failed' ? { newAttempt: true } : {}),
      });
      if (!res.ok) throw new Error(`${key}: ${cur.state} → ${to} refused (${res.why})`);
    }
    await h.drained();
    const created = await h.subs.create({
      ...sub,
      status: 'past_due',
      nextPeriod: 1,
      nextPeriodStart: periodStart(SCHEDULE, 1),
      dunning: [
        { key, period: 0, attempt: 1, step: 0, failedAt: START, dueAt: START, reason: 'declined' },
      ],
    });
    expect(created.created).toBe(true);
    return key;
  }

  /** Runs retry step 0 of `key` through the real `subscriptions.dunning` job; its return value. */
  async function runRetry(h: SubsHarness, id: string, key: IntentKey, run: number) {
    const retry = { subscriptionId: id, key, step: 0, dueAt: START, resumes: run };
    await enqueueDunningRetries(h.app.dispatcher, [retry], h.clock.now());
    const queue = h.app.dispatcher.queue('subscriptions');
    const jobId = dunningJobId(retry);
    await until(async () => (await queue.getJob(jobId))?.finishedOn !== undefined, {
      what: `dunning job ${jobId} finished`,
      timeoutMs: 10_000,
    });
    return (await queue.getJob(jobId))?.returnvalue as unknown;
  }

  const UNRESOLVED: [string, string[]][] = [
    ['unknown', ['submitting', 'unknown']],
    ['pending', ['submitting', 'pending']],
    ['requires_action', ['submitting', 'requires_action']],
    ['needs_review', ['submitting', 'unknown', 'needs_review']],
  ];

  it('opens no attempt while the previous one is unknown, pending, requires_action or needs_review', async () => {
    const { sandbox, h } = await setup();
    for (const [state, path] of UNRESOLVED) {
      const id = `dun-${state.replace('_', '-')}`;
      const key = await inDunning(h, id, path);
      // Attempt 1 itself unresolved (whatever armed the retry): nothing is opened.
      expect(await runRetry(h, id, key, 1)).toEqual({ skipped: 'not_failed', state, attempt: 1 });
      expect(await h.app.store.get(key)).toMatchObject({ attempt: 1, state });
    }
    for (const [state, path] of UNRESOLVED) {
      const id = `dun2-${state.replace('_', '-')}`;
      // Attempt 1 failed and attempt 2 is open and unresolved: a late or repeated retry opens no 3.
      const key = await inDunning(h, id, ['submitting', 'failed', 'queued', ...path]);
      expect(await runRetry(h, id, key, 1)).toEqual({
        skipped: 'already_opened',
        state,
        attempt: 2,
      });
      expect(await h.app.store.get(key)).toMatchObject({ attempt: 2, state });
    }
    expect(await h.app.store.countByState()).toMatchObject({ queued: 0, submitting: 0 });
    expect(Object.keys(sandbox.ledger().activity)).toEqual([]);

    // The control: attempt 1 failed by the gateway's word, the retry opens attempt 2 and charges
    // it; renewed, the subscription leaves dunning, and the same retry run again opens nothing.
    const key = await inDunning(h, 'dun-failed', ['submitting', 'failed']);
    expect(await runRetry(h, 'dun-failed', key, 1)).toEqual({ submitted: `${key}_2` });
    await intentIn(h, key, 2, 'succeeded');
    await until(async () => (await h.subs.get('dun-failed'))?.sub.status === 'active', {
      what: 'dun-failed renewed',
      timeoutMs: 10_000,
    });
    expect(await runRetry(h, 'dun-failed', key, 2)).toEqual({ skipped: 'stale' });
    expect(ledgerOf(sandbox, 'dun-failed')).toEqual([[`${key}_2`, 1]]);
  });
});

describe('an unresolved renewal holds billing', () => {
  it('money moved but the answer was lost (unknown): no period on top, no dunning, no second attempt; billing resumes once the gateway says succeeded', async () => {
    // 54: the sandbox moves the money, then answers HTTP 500.
    const { sandbox, h } = await setup({ env: MANUAL_RECONCILE });
    const id = 'lost-answer';
    await createDaily(h, id, '15.54');
    expect(await h.tick()).toMatchObject({ created: 1 });
    const k1 = keyOf(id, '20250201');
    await intentIn(h, k1, 1, 'unknown');

    // Days pass while nobody knows: every tick finds the renewal unresolved and bills nothing.
    h.clock.advance(DAY);
    expect(await h.tick()).toMatchObject({ due: 1, created: 0, held: 1 });
    h.clock.advance(DAY);
    expect(await h.tick()).toMatchObject({ due: 0, created: 0 });
    const held = (await h.subs.get(id))!.sub;
    expect(held).toMatchObject({
      status: 'active',
      dunning: [],
      openCharges: [{ key: k1, period: 0, hold: { state: 'unknown', attempt: 1 } }],
    });
    expect(await showSubscription(h.service, id)).toMatchObject({
      billing_held: { key: k1, reference: `${k1}_1`, state: 'unknown', awaiting: 'gateway' },
      next_charge_at: null,
    });
    expect(await subEvents(h, id)).toEqual([
      ['subscription.billing_held', `evt_${k1}_1_held_unknown`],
    ]);

    // The gateway says it succeeded: renewed, and the two held days are billed, oldest first.
    await checkNow(h, k1, 'a');
    await until(async () => (await h.subs.get(id))?.sub.currentPeriod?.index === 0, {
      what: `${id} renewed`,
      timeoutMs: 10_000,
    });
    expect(await h.tick()).toMatchObject({ created: 2 });
    const [k2, k3] = [keyOf(id, '20250202'), keyOf(id, '20250203')];
    await intentIn(h, k2, 1, 'unknown');
    await intentIn(h, k3, 1, 'unknown');
    h.clock.advance(DAY);
    expect(await h.tick()).toMatchObject({ created: 0, held: 1 });
    expect((await h.subs.get(id))!.sub.openCharges.map((c) => [c.key, c.hold?.state])).toEqual([
      [k2, 'unknown'],
      [k3, 'unknown'],
    ]);
    await checkNow(h, k2, 'b');
    await checkNow(h, k3, 'b');
    await until(async () => (await h.subs.get(id))?.sub.currentPeriod?.index === 2, {
      what: `${id} renewed through Feb 3`,
      timeoutMs: 10_000,
    });
    expect((await h.subs.get(id))!.sub).toMatchObject({ openCharges: [], dunning: [] });

    expect(ledgerOf(sandbox, id)).toEqual([
      [`${k1}_1`, 1],
      [`${k2}_1`, 1],
      [`${k3}_1`, 1],
    ]);
    const types = await subEvents(h, id);
    expect(types.slice(0, 5)).toEqual([
      ['subscription.billing_held', `evt_${k1}_1_held_unknown`],
      ['subscription.billing_resumed', `evt_${k1}_1_resumed`],
      ['subscription.renewed', `evt_${k1}_renewed`],
      ['subscription.billing_held', `evt_${k2}_1_held_unknown`],
      ['subscription.billing_held', `evt_${k3}_1_held_unknown`],
    ]);
    // k2 and k3 resolve in either order.
    expect(types.slice(5)).toEqual(
      expect.arrayContaining(
        [k2, k3].flatMap((k) => [
          ['subscription.billing_resumed', `evt_${k}_1_resumed`],
          ['subscription.renewed', `evt_${k}_renewed`],
        ]),
      ),
    );
    expect(types).toHaveLength(9);
  });

  it('needs_review holds until the payment is settled by hand; settled as failed, dunning starts', async () => {
    // The gateway never answers the first attempt: pending at submission and on every check.
    const reference = `${keyOf('in-review', '20250201')}_1`;
    const silent = (real: PaymentGateway): PaymentGateway => ({
      chargeCard: (req) =>
        req.reference === reference
          ? Promise.resolve<GatewayOutcome>({ status: 'pending', reference })
          : real.chargeCard(req),
      verifyCharge: (ref) =>
        ref === reference
          ? Promise.resolve<GatewayOutcome>({ status: 'pending', reference })
          : real.verifyCharge(ref),
      payout: (req) => real.payout(req),
      lookupPayout: (ref) => real.lookupPayout(ref),
      listBanks: (c) => real.listBanks(c),
      resolveAccountName: (q) => real.resolveAccountName(q),
      walletBalance: (c) => real.walletBalance(c),
      refund: (r) => real.refund(r),
      refundStatus: (ref) => real.refundStatus(ref),
      refundsOf: (ref) => real.refundsOf(ref),
    });
    const { sandbox, h } = await setup({
      env: { RECONCILE_SCHEDULE: '20ms,20ms', RECONCILE_CRON: '0 0 1 1 *' },
      gateway: silent,
    });
    const id = 'in-review';
    await createDaily(h, id);
    await h.tick();
    const k1 = keyOf(id, '20250201');
    await intentIn(h, k1, 1, 'needs_review');
    await until(
      async () => (await h.subs.get(id))?.sub.openCharges[0]?.hold?.state === 'needs_review',
      { what: `${id} held by needs_review`, timeoutMs: 10_000 },
    );
    expect(await showSubscription(h.service, id)).toMatchObject({
      status: 'active',
      billing_held: { key: k1, state: 'needs_review', awaiting: 'operator' },
    });
    // A week of ticks: nothing billed, no dunning, no second attempt.
    for (let d = 0; d < 7; d++) {
      h.clock.advance(DAY);
      expect(await h.tick()).toMatchObject({ created: 0 });
    }
    expect((await h.subs.get(id))!.sub).toMatchObject({ status: 'active', dunning: [] });
    expect(await h.app.store.get(k1)).toMatchObject({ attempt: 1, state: 'needs_review' });

    // An operator settles it: the gateway confirms it failed. Dunning starts as for any failure.
    const res = await h.app.store.transition(k1, 'failed', h.clock.now(), {
      expectAttempt: 1,
      patch: { reason: 'declined' },
      reason: 'operator',
    });
    expect(res.ok).toBe(true);
    // The retry's attempt 2 reaches the sandbox and is paid; the held week is billed after.
    await intentIn(h, k1, 2, 'succeeded');
    await until(async () => (await h.subs.get(id))?.sub.status === 'active', {
      what: `${id} active again`,
      timeoutMs: 10_000,
    });
    await until(async () => (await h.subs.get(id))?.sub.dunning.length === 0, {
      what: `${id} out of dunning`,
      timeoutMs: 10_000,
    });
    expect(await h.tick()).toMatchObject({ created: 7, skipped: 0 });
    await h.settle();

    expect(await subEvents(h, id)).toEqual(
      expect.arrayContaining([
        ['subscription.billing_held', `evt_${k1}_1_held_pending`],
        ['subscription.billing_held', `evt_${k1}_1_held_needs_review`],
        ['subscription.billing_resumed', `evt_${k1}_1_resumed`],
        ['subscription.past_due', `evt_${k1}_1_past_due`],
        ['subscription.renewed', `evt_${k1}_renewed`],
      ]),
    );
    const refs = ledgerOf(sandbox, id);
    expect(refs[0]).toEqual([`${k1}_2`, 1]);
    expect(refs).toHaveLength(8);
    expect(
      refs.every(([ref, moves]) => moves === 1 && (ref === `${k1}_2` || ref.endsWith('_1'))),
    ).toBe(true);
  });
});
