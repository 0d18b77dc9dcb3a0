/**
 * Scripts run by SHA1 and fall back to the body exactly once when Redis has not cached them:
 * first use, and after the cache is emptied (SCRIPT FLUSH, as a restart would). Runs on its own
 * redis-server, since it flushes the script cache.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptReference, paymentEventId, type IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { IntentDraft } from '../../src/kernel/payment.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { LuaScript } from '../../src/infra/redis/lua-script.ts';
import { track } from '../support/leak-check.ts';
import { spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';

let server: RedisServerHandle;
let redis: Redis;

beforeAll(async () => {
  server = await spawnRedisServer();
  redis = track(new Redis(server.url, { maxRetriesPerRequest: null }), 'lua-script client');
});

afterAll(async () => {
  await redis.quit();
  await server.close();
});

const INCR = new LuaScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`);

async function scriptCalls(): Promise<{ eval: number; evalsha: number }> {
  const text = await redis.info('commandstats');
  const calls = (name: string) =>
    Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { eval: calls('eval'), evalsha: calls('evalsha') };
}

describe('LuaScript', () => {
  it('sends the body once, then only the SHA, and again once after SCRIPT FLUSH', async () => {
    await redis.config('RESETSTAT');
    expect(await INCR.run(redis, 1, 'n', 2)).toBe(2);
    expect(await INCR.run(redis, 1, 'n', 3)).toBe(5);
    expect(await INCR.run(redis, 1, 'n', 4)).toBe(9);
    // The first call met NOSCRIPT (nothing ran) and was sent whole; the rest went by SHA.
    expect(await scriptCalls()).toEqual({ eval: 1, evalsha: 3 });

    await redis.script('FLUSH');
    expect(await INCR.run(redis, 1, 'n', 1)).toBe(10);
    expect(await scriptCalls()).toEqual({ eval: 2, evalsha: 4 });
  });

  it('a pipeline that met NOSCRIPT runs after load()', async () => {
    await redis.script('FLUSH');
    const pipeOf = () => {
      const pipe = redis.pipeline();
      INCR.queue(pipe, 1, 'p', 1);
      INCR.queue(pipe, 1, 'p', 1);
      return pipe.exec();
    };
    const first = (await pipeOf()) ?? [];
    expect(first.every(([err]) => err?.message.startsWith('NOSCRIPT') === true)).toBe(true);
    expect(await redis.get('p')).toBeNull();
    await INCR.load(redis);
    expect((await pipeOf())?.map(([, v]) => v)).toEqual([1, 2]);
  });

  it('runPipelined loads a flushed script once and runs each call exactly once', async () => {
    await redis.script('FLUSH');
    const calls = [1, 2, 3].map((n) => ({ numKeys: 1, args: ['q', n] }));
    const replies = await INCR.runPipelined(redis, calls);
    expect(replies).toEqual([
      [null, 1],
      [null, 3],
      [null, 6],
    ]);
    expect(await redis.get('q')).toBe('6');
    expect(await INCR.runPipelined(redis, calls)).toEqual([
      [null, 7],
      [null, 9],
      [null, 12],
    ]);
  });

  it('the intent store keeps working when the script cache is emptied between calls', async () => {
    const store = new RedisIntentStore(redis, 'lua-flush');
    const draft: IntentDraft = {
      key: 'api_flush1' as IntentKey,
      type: 'payout',
      origin: 'api',
      amount: 1000 as AmountMinor,
      currency: 'NGN',
      payee: {
        kind: 'payout',
        accountNumber: '0123456789',
        bankCode: '000013',
        bankName: 'GTBank',
        accountName: 'Flush Test',
        narration: 'flush',
        paymentMode: 'bank',
      },
    };
    await redis.script('FLUSH');
    const created = await store.create(draft, 1_000);
    expect(created.created).toBe(true);
    await redis.script('FLUSH');
    const moved = await store.transition('api_flush1', 'submitting', 2_000, { expectAttempt: 1 });
    expect(moved.ok).toBe(true);
    expect((await store.get('api_flush1'))?.state).toBe('submitting');
  });

  it('the transition script writes the references and event ids TypeScript derives', async () => {
    const prefix = 'lua-refs';
    const store = new RedisIntentStore(redis, prefix);
    const key = 'api_refs1' as IntentKey;
    await store.create(
      {
        key,
        type: 'charge',
        origin: 'api',
        amount: 500 as AmountMinor,
        currency: 'NGN',
        payee: { kind: 'charge', email: 'a@example.com', cardTokenSealed: 'sealed' },
      },
      1_000,
    );
    expect((await store.transition(key, 'submitting', 1_001, { expectAttempt: 1 })).ok).toBe(true);
    expect((await store.transition(key, 'failed', 1_002, { expectAttempt: 1 })).ok).toBe(true);

    // A dunning retry: the store derives attempt 2's reference and hands it to the script.
    const retried = await store.transition(key, 'queued', 1_003, {
      newAttempt: true,
      expectAttempt: 1,
    });
    expect(retried.ok && retried.intent).toMatchObject({
      attempt: 2,
      reference: attemptReference(key, 2),
    });
    expect(retried.ok && retried.intent.reference).toBe('api_refs1_2');
    expect(await store.transition(key, 'submitting', 1_004, { expectAttempt: 1 })).toEqual({
      ok: false,
      why: 'stale',
      state: 'queued',
      attempt: 2,
    });

    // Without expectAttempt the stored attempt is used.
    expect((await store.transition(key, 'submitting', 1_005)).ok).toBe(true);
    const done = await store.transition(key, 'succeeded', 1_006);
    expect(done.ok && done.intent).toMatchObject({ attempt: 2, reference: 'api_refs1_2' });
    expect(await store.transition('api_nothing', 'succeeded', 1_007)).toEqual({
      ok: false,
      why: 'missing',
    });

    const entries = await redis.xrange(storeKeys(prefix).events(), '-', '+');
    const events = entries.map(([, fields]) => {
      const f = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
      const data = JSON.parse(f.get('data')!) as { reference: string; attempt: number };
      return { id: f.get('id'), type: f.get('type'), data };
    });
    expect(events.map((e) => [e.id, e.type])).toEqual([
      ['evt_api_refs1_1_failed', 'payment.failed'],
      ['evt_api_refs1_2_succeeded', 'payment.succeeded'],
    ]);
    expect(events.map((e) => e.id)).toEqual([
      paymentEventId(attemptReference(key, 1), 'failed'),
      paymentEventId(attemptReference(key, 2), 'succeeded'),
    ]);
    expect(events.map((e) => [e.data.reference, e.data.attempt])).toEqual([
      ['api_refs1_1', 1],
      ['api_refs1_2', 2],
    ]);
  });
});

describe('the transition script and the requires_action / seen fields', () => {
  const charge = (key: string): IntentDraft => ({
    key: key as IntentKey,
    type: 'charge',
    origin: 'api',
    amount: 700 as AmountMinor,
    currency: 'NGN',
    payee: { kind: 'charge', email: 'a@example.com', cardTokenSealed: 'sealed' },
  });

  async function eventsOf(prefix: string) {
    const entries = await redis.xrange(storeKeys(prefix).events(), '-', '+');
    return entries.map(([, fields]) => {
      const f = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
      return {
        id: f.get('id'),
        type: f.get('type'),
        data: JSON.parse(f.get('data')!) as Record<string, unknown>,
      };
    });
  }

  it('entering requires_action publishes payment.requires_action with the URL, atomically', async () => {
    const prefix = 'lua-3ds';
    const store = new RedisIntentStore(redis, prefix);
    const key = 'api_3ds1';
    await store.create(charge(key), 1_000);
    expect((await store.transition(key, 'submitting', 1_001, { expectAttempt: 1 })).ok).toBe(true);
    const url = 'https://gateway.example/3ds/api_3ds1_1?session=abc';
    const entered = await store.transition(key, 'requires_action', 1_002, {
      expectAttempt: 1,
      patch: { seenAtGateway: 1_002, authorizationUrl: url, requiresActionUntil: 61_002 },
      reconcileAt: 1_500,
    });
    expect(entered.ok && entered.intent).toMatchObject({
      state: 'requires_action',
      seenAtGateway: 1_002,
      authorizationUrl: url,
      requiresActionUntil: 61_002,
    });
    expect(await store.keysInState('requires_action', 10)).toEqual([key]);
    expect(await store.dueForReconcile(1_500, 10)).toEqual([key]);
    expect((await store.countByState()).requires_action).toBe(1);

    // Completed: a reusable authorization is stored sealed; the event says only that it exists.
    const done = await store.transition(key, 'succeeded', 1_003, {
      expectAttempt: 1,
      patch: { authorizationSealed: 'sealed-authorization' },
    });
    expect(done.ok && done.intent.authorizationSealed).toBe('sealed-authorization');
    const events = await eventsOf(prefix);
    expect(events.map((e) => [e.id, e.type])).toEqual([
      ['evt_api_3ds1_1_requires_action', 'payment.requires_action'],
      ['evt_api_3ds1_1_succeeded', 'payment.succeeded'],
    ]);
    expect(events[0]?.data).toMatchObject({
      state: 'requires_action',
      authorizationUrl: url,
      requiresActionUntil: 61_002,
      hasAuthorization: false,
    });
    expect(events[1]?.data).toMatchObject({ state: 'succeeded', hasAuthorization: true });
    expect(events[1]?.data).not.toHaveProperty('authorizationUrl');
    expect(JSON.stringify(events)).not.toContain('sealed-authorization');
  });

  it('markSeenAtGateway records once, for the current attempt only; a new attempt forgets it', async () => {
    const prefix = 'lua-seen';
    const store = new RedisIntentStore(redis, prefix);
    const key = 'api_seen1';
    await store.create(charge(key), 1_000);
    expect(await store.markSeenAtGateway(key, 2, 1_001)).toBe(false);
    expect(await store.markSeenAtGateway(key, 1, 1_002)).toBe(true);
    expect(await store.markSeenAtGateway(key, 1, 1_003)).toBe(false);
    expect((await store.get(key))?.seenAtGateway).toBe(1_002);

    await store.transition(key, 'submitting', 1_004, { expectAttempt: 1 });
    await store.transition(key, 'requires_action', 1_005, {
      expectAttempt: 1,
      patch: { authorizationUrl: 'https://g.example/3ds', requiresActionUntil: 9_000 },
    });
    await store.transition(key, 'failed', 1_006, { expectAttempt: 1 });
    const retried = await store.transition(key, 'queued', 1_007, {
      expectAttempt: 1,
      newAttempt: true,
    });
    expect(retried.ok).toBe(true);
    const fresh = await store.get(key);
    expect(fresh).toMatchObject({ attempt: 2, reference: 'api_seen1_2', state: 'queued' });
    expect(fresh).not.toHaveProperty('seenAtGateway');
    expect(fresh).not.toHaveProperty('authorizationUrl');
    expect(fresh).not.toHaveProperty('requiresActionUntil');
  });
});
