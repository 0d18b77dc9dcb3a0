/**
 * The CLI on a real local Redis Cluster (three masters, REDIS_SHARDS=3), each command in a process
 * of its own as an operator runs it (bin/billing.js): its cluster client starts with no slot map,
 * so whatever reads across keys or masters must wait for it, or it reads nothing and reports
 * nothing to do. The data is made through the running app (payments on every shard, a batch, a
 * subscription), and each command's answer is compared with it. (A command waits for every
 * connection's first `ready` before it runs, cli/context.ts `withApp`, so these answers were right
 * before mastersOf waited for the slot map too: they guard the path an operator runs, where
 * cluster-payments.test.ts opens an app that does not wait.) Also: a shell with REDIS_URL at a
 * cluster node but no REDIS_CLUSTER_NODES is refused by name, as `billing start` refuses it.
 * docs/operations.md, "Redis Cluster".
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchStatus } from '../../src/batches/status.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { FAST_ENV, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { runCliChild } from '../support/cli-run.ts';
import { until } from '../support/poll.ts';
import { startLocalCluster, type LocalCluster } from '../support/redis-cluster.ts';
import { uniquePrefix } from '../support/redis.ts';
import { alternatingPaymentBody, apiCall } from '../support/api-call.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
/** API payments: charges (even) and payouts (odd), over the three shards. */
const N = 12;
/** Rows of examples/payouts.csv. */
const BATCH_ROWS = 20;
const SUBSCRIPTION = 'clifresh-monthly';

let cluster: LocalCluster;
let sandbox: Sandbox;
let t: TestApp;
/** The environment of an operator's shell for this deployment. */
let env: Record<string, string>;
let batchId = '';

const auth = { authorization: `Bearer ${TEST_API_TOKEN}` };
const post = (path: string, body: unknown) => apiCall(t, 'POST', path, body);
const paymentBody = (i: number) => alternatingPaymentBody(i, 'f', 'cluster cli payout');

/** `billing --json <args>` in a child process; its document, with the exit code. */
async function billing(
  args: string[],
  extra: Record<string, string> = {},
): Promise<{ code: number | string; doc: Record<string, unknown>; stderr: string }> {
  const r = await runCliChild(['--json', ...args], { ...env, ...extra });
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(
      `billing ${args.join(' ')}: stdout is no JSON document:\n${r.stdout}\n${r.stderr}`,
    );
  }
  return { code: r.code, doc, stderr: r.stderr };
}

beforeAll(async () => {
  cluster = await startLocalCluster();
  sandbox = await startTestSandbox({ settleMs: 200, hangMs: 2_000 });
  const clusterEnv = cluster.env(3);
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['worker', 'reconciler', 'api'],
    prefix: uniquePrefix('clifresh'),
    env: clusterEnv,
  });
  env = { ...FAST_ENV, ...clusterEnv, QUEUE_PREFIX: t.prefix, SAYSWITCH_BASE_URL: sandbox.url };

  for (let i = 0; i < N; i++) {
    const r = await post('/payments', paymentBody(i));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  for (let i = 0; i < N; i++) {
    await until(() => t.app.store.get(`api_f${i}`), {
      done: (x) => x?.state === 'succeeded',
      what: `api_f${i} succeeded`,
      timeoutMs: 20_000,
    });
  }
  const res = await fetch(`${t.url}/batches?type=payout&name=payouts.csv`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'text/csv' },
    body: await readFile(`${EXAMPLES}payouts.csv`, 'utf8'),
  });
  expect(res.status).toBe(201);
  batchId = ((await res.json()) as { batchId: string }).batchId;
  await until(() => batchStatus(t.app, batchId), {
    done: (s) => s?.state === 'completed',
    what: `batch ${batchId} completed`,
    timeoutMs: 30_000,
    intervalMs: 50,
  });
  const sub = await post('/subscriptions', {
    id: SUBSCRIPTION,
    customer_email: 'ada@example.com',
    card_token: 'tok_card_secret_4111',
    amount: '15.00',
    currency: 'NGN',
    interval: 'month',
    interval_count: 1,
    anchor: '2030-01-31T06:00:00+01:00',
    timezone: 'Africa/Lagos',
  });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
}, 120_000);

afterAll(async () => {
  await t?.close({ keepData: true });
  await sandbox?.close();
  await cluster?.close();
});

describe('each CLI command in a process of its own, on a Redis Cluster', () => {
  it('lists, reindexes and reseals what every master holds', async () => {
    const keys = [
      ...Array.from({ length: N }, (_, i) => `api_f${i}`),
      ...(await t.app.store.batchKeys(batchId, 0, 100)),
    ].sort();
    expect(keys).toHaveLength(N + BATCH_ROWS);
    expect(new Set(keys.map((k) => t.app.layout.shardOf(k)))).toEqual(new Set([0, 1, 2]));

    const list = await billing(['payments', 'list', '--limit', '200']);
    expect(list.code, list.stderr).toBe(0);
    expect((list.doc.data as { key: string }[]).map((p) => p.key).sort()).toEqual(keys);

    const reindex = await billing(['payments', 'reindex']);
    expect(reindex.code, reindex.stderr).toBe(0);
    expect(reindex.doc).toEqual({
      indexed: N + BATCH_ROWS,
      unreadableRecords: 0,
      unreadableRecordsAt: [],
    });

    // Every charge's card token (and card authorization), and the subscription's; no batch here
    // waits for approval.
    const { intents } = await t.app.store.list({}, 200);
    const charges = intents.filter((i) => i.payee.kind === 'charge');
    const sealed = charges.length + charges.filter((i) => i.authorizationSealed).length;
    expect(charges).toHaveLength(N / 2);
    const reseal = await billing(['keys', 'reseal']);
    expect(reseal.code, reseal.stderr).toBe(0);
    expect(reseal.doc).toMatchObject({
      payments: { checked: sealed, unreadable: 0 },
      subscriptions: { checked: 1, unreadable: 0 },
      done: true,
    });

    const batches = await billing(['batch', 'list']);
    expect(batches.code, batches.stderr).toBe(0);
    expect(
      (batches.doc.data as { id: string; final: number }[]).map((b) => [b.id, b.final]),
    ).toEqual([[batchId, BATCH_ROWS]]);

    const subs = await billing(['subs', 'list']);
    expect(subs.code, subs.stderr).toBe(0);
    expect((subs.doc.items as { id: string }[]).map((s) => s.id)).toEqual([SUBSCRIPTION]);

    const status = await billing(['redis', 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.doc).toMatchObject({ epoch: { state: 'ok' } });
  }, 120_000);

  it('refuses REDIS_URL at a cluster node without REDIS_CLUSTER_NODES, naming the variable', async () => {
    // The operator's shell that lacks REDIS_CLUSTER_NODES: `billing start` refuses it at once;
    // a command used to run its first script over a plain connection and fail with a bare
    // CROSSSLOT that named nothing to fix.
    const plain = Object.fromEntries(
      Object.entries(env).filter(([k]) => k !== 'REDIS_CLUSTER_NODES'),
    );
    for (const args of [
      ['payments', 'list'],
      ['redis', 'status'],
    ]) {
      const r = await runCliChild(['--json', ...args], plain);
      expect(r.code, r.stderr).toBe(1);
      const doc = JSON.parse(r.stdout) as { error: { code: string; message: string } };
      expect(doc.error.code).toBe('redis_cluster_not_configured');
      expect(doc.error.message).toContain('REDIS_CLUSTER_NODES');
    }
  }, 60_000);
});
