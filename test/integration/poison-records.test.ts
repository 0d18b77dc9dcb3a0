/**
 * One record the code cannot read (written by another version, hand-edited, half-written) does
 * not stop the loops that walk records: the subscription tick, the reconcile sweep (and its
 * resume of held batches), the subscription and batch lists, a test clock's advance and the
 * restart of advancing clocks skip it, log an error line naming it (never its content), and go
 * on with the others; the tick skips a subscription whose open charge it cannot read, never
 * billing on top of it. The poison records are written straight into Redis next to healthy ones
 * made through the services. Real Redis, a sandbox, no roles (the loops are run here). `billing
 * keys reseal` and `billing payments reindex`: poison-records-cli.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptionsDeps, sweepDeps } from '../../src/app/composition.ts';
import { submitBatch } from '../../src/batches/ingest.ts';
import { listBatches } from '../../src/batches/list.ts';
import { approveBatch } from '../../src/batches/operations.ts';
import { batchKeys } from '../../src/batches/store/batch-store.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { runSweep } from '../../src/payments/sweep.ts';
import { kickAdvancingClocks, runClockStep } from '../../src/subscriptions/clock-runner.ts';
import { advanceTestClock, createTestClock } from '../../src/subscriptions/clocks-service.ts';
import { subscriptionKeys } from '../../src/subscriptions/store/subscription-store.ts';
import { listSubscriptions, subscriptionServiceDeps } from '../../src/subscriptions/service.ts';
import { clockJobId } from '../../src/subscriptions/test-clocks.ts';
import { runTick } from '../../src/subscriptions/tick.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { unresolvedTestCharge } from '../support/intents.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

let sandbox: Sandbox;
let t: TestApp;
const lines: Record<string, unknown>[] = [];

/** An app without roles on the sandbox, its log lines in `lines`. */
const openTestApp = () =>
  startTestApp({
    sandboxUrl: sandbox.url,
    roles: [],
    env: { LOG_LEVEL: 'info' },
    logDestination: {
      write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    },
  });

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await openTestApp();
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

/** Error lines that name `field: value`. */
const errorsNaming = (field: string, value: string) =>
  lines.filter((l) => l.level === 'error' && l[field] === value);

/**
 * Writes subscription `id` straight into Redis: `from`'s stored record with `change` applied (or
 * `doc` as it is), due before everything else; on test clock `clock`, else the deployment's.
 */
async function poisonSubscription(
  from: string,
  id: string,
  change: Record<string, unknown> | string,
  clock?: string,
) {
  const k = subscriptionKeys(t.prefix);
  const doc = JSON.parse((await t.app.redis.hget(k.sub(from), 'doc'))!) as Record<string, unknown>;
  const stored = typeof change === 'string' ? change : JSON.stringify({ ...doc, id, ...change });
  await t.app.redis.hset(k.sub(id), 'doc', stored, 'version', 1);
  await t.app.redis.zadd(clock === undefined ? k.due() : k.clockDue(clock), 0, id);
  await t.app.redis.zadd(k.all(), 0, id);
  if (clock !== undefined) await t.app.redis.zadd(k.clockSubs(clock), 0, id);
}

