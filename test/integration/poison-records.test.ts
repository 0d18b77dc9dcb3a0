/**
 * One record the code cannot read (written by another version, hand-edited, half-written) does
 * not stop the loops that walk records: the subscription tick, the reconcile sweep and the
 * subscription list skip it, log an error line naming it (never its content), and
 * go on with the others. The poison records are written straight into Redis next to healthy
 * ones made through the services. Real Redis, a sandbox, no roles (the loops are run here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscriptionsDeps, sweepDeps } from '../../src/app/composition.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { runSweep } from '../../src/payments/sweep.ts';
import { subscriptionKeys } from '../../src/subscriptions/store/subscription-store.ts';
import { listSubscriptions, subscriptionServiceDeps } from '../../src/subscriptions/service.ts';
import { runTick } from '../../src/subscriptions/tick.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { unresolvedTestCharge } from '../support/intents.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

let sandbox: Sandbox;
let t: TestApp;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: [],
    env: { LOG_LEVEL: 'info' },
    logDestination: {
      write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    },
  });
});
afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

/** Error lines that name `field: value`. */
const errorsNaming = (field: string, value: string) =>
  lines.filter((l) => l.level === 'error' && l[field] === value);

/**
 * Writes subscription `id` straight into Redis: `from`'s stored record with `change` applied,
 * due before everything else.
 */
async function poisonSubscription(from: string, id: string, change: Record<string, unknown>) {
  const k = subscriptionKeys(t.prefix);
  const doc = JSON.parse((await t.app.redis.hget(k.sub(from), 'doc'))!) as Record<string, unknown>;
  await t.app.redis.hset(k.sub(id), 'doc', JSON.stringify({ ...doc, id, ...change }), 'version', 1);
  await t.app.redis.zadd(k.due(), 0, id);
  await t.app.redis.zadd(k.all(), 0, id);
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
