/**
 * The product on a real local Redis Cluster (three masters, test/support/redis-cluster.ts) with
 * REDIS_SHARDS=3: payments through HTTP (create → submit → sandbox → final) spread over three
 * shards, a list paged across shards, a batch, a subscription's renewal, readiness, and the key
 * layout (every key carries its group's hash tag; a 3-shard run has keys on all three masters).
 * docs/operations.md, "Redis Cluster".
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, startRoles } from '../../src/app/composition.ts';
import { batchStatus } from '../../src/batches/status.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { createSealer } from '../../src/infra/sealing.ts';
import {
  assertRedisReady,
  RedisClusterNotConfiguredError,
  RedisEvictionPolicyError,
} from '../../src/infra/redis/redis-check.ts';
import { keySlot } from '../../src/infra/redis/shards.ts';
import { createSubscriptionFromBody } from '../../src/subscriptions/service.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, testConfig, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startLocalCluster, type LocalCluster } from '../support/redis-cluster.ts';
import { uniquePrefix } from '../support/redis.ts';
import { alternatingPaymentBody, apiCall } from '../support/api-call.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { startSubsHarness } from '../support/subscription-harness.ts';

const FINAL = new Set(['succeeded', 'failed', 'reversed', 'needs_review']);
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const N = 30;

let cluster: LocalCluster;
let sandbox: Sandbox;
let t: TestApp;
let clusterEnv: Record<string, string>;

beforeAll(async () => {
  cluster = await startLocalCluster();
  sandbox = await startTestSandbox({ settleMs: 200, hangMs: 2_000 });
  clusterEnv = cluster.env(3);
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['worker', 'reconciler', 'api'],
    prefix: uniquePrefix('cl'),
    env: clusterEnv,
  });
}, 60_000);

afterAll(async () => {
  await t?.close({ keepData: true });
  await sandbox?.close();
  await cluster?.close();
});

const auth = { authorization: `Bearer ${TEST_API_TOKEN}` };
const post = (path: string, body: unknown) => apiCall(t, 'POST', path, body);
const paymentBody = (i: number) => alternatingPaymentBody(i, 'c', 'cluster payout');

/** Keys matching `pattern`, per master port. */
async function keysByMaster(pattern: string): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const port of await cluster.masters()) {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await cluster.node(port).scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    out.set(port, keys);
  }
  return out;
}