describe('a subscription record the code cannot read', () => {
  it('is skipped and named by the tick and the list; the others are billed and listed', async () => {
    const past = { anchor: '2025-01-31T09:00:00+01:00' };
    for (const id of ['psub-a', 'psub-b']) {
      const res = await createMonthlySubscription(t.app, id, past);
      expect(res.status).toBe('created');
    }
    // A status of a newer version; a time zone this runtime does not know; half-written JSON.
    await poisonSubscription('psub-a', 'psub-0-status', { status: 'trialing' });
    await poisonSubscription('psub-a', 'psub-0-zone', {
      schedule: {
        anchor: '2025-01-31T09:00:00',
        timezone: 'Mars/Olympus_Mons',
        interval: 'month',
        intervalCount: 1,
      },
    });
    await t.app.redis.hset(
      subscriptionKeys(t.prefix).sub('psub-0-half'),
      'doc',
      '{"id":"psub-0-half","cardTokenSealed":"tok_secret_4111',
    );
    await t.app.redis.zadd(subscriptionKeys(t.prefix).due(), 0, 'psub-0-half');
    await t.app.redis.zadd(subscriptionKeys(t.prefix).all(), 0, 'psub-0-half');

    const d = subscriptionsDeps(t.app);
    const now = t.app.clock.now();
    const tick = await runTick(
      {
        subs: d.subs,
        intents: d.intents,
        dispatcher: d.dispatcher,
        logger: d.logger,
        catchUpMaxPeriods: d.catchUpMaxPeriods,
      },
      now,
    );
    expect(tick).toMatchObject({ billed: 2, failed: 3 });
    for (const id of ['psub-a', 'psub-b']) {
      const sub = (await t.app.subscriptions.get(id))?.sub;
      expect(sub?.claim).toBeUndefined();
      expect(sub?.nextPeriodStart).toBeGreaterThan(now);
    }
    for (const id of ['psub-0-status', 'psub-0-zone', 'psub-0-half'])
      expect(errorsNaming('subscriptionId', id).length).toBeGreaterThan(0);
    // Still due: the operator finds it there, and a fixed record is billed by the next tick.
    expect(await t.app.redis.zscore(subscriptionKeys(t.prefix).due(), 'psub-0-half')).toBe('0');

    // The record the calendar refuses still parses: listed, so an operator sees it. Those that do
    // not parse are left out of the page and named.
    lines.length = 0;
    const listed = await listSubscriptions(subscriptionServiceDeps(t.app), {});
    expect(listed.items.map((s) => s.id)).toEqual(['psub-0-zone', 'psub-a', 'psub-b']);
    for (const id of ['psub-0-status', 'psub-0-half'])
      expect(errorsNaming('subscriptionId', id).length).toBe(1);
    expect(JSON.stringify(lines)).not.toContain('tok_secret_4111');
  });
});

describe('a charge on a test clock the code cannot read', () => {
  it("does not stop the clock's settle: the clock reaches its target, the charge is named", async () => {
    const deps = subscriptionServiceDeps(t.app);
    const clock = await createTestClock(deps, '2025-01-01T00:00:00Z', 'poison charge');
    const res = await createMonthlySubscription(t.app, 'pclk-c', {
      anchor: '2025-01-10T09:00:00+01:00',
      test_clock: clock.id,
    });
    expect(res.status).toBe('created');
    lines.length = 0;
    expect(await advanceTestClock(deps, clock.id, '2025-01-20T00:00:00Z')).toMatchObject({
      status: 'ok',
    });
    const runner = { ...subscriptionsDeps(t.app), clockMaxChecks: 3 };
    const charge = 'sub_pclk-c_20250110';
    const hash = storeKeys(t.prefix).intent(charge);
    let poisoned = false;
    for (let i = 0; i < 60; i++) {
      const c = (await t.app.subscriptions.clocks.get(clock.id))!.clock;
      if (c.status === 'ready') break;
      await runClockStep(runner, { testClock: c.id, seq: c.seq });
      // The renewal's charge, as another version would have written it, once the tick made it.
      if (!poisoned && (await t.app.redis.exists(hash)) === 1) {
        await t.app.redis.hset(hash, 'state', 'disputed');
        poisoned = true;
      }
    }
    expect(poisoned).toBe(true);
    const done = (await t.app.subscriptions.clocks.get(clock.id))!.clock;
    expect(done).toMatchObject({ status: 'ready', frozenTime: Date.parse('2025-01-20T00:00:00Z') });
    const named = errorsNaming('key', charge).filter((l) => l.clock === clock.id);
    expect(named.length).toBeGreaterThan(0);
    expect(named[0]).toMatchObject({ why: 'invalid fields (state: invalid_value)' });
    expect(await t.app.redis.hget(hash, 'state')).toBe('disputed');
  });
});

