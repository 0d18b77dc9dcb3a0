/**
 * Deleting a test clock (docs/subscriptions.md "Test clocks"): `DELETE /test-clocks/:id` and
 * `billing subs clock delete` cancel the clock's subscriptions at its time (reason
 * `test_clock_deleted`), keep them and their charges, and remove the clock and its indexes from
 * Redis; an advancing clock is refused; a create racing the delete is refused in the store's own
 * step; a delete that died partway is finished by the next one. The whole application against
 * the sandbox, over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createTestClock, deleteTestClock } from '../../src/subscriptions/clocks-service.ts';
import { cancelOnDeletedClock } from '../../src/subscriptions/manage.ts';
import { TestClockGoneError, type TestClockStore } from '../../src/subscriptions/ports.ts';
import { createSubscription } from '../../src/subscriptions/record.ts';
import { createSubscriptionFromBody } from '../../src/subscriptions/service.ts';
import { subscriptionServiceDeps } from '../../src/subscriptions/service-deps.ts';
import { subscriptionKeys } from '../../src/subscriptions/store/subscription-store.ts';
import { startAdvance } from '../../src/subscriptions/test-clocks.ts';
import { amountMinor } from '../../src/kernel/money.ts';
import { apiCall } from '../support/api-call.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox;
let t: TestApp;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker', 'scheduler', 'reconciler'],
    env: { SAYSWITCH_TIMEOUT_MS: '5000', SUBMIT_LEASE: '15s' },
  });
});

afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

const call = (method: string, path: string, body?: unknown) => apiCall(t, method, path, body);
const deps = () => subscriptionServiceDeps(t.app);

const plan = (clock: string, id: string, anchor: string) => ({
  id,
  customer_email: 'clock@example.com',
  card_token: 'tok_clock_card_0001',
  amount: '20.00',
  currency: 'USD',
  interval: 'month',
  timezone: 'UTC',
  anchor,
  test_clock: clock,
});

async function newClock(at: string): Promise<string> {
  const res = await call('POST', '/test-clocks', { frozen_time: at });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

/** A subscription record on `clock` as a create that read the clock earlier would store it. */
function onClock(id: string, clock: string) {
  return createSubscription(
    {
      id,
      customerEmail: 'clock@example.com',
      cardTokenSealed: 'sealed',
      amount: amountMinor(2_000),
      currency: 'USD',
      schedule: {
        anchor: '2025-02-01T09:00:00Z',
        timezone: 'UTC',
        interval: 'month',
        intervalCount: 1,
      },
      metadata: {},
      testClock: clock,
    },
    Date.parse('2025-01-15T12:00:00Z'),
  );
}

/**
 * The service's deps with some of the clock store's calls replaced (each is given the real store),
 * to put another request between two steps of the one under test.
 */
function withClocks(over: {
  [K in 'members' | 'remove']?: (real: TestClockStore, ...args: never[]) => Promise<unknown>;
}) {
  const d = deps();
  const real = d.subs.clocks;
  const clocks = new Proxy(real, {
    get: (target, p, r) => {
      const f = over[p as keyof typeof over];
      return f ? (...args: never[]) => f(real, ...args) : (Reflect.get(target, p, r) as unknown);
    },
  });
  const subs = new Proxy(d.subs, {
    get: (target, p, r) => (p === 'clocks' ? clocks : (Reflect.get(target, p, r) as unknown)),
  });
  return { ...d, subs };
}

/** The prefix's keys of clock `id` (hash, members, due index) and its place in the advancing set. */
async function clockKeys(id: string) {
  const k = subscriptionKeys(t.prefix);
  const redis = t.app.redis;
  return {
    exist: await redis.exists(k.clock(id), k.clockSubs(id), k.clockDue(id)),
    advancing: await redis.zscore(k.advancingClocks(), id),
  };
}