describe('on a Redis Cluster with three shards', () => {
  it('answers /readyz 200 and takes payments to a final state on every shard', async () => {
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    for (let i = 0; i < N; i++) {
      const r = await post('/payments', paymentBody(i));
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    for (let i = 0; i < N; i++) {
      const intent = await until(() => t.app.store.get(`api_c${i}`), {
        done: (x) => x !== undefined && FINAL.has(x.state),
        what: `api_c${i} final`,
        timeoutMs: 20_000,
      });
      expect(intent?.state).toBe('succeeded');
    }
    const shards = new Set(Array.from({ length: N }, (_, i) => t.app.layout.shardOf(`api_c${i}`)));
    expect(shards).toEqual(new Set([0, 1, 2]));
    const moved = Object.values(sandbox.ledger().references).filter((e) => e.moneyMoved);
    expect(moved).toHaveLength(N);
  });

  it('lists every payment once, newest first, paging across the shards', async () => {
    const seen: { key: string; createdAt: number }[] = [];
    let cursor: string | undefined;
    do {
      const page = await t.app.store.list({}, 7, cursor);
      seen.push(...page.intents.map((i) => ({ key: i.key, createdAt: i.createdAt })));
      cursor = page.next;
    } while (cursor !== undefined);
    expect(seen.map((s) => s.key).sort()).toEqual(
      Array.from({ length: N }, (_, i) => `api_c${i}`).sort(),
    );
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.createdAt).toBeLessThanOrEqual(seen[i - 1]!.createdAt);
    }
    const http = await fetch(`${t.url}/payments?limit=5&state=succeeded`, { headers: auth });
    expect(http.status).toBe(200);
  });

  it('runs a batch to completion', async () => {
    const csv = await readFile(`${EXAMPLES}payouts.csv`, 'utf8');
    const res = await fetch(`${t.url}/batches?type=payout&name=payouts.csv`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/csv' },
      body: csv,
    });
    expect(res.status).toBe(201);
    const id = ((await res.json()) as { batchId: string }).batchId;
    const status = await until(() => batchStatus(t.app, id), {
      done: (s) => s?.state === 'completed',
      what: `batch ${id} completed`,
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    expect(status?.final).toBe(20);
  });

  it('has keys under every group tag, on all three masters', async () => {
    const byMaster = await keysByMaster(`*${t.prefix}*`);
    const tags = t.app.layout.allPrefixes();
    expect(tags).toHaveLength(3);
    const all = [...byMaster.values()].flat();
    expect(all.filter((k) => !tags.some((tag) => k.startsWith(`${tag}:`)))).toEqual([]);
    for (const [port, keys] of byMaster) {
      expect(keys.length, `master ${port} holds none of the run's keys`).toBeGreaterThan(0);
    }
  });

  it('reindexes the intents of every shard, on every master (`billing payments reindex`)', async () => {
    // A cluster client sends SCAN to one node: the reindex scans every master instead.
    const stored = new Set<string>();
    for (const tag of t.app.layout.allPrefixes()) {
      for (const keys of (await keysByMaster(`${tag}:intent:*`)).values()) {
        for (const k of keys) if (!k.endsWith(':history')) stored.add(k);
      }
    }
    expect(stored.size).toBeGreaterThanOrEqual(N);
    expect(await t.app.store.reindexCreated()).toMatchObject({
      indexed: stored.size,
      unreadableRecords: 0,
    });
    // An app whose cluster client has not connected yet when the scan starts: it scanned the
    // masters that client knew (none) and reported 0. The CLI waits for Redis first
    // (cluster-cli-fresh.test.ts); the store must not depend on it.
    const fresh = openApp(t.app.config, createLogger({ level: 'silent' }));
    try {
      expect((await fresh.store.reindexCreated()).indexed).toBe(stored.size);
    } finally {
      await fresh.close();
    }
  });

  it('reseals the card tokens of every shard, on every master (`billing keys reseal`)', async () => {
    const { intents } = await t.app.store.list({}, 500);
    const charges = intents.filter((i) => i.payee.kind === 'charge');
    const sealed = charges.length + charges.filter((i) => i.authorizationSealed).length;
    expect(charges.length).toBeGreaterThan(3);
    // The app's key plays the previous key of a rotation to a new one.
    const next = Buffer.alloc(32, 0x5a);
    const rotating = createSealer(next, t.app.config.dataEncryptionKey);
    const moved = await t.app.store.resealAll((s) => rotating.reseal(s));
    expect(moved).toMatchObject({ checked: sealed, resealed: sealed, changed: 0, unreadable: 0 });
    const again = await t.app.store.resealAll((s) => createSealer(next).reseal(s));
    expect(again).toMatchObject({ checked: sealed, resealed: 0, unreadable: 0 });
    // Every charge's token now opens with the new key alone, on every shard.
    const onlyNext = createSealer(next);
    const shards = new Set<number>();
    for (const i of charges) {
      const now = (await t.app.store.get(i.key))!;
      if (now.payee.kind === 'charge')
        expect(onlyNext.unseal(now.payee.cardTokenSealed)).toBeTruthy();
      shards.add(t.app.layout.shardOf(i.key));
    }
    expect(shards.size).toBe(3);
  });

  it('refuses a plain REDIS_URL to a cluster node, and its readiness says so', async () => {
    const node = cluster.nodes[0]!.port;
    // A prefix whose readiness key another master owns: the plain connection gets MOVED.
    let prefix = uniquePrefix('clplain');
    while ((await cluster.masterOf(keySlot(`${prefix}:readyz`))) === node) {
      prefix = uniquePrefix('clplain');
    }
    const app = openApp(
      await testConfig(prefix, { REDIS_URL: `redis://127.0.0.1:${node}` }),
      createLogger({ level: 'silent' }),
    );
    try {
      const err = await startRoles(app, ['worker']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisClusterNotConfiguredError);
      expect((err as Error).message).toContain('REDIS_CLUSTER_NODES');
      await app.health.waitUntilUp(5_000);
      expect(await app.ready()).toEqual({ ok: false, reason: 'redis_unavailable' });
    } finally {
      await app.close();
    }
  });

  it('refuses to start when a master evicts, asked before the cluster client has connected', async () => {
    // Asked of a new client: before its first slot map it knows no master, and a check over the
    // masters it knew passed without asking any (`billing start` waits for Redis first; the
    // check must not depend on it).
    const masters = await cluster.masters();
    const lru = cluster.node(masters[masters.length - 1]!);
    await lru.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const app = openApp(
      await testConfig(uniquePrefix('clevict'), clusterEnv),
      createLogger({ level: 'silent' }),
    );
    try {
      const err = await assertRedisReady(app.redis, { allowEviction: false }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RedisEvictionPolicyError);
      expect((err as Error).message).toContain('allkeys-lru');
    } finally {
      await lru.config('SET', 'maxmemory-policy', 'noeviction');
      await app.close();
    }
  });

  it('renews a subscription', async () => {
    const start = Date.parse('2025-01-30T00:00:00Z');
    const h = await startSubsHarness({
      sandboxUrl: sandbox.url,
      start,
      prefix: uniquePrefix('clsub'),
      env: clusterEnv,
    });
    try {
      const res = await createSubscriptionFromBody(h.service, {
        id: 'cl-daily',
        customer_email: 'ada@example.com',
        card_token: 'tok_card_secret_4111',
        amount: '15.00',
        currency: 'NGN',
        interval: 'day',
        interval_count: 1,
        anchor: '2025-01-31T06:00:00+01:00',
        timezone: 'Africa/Lagos',
      });
      expect(res.status).toBe('created');
      for (const at of ['2025-01-31T12:00:00Z', '2025-02-01T12:00:00Z']) {
        h.clock.set(Date.parse(at));
        await h.tick();
        await h.settle();
      }
      const refs = Object.entries(sandbox.ledger().references).filter(([r]) =>
        r.startsWith('sub_cl-daily_'),
      );
      expect(refs.map(([r, e]) => [r, e.moneyMoved])).toEqual([
        ['sub_cl-daily_20250131_1', true],
        ['sub_cl-daily_20250201_1', true],
      ]);
    } finally {
      await h.close();
    }
  });
});