describe('an open charge the code cannot read', () => {
  // An app of its own: its tick meets only this test's subscriptions.
  let u: TestApp;
  beforeAll(async () => {
    u = await openTestApp();
  });
  afterAll(async () => {
    await u?.close();
  });

  it('skips its subscription, never billed again on top of it; the others are billed', async () => {
    const day = 86_400_000;
    const start = u.app.clock.now();
    const anchor = new Date(start - day).toISOString();
    for (const id of ['pchg-a', 'pchg-b']) {
      const res = await createMonthlySubscription(u.app, id, { anchor });
      expect(res.status).toBe('created');
    }
    const d = subscriptionsDeps(u.app);
    const deps = {
      subs: d.subs,
      intents: d.intents,
      dispatcher: d.dispatcher,
      logger: d.logger,
      catchUpMaxPeriods: d.catchUpMaxPeriods,
    };
    expect(await runTick(deps, start)).toMatchObject({ billed: 2, failed: 0 });
    // pchg-b's charge, still open (queued: nothing runs it here), as another version wrote it.
    const before = (await u.app.subscriptions.get('pchg-b'))!;
    expect(before.sub.openCharges).toHaveLength(1);
    const open = before.sub.openCharges[0]!.key;
    const intent = storeKeys(u.prefix).intent(open);
    await u.app.redis.hset(intent, 'state', 'disputed');
    const stored = await u.app.redis.hgetall(intent);
    const due = subscriptionKeys(u.prefix).due();
    const score = await u.app.redis.zscore(due, 'pchg-b');

    // A month later both are due again. Read as missing, pchg-b's open charge would let the tick
    // bill on top of a charge that may have moved money.
    lines.length = 0;
    const tick = await runTick(deps, start + 35 * day);
    expect(tick).toMatchObject({ due: 2, billed: 1, failed: 1 });
    expect(await u.app.subscriptions.intentKeys('pchg-a', 10)).toHaveLength(2);
    // pchg-b is left as it is: no intent for its next period, its record, its open charge and
    // its place in the due index unchanged (every tick names it again until it is fixed).
    expect(await u.app.subscriptions.intentKeys('pchg-b', 10)).toEqual([open]);
    expect(await u.app.subscriptions.get('pchg-b')).toEqual(before);
    expect(await u.app.redis.hgetall(intent)).toEqual(stored);
    expect(await u.app.redis.zscore(due, 'pchg-b')).toBe(score);
    // One line names both, with what is wrong.
    const named = errorsNaming('subscriptionId', 'pchg-b');
    expect(named).toHaveLength(1);
    expect(named[0]).toMatchObject({ key: open, why: 'invalid fields (state: invalid_value)' });
    expect(errorsNaming('subscriptionId', open)).toHaveLength(0);
  });
});

describe('an intent record the code cannot read', () => {
  it('is skipped and named by the reconcile sweep; the others are checked', async () => {
    const k = storeKeys(t.prefix);
    const healthy = [
      await unresolvedTestCharge(t.app.store, 'poison-ok-1'),
      await unresolvedTestCharge(t.app.store, 'poison-ok-2'),
    ];
    // A state of a newer version, copied from a healthy intent, due first and listed first.
    const h = await t.app.redis.hgetall(k.intent(healthy[0]!));
    const poison = 'api_poison-state';
    await t.app.redis.hset(k.intent(poison), { ...h, key: poison, state: 'disputed' });
    await t.app.redis.zadd(k.reconcileDue(), 0, poison);
    for (const key of healthy) await t.app.redis.zadd(k.reconcileDue(), 1, key);

    const swept = await runSweep(sweepDeps(t.app));
    expect(swept.due).toBe(2);
    expect(errorsNaming('key', poison).length).toBeGreaterThan(0);
    expect(JSON.stringify(errorsNaming('key', poison))).toContain('state: invalid_value');
  });
});