describe('deleting a test clock', () => {
  it('cancels its subscriptions at its time, keeps them and their charges, and removes the clock', async () => {
    const clock = await newClock('2025-01-15T12:00:00Z');
    for (const [id, anchor] of [
      ['del-paid', '2025-01-20T09:00:00Z'],
      ['del-later', '2025-03-01T09:00:00Z'],
    ] as const) {
      const res = await call('POST', '/subscriptions', plan(clock, id, anchor));
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    const adv = await call('POST', `/test-clocks/${clock}/advance`, {
      to: '2025-01-25T00:00:00Z',
    });
    expect(adv.status).toBe(202);
    await until(() => call('GET', `/test-clocks/${clock}`), {
      done: (r) => r.status === 200 && r.body.status === 'ready',
      what: 'the clock ready',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    expect(Object.keys(sandbox.ledger().references)).toContain('sub_del-paid_20250120_1');

    const deleted = await call('DELETE', `/test-clocks/${clock}`);
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect(deleted.body).toEqual({
      id: clock,
      object: 'test_clock',
      deleted: true,
      canceled_subscriptions: ['del-later', 'del-paid'],
    });
    expect((await call('GET', `/test-clocks/${clock}`)).status).toBe(404);
    expect((await call('DELETE', `/test-clocks/${clock}`)).status).toBe(404);
    expect(await clockKeys(clock)).toEqual({ exist: 0, advancing: null });

    // The subscriptions stay, canceled at the clock's time, with their charges.
    for (const id of ['del-paid', 'del-later']) {
      const sub = await call('GET', `/subscriptions/${id}`);
      expect(sub.status).toBe(200);
      expect(sub.body).toMatchObject({
        status: 'canceled',
        canceled_at: '2025-01-25T00:00:00.000Z',
        cancel_reason: 'test_clock_deleted',
      });
    }
    const paid = await call('GET', '/subscriptions/del-paid');
    expect((paid.body.charges as { key: string }[]).map((c) => c.key)).toEqual([
      'sub_del-paid_20250120',
    ]);
    const events = await t.app.events.read('-', 1_000_000);
    const canceled = events.filter(
      (e) =>
        e.type === 'subscription.canceled' &&
        ['del-paid', 'del-later'].includes(e.data.subscriptionId as string),
    );
    expect(canceled.map((e) => [e.data.subscriptionId, e.data.reason, e.at]).sort()).toEqual([
      ['del-later', 'test_clock_deleted', Date.parse('2025-01-25T00:00:00Z')],
      ['del-paid', 'test_clock_deleted', Date.parse('2025-01-25T00:00:00Z')],
    ]);
    // Their ids stay taken; a canceled one cannot be resumed; the clock cannot be named again.
    const again = await call(
      'POST',
      '/subscriptions',
      plan(clock, 'del-new', '2025-02-01T00:00:00Z'),
    );
    expect(again.status).toBe(422);
    expect(again.body.error).toMatchObject({
      details: [{ field: 'test_clock', message: `test_clock "${clock}" does not exist` }],
    });
  });

  it('an advancing clock is refused and keeps its subscriptions', async () => {
    const clock = await newClock('2025-01-15T12:00:00Z');
    expect(
      (await call('POST', '/subscriptions', plan(clock, 'adv-1', '2025-02-01T09:00:00Z'))).status,
    ).toBe(201);
    // Marked advancing without a job to run it: it stays advancing for the test.
    const found = (await t.app.subscriptions.clocks.get(clock))!;
    await t.app.subscriptions.clocks.save(
      startAdvance(found.clock, Date.parse('2026-01-01T00:00:00Z')),
      found.version,
    );
    const res = await call('DELETE', `/test-clocks/${clock}`);
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({
      code: 'test_clock_advancing',
      message: `test clock ${clock} is advancing; delete it again once it is ready`,
    });
    expect((await call('GET', '/subscriptions/adv-1')).body.status).toBe('active');
    expect(await clockKeys(clock)).toEqual({ exist: 3, advancing: '0' });

    // One with no subscriptions is refused too (no subscription's cancel finds it advancing).
    const empty = await newClock('2025-01-15T12:00:00Z');
    const e = (await t.app.subscriptions.clocks.get(empty))!;
    await t.app.subscriptions.clocks.save(
      startAdvance(e.clock, Date.parse('2026-01-01T00:00:00Z')),
      e.version,
    );
    expect((await call('DELETE', `/test-clocks/${empty}`)).status).toBe(409);
    expect((await call('GET', `/test-clocks/${empty}`)).body.status).toBe('advancing');
  });

  it('a delete that died partway is finished by the next one; a create racing it stores nothing', async () => {
    const clock = await createTestClock(deps(), '2025-01-15T12:00:00Z');
    for (const id of ['part-1', 'part-2'])
      expect(
        (await call('POST', '/subscriptions', plan(clock.id, id, '2025-02-01T09:00:00Z'))).status,
      ).toBe(201);
    // The first call marked the clock deleting, canceled part-1 and died.
    const found = (await t.app.subscriptions.clocks.get(clock.id))!;
    await t.app.subscriptions.clocks.save({ ...found.clock, deleting: true }, found.version);
    expect(await cancelOnDeletedClock(deps(), 'part-1')).toBe('canceled');
    // Marked: gone for every other caller already.
    expect((await call('GET', `/test-clocks/${clock.id}`)).status).toBe(404);
    expect(
      (await call('POST', `/test-clocks/${clock.id}/advance`, { to: '2025-03-01T00:00:00Z' }))
        .status,
    ).toBe(404);
    const refused = await call(
      'POST',
      '/subscriptions',
      plan(clock.id, 'part-3', '2025-02-01T09:00:00Z'),
    );
    expect(refused.status).toBe(422);
    const res = await deleteTestClock(deps(), clock.id);
    expect(res).toEqual({ status: 'deleted', id: clock.id, canceled: ['part-2'] });

    // A create that read the clock before the delete: refused in its own step, nothing stored.
    const late = onClock('part-late', clock.id);
    await expect(t.app.subscriptions.create(late)).rejects.toBeInstanceOf(TestClockGoneError);
    await expect(
      t.app.subscriptions.saveMany([{ sub: late, expectVersion: 0 }]),
    ).rejects.toBeInstanceOf(TestClockGoneError);
    expect(await t.app.subscriptions.get('part-late')).toBeUndefined();
    expect(await clockKeys(clock.id)).toEqual({ exist: 0, advancing: null });
  });

  it('a subscription created on the clock during the delete is canceled too before the clock goes', async () => {
    const clock = await createTestClock(deps(), '2025-01-15T12:00:00Z');
    expect(
      (await call('POST', '/subscriptions', plan(clock.id, 'race-1', '2025-02-01T09:00:00Z')))
        .status,
    ).toBe(201);
    let raced = false;
    const res = await deleteTestClock(
      withClocks({
        members: async (real, id: string) => {
          const ids = await real.members(id);
          if (!raced) {
            raced = true;
            // A create that starts now finds the clock gone (it is marked deleting)…
            const late = await call(
              'POST',
              '/subscriptions',
              plan(id, 'race-late', '2025-02-01T09:00:00Z'),
            );
            expect(late.status).toBe(422);
            expect((await call('GET', `/test-clocks/${id}`)).status).toBe(404);
            // …one that read it before the mark writes after the delete read the members, before
            // its checked step: the store takes it (the clock's hash is still there).
            expect((await t.app.subscriptions.create(onClock('race-2', id))).created).toBe(true);
          }
          return ids;
        },
      }),
      clock.id,
    );
    expect(res).toEqual({ status: 'deleted', id: clock.id, canceled: ['race-1', 'race-2'] });
    expect(await clockKeys(clock.id)).toEqual({ exist: 0, advancing: null });
    expect((await call('GET', '/subscriptions/race-2')).body).toMatchObject({
      status: 'canceled',
      cancel_reason: 'test_clock_deleted',
    });
  });

  it('a clock another delete removed meanwhile is deleted, not 404, for this one', async () => {
    const clock = await createTestClock(deps(), '2025-01-15T12:00:00Z');
    const res = await deleteTestClock(
      withClocks({
        // Its checked step finds the clock changed (a new member); then another delete finishes.
        remove: async (real, id: string, version: number) => {
          // A create that read the clock before the mark (the store takes it).
          expect((await t.app.subscriptions.create(onClock('gone-1', id))).created).toBe(true);
          expect(await real.remove(id, version, 0)).toBe('changed');
          expect(await deleteTestClock(deps(), id)).toMatchObject({ status: 'deleted' });
          return 'changed';
        },
      }),
      clock.id,
    );
    expect(res).toEqual({ status: 'deleted', id: clock.id, canceled: [] });
  });

  it('a create over HTTP whose clock is deleted before its write is a 422 on test_clock', async () => {
    const clock = await createTestClock(deps(), '2025-01-15T12:00:00Z');
    const d = deps();
    const subs = new Proxy(d.subs, {
      get: (target, p, r) =>
        p === 'create'
          ? async (...args: Parameters<typeof target.create>) => {
              await deleteTestClock(deps(), clock.id);
              return target.create(...args);
            }
          : (Reflect.get(target, p, r) as unknown),
    });
    const res = await createSubscriptionFromBody(
      { ...d, subs },
      plan(clock.id, 'late-http', '2025-02-01T09:00:00Z'),
    );
    expect(res).toEqual({
      status: 'invalid',
      issues: [{ field: 'test_clock', message: `test_clock "${clock.id}" does not exist` }],
    });
    expect(await t.app.subscriptions.get('late-http')).toBeUndefined();
  });

  it('the store deletes only the clock it read: not after an advance, not with a new member', async () => {
    const clock = await createTestClock(deps(), '2025-01-15T12:00:00Z');
    const found = (await t.app.subscriptions.clocks.get(clock.id))!;
    expect(await t.app.subscriptions.clocks.remove(clock.id, found.version, 1)).toBe('changed');
    expect(await t.app.subscriptions.clocks.remove(clock.id, found.version + 1, 0)).toBe('changed');
    expect(await t.app.subscriptions.clocks.remove(clock.id, found.version, 0)).toBe('deleted');
    expect(await t.app.subscriptions.clocks.remove(clock.id, found.version, 0)).toBe('gone');
  });

  it('billing subs clock delete', async () => {
    const clock = await createTestClock(deps(), '2025-01-15T12:00:00Z');
    expect(
      (await call('POST', '/subscriptions', plan(clock.id, 'cli-del', '2025-02-01T09:00:00Z')))
        .status,
    ).toBe(201);
    const run = (...args: string[]) => runCliInProcess(t.app.config, args);
    const out = await run('subs', 'clock', 'delete', clock.id, '--json');
    expect(out.code, out.err).toBe(0);
    expect(JSON.parse(out.out)).toEqual({
      id: clock.id,
      deleted: true,
      canceled_subscriptions: ['cli-del'],
    });
    const missing = await run('subs', 'clock', 'delete', clock.id);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`no test clock "${clock.id}"`);

    // An advancing clock: exit 1 with the API's code, nothing deleted.
    const busy = await createTestClock(deps(), '2025-01-15T12:00:00Z');
    const b = (await t.app.subscriptions.clocks.get(busy.id))!;
    await t.app.subscriptions.clocks.save(
      startAdvance(b.clock, Date.parse('2026-01-01T00:00:00Z')),
      b.version,
    );
    const advancing = await run('subs', 'clock', 'delete', busy.id, '--json');
    expect(advancing.code).toBe(1);
    expect(JSON.parse(advancing.out)).toMatchObject({ error: { code: 'test_clock_advancing' } });
    expect(await clockKeys(busy.id)).toMatchObject({ advancing: '0' });
  });
});