describe('a batch record the code cannot read', () => {
  it('is left out of the batch list and named; the others are listed', async () => {
    const k = batchKeys(t.prefix);
    for (const id of ['pbat-a', 'pbat-b']) {
      const res = await submitBatch(t.app, {
        input: `reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n${id}-1,0123456789,058,GTBank,Ada Okafor,15.00,NGN,poison test\n`,
        type: 'payout',
        id,
      });
      expect(res.batch?.id).toBe(id);
    }
    // Copies of a healthy batch, the newest: a state of a newer version, half-written totals, a
    // creation time no date can show.
    const h = await t.app.redis.hgetall(k.batch('pbat-a'));
    const newest = Number(h.createdAt) + 60_000;
    const poison: [string, Record<string, string>][] = [
      ['pbat-0-state', { state: 'paused' }],
      ['pbat-0-half', { totals: '{"NGN":{"rows":1,"note":"tok_secret_4111' }],
      ['pbat-0-date', { createdAt: '9000000000000000' }],
    ];
    for (const [id, change] of poison) {
      await t.app.redis.hset(k.batch(id), { ...h, id, ...change });
      await t.app.redis.zadd(k.byCreated(), newest, id);
    }

    lines.length = 0;
    const listed = await listBatches(t.app, { limit: 50 });
    expect(listed.data.map((b) => b.id)).toEqual(['pbat-b', 'pbat-a']);
    for (const [id] of poison) expect(errorsNaming('batchId', id).length).toBe(1);
    expect(JSON.stringify(errorsNaming('batchId', 'pbat-0-state'))).toContain(
      'state: invalid_value',
    );
    expect(JSON.stringify(lines)).not.toContain('tok_secret_4111');
    // Left as they are, still listed by the index.
    expect(await t.app.redis.hget(k.batch('pbat-0-state'), 'state')).toBe('paused');
    expect(await t.app.redis.zscore(k.byCreated(), 'pbat-0-half')).toBe(String(newest));
  });
});

describe('a subscription on a test clock the code cannot read', () => {
  it("does not stop the clock's advance: the others are billed on their dates", async () => {
    const deps = subscriptionServiceDeps(t.app);
    const clock = await createTestClock(deps, '2025-01-01T00:00:00Z', 'poison');
    const anchors = {
      'pclk-a': '2025-01-10T09:00:00+01:00',
      'pclk-b': '2025-01-12T09:00:00+01:00',
    };
    for (const [id, anchor] of Object.entries(anchors)) {
      const res = await createMonthlySubscription(t.app, id, { anchor, test_clock: clock.id });
      expect(res.status).toBe('created');
    }
    await poisonSubscription('pclk-a', 'pclk-0-status', { status: 'trialing' }, clock.id);
    await poisonSubscription(
      'pclk-a',
      'pclk-0-half',
      '{"id":"pclk-0-half","cardTokenSealed":"tok_secret_4111',
      clock.id,
    );

    lines.length = 0;
    expect(await advanceTestClock(deps, clock.id, '2025-01-20T00:00:00Z')).toMatchObject({
      status: 'ok',
    });
    // The chain of steps, run here one after the other (the scheduler role runs them as jobs).
    // Nothing settles the charges here (no roles): at each instant where one is in flight the
    // settle checks again up to its limit, then moves on.
    const runner = { ...subscriptionsDeps(t.app), clockMaxChecks: 3 };
    let instants = 0;
    let checks = 0;
    for (let i = 0; i < 60; i++) {
      const c = (await t.app.subscriptions.clocks.get(clock.id))!.clock;
      if (c.status === 'ready') break;
      if (c.phase === 'settle') {
        checks += 1;
        if (c.checks === 0) instants += 1;
      }
      await runClockStep(runner, { testClock: c.id, seq: c.seq });
    }
    expect(checks).toBeGreaterThan(instants);
    const done = (await t.app.subscriptions.clocks.get(clock.id))!.clock;
    expect(done).toMatchObject({ status: 'ready', frozenTime: Date.parse('2025-01-20T00:00:00Z') });
    for (const key of ['sub_pclk-a_20250110', 'sub_pclk-b_20250112'])
      expect((await t.app.store.get(key))?.key).toBe(key);
    for (const id of ['pclk-0-status', 'pclk-0-half']) {
      const named = errorsNaming('subscriptionId', id);
      expect(named.length).toBeGreaterThan(0);
      // The settle names it too, with the clock: at the first check of each instant the clock
      // stops at, not at every check.
      expect(named.filter((l) => l.clock === clock.id)).toHaveLength(instants);
    }
    expect(JSON.stringify(lines)).not.toContain('tok_secret_4111');
  });
});

describe('an advancing test clock the code cannot read', () => {
  it('is skipped and named by the restart of advancing clocks; the others are restarted', async () => {
    const deps = subscriptionServiceDeps(t.app);
    const clock = await createTestClock(deps, '2025-01-01T00:00:00Z', 'kick');
    expect(await advanceTestClock(deps, clock.id, '2025-02-01T00:00:00Z')).toMatchObject({
      status: 'ok',
    });
    // Its step's job was lost (the process died between storing the step and enqueueing it).
    const seq = (await t.app.subscriptions.clocks.get(clock.id))!.clock.seq;
    const queue = t.app.dispatcher.queue('subscriptions');
    await (await queue.getJob(clockJobId(clock.id, seq)))!.remove();
    // Advancing clocks as another version or a half-written save left them.
    const k = subscriptionKeys(t.prefix);
    const doc = JSON.parse((await t.app.redis.hget(k.clock(clock.id), 'doc'))!) as object;
    const paused = 'clock_000000000000000000000001';
    const poison: [string, string][] = [
      [paused, JSON.stringify({ ...doc, id: paused, status: 'paused' })],
      ['clock_000000000000000000000002', '{"id":"clock_000000000000000000000002","name":"tok_4111'],
    ];
    for (const [id, stored] of poison) {
      await t.app.redis.hset(k.clock(id), 'doc', stored, 'version', 1);
      await t.app.redis.zadd(k.advancingClocks(), 0, id);
    }

    lines.length = 0;
    expect(await kickAdvancingClocks(subscriptionsDeps(t.app))).toBe(1);
    expect(await queue.getJob(clockJobId(clock.id, seq))).toBeDefined();
    for (const [id] of poison) expect(errorsNaming('clock', id)).toHaveLength(1);
    expect(errorsNaming('clock', poison[0]![0])[0]).toMatchObject({
      why: 'invalid fields (status: invalid_value)',
    });
    expect(errorsNaming('clock', poison[1]![0])[0]).toMatchObject({ why: 'not JSON' });
    expect(JSON.stringify(lines)).not.toContain('tok_4111');
    // Left as they are: still advancing, named again by the next kick until fixed.
    for (const [id, stored] of poison) {
      expect(await t.app.redis.hget(k.clock(id), 'doc')).toBe(stored);
      expect(await t.app.redis.zscore(k.advancingClocks(), id)).toBe('0');
    }
  });
});

/** Batch `id` awaiting approval, approved by a process that died before enqueueing its rows. */
async function interruptedApproval(id: string): Promise<void> {
  const submitted = await submitBatch(t.app, {
    input: `reference,account_number,bank_code,bank_name,account_name,amount,currency,narration\n${id}-1,0123456789,058,GTBank,Ada Okafor,15.00,NGN,poison test\n`,
    type: 'payout',
    id,
    approval: 'payouts',
    submittedBy: 'cli:alice',
  });
  expect(submitted.batch?.state).toBe('awaiting_approval');
  const dying = new Proxy(t.app.dispatcher, {
    get(target, p, r) {
      if (p === 'submitMany') return () => Promise.reject(new Error('process killed'));
      const v: unknown = Reflect.get(target, p, r);
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
  await expect(approveBatch({ ...t.app, dispatcher: dying }, id, 'cli:bob')).rejects.toThrow(
    'process killed',
  );
}

describe('a batch awaiting approval the code cannot read', () => {
  it("does not stop the sweep's resume of an interrupted release: the others are released", async () => {
    const id = 'pheld-a';
    await interruptedApproval(id);
    expect(await t.app.batches.get(id)).toMatchObject({
      state: 'awaiting_approval',
      approvedBy: 'cli:bob',
    });
    // Copies of it awaiting approval too: a type of a newer version, half-written totals.
    const k = batchKeys(t.prefix);
    const h = await t.app.redis.hgetall(k.batch(id));
    const poison: [string, Record<string, string>][] = [
      ['pheld-0-type', { type: 'mandate' }],
      ['pheld-0-half', { totals: '{"NGN":{"rows":1,"note":"tok_secret_4111' }],
    ];
    for (const [pid, change] of poison) {
      await t.app.redis.hset(k.batch(pid), { ...h, id: pid, ...change });
      await t.app.redis.zadd(k.byState('awaiting_approval'), Number(h.createdAt), pid);
    }

    lines.length = 0;
    // A sweep once the approval is ORPHAN_AFTER old (here: no grace).
    const swept = await runSweep({ ...sweepDeps(t.app), orphanAfterMs: 0 });
    expect(swept).toMatchObject({ releasesResumed: 1, cancelsResumed: 0 });
    expect((await t.app.batches.get(id))?.state).toBe('queued');
    const [row] = await t.app.store.batchKeys(id, 0, 10);
    expect((await t.app.store.get(row!))?.state).toBe('queued');
    // Named once by each of the sweep's two resumes of held batches, left as it is (still
    // awaiting approval).
    for (const [pid, change] of poison) {
      const named = errorsNaming('batchId', pid);
      expect(named.map((l) => /interrupted (\w+)/.exec(String(l.msg))?.[1])).toEqual([
        'cancels',
        'releases',
      ]);
      expect(await t.app.redis.hgetall(k.batch(pid))).toEqual({ ...h, id: pid, ...change });
      expect(await t.app.redis.zscore(k.byState('awaiting_approval'), pid)).toBe(h.createdAt);
    }
    expect(errorsNaming('batchId', 'pheld-0-type')[0]).toMatchObject({
      why: 'invalid fields (type: invalid_value)',
    });
    expect(JSON.stringify(lines)).not.toContain('tok_secret_4111');
  });
});

describe('a held row the code cannot read', () => {
  it('stops the resumed release of its batch only: the other batches are released', async () => {
    await interruptedApproval('phr-a');
    await interruptedApproval('phr-b');
    // A row of phr-b as another version (or half a write) left it.
    const held = batchKeys(t.prefix).held('phr-b');
    const half = '{"line":7,"payee":"tok_secret_4111';
    await t.app.redis.zadd(held, 7, half);

    lines.length = 0;
    const swept = await runSweep({ ...sweepDeps(t.app), orphanAfterMs: 0 });
    expect(swept).toMatchObject({ releasesResumed: 1 });
    expect((await t.app.batches.get('phr-a'))?.state).toBe('queued');
    // phr-b is left awaiting approval, its rows held, named with the row.
    expect((await t.app.batches.get('phr-b'))?.state).toBe('awaiting_approval');
    expect(await t.app.redis.zscore(held, half)).toBe('7');
    const named = errorsNaming('batchId', 'phr-b');
    expect(named).toHaveLength(1);
    expect(named[0]).toMatchObject({ row: 'phr-b:7', why: 'not JSON' });
    expect(JSON.stringify(lines)).not.toContain('tok_secret_4111');
  });
});
