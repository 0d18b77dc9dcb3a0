/**
 * Resharding a live Redis Cluster (a deployment that outgrows its masters): a fourth master joins
 * and the slots of every group the product writes (the shard-less group and two intent shards,
 * REDIS_SHARDS=3) are moved to it key by key, slowly, while payments are posted to the API (in
 * this process) and processed by `billing start --roles worker,reconciler` (a child process, as
 * deployed). Clients meet the migration window: ASK redirections, and TRYAGAIN for the multi-key
 * scripts whose keys are split between the two masters. Every payment the API acknowledged ends
 * succeeded, no reference moves money twice, the API answers 201 or 503 `redis_unavailable` (never
 * 500), the worker process lives through it (ioredis's dropped ASKING promise ended it), and no job
 * stays active for good. docs/operations.md, "Resharding a cluster".
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { keySlot } from '../../src/infra/redis/shards.ts';
import { FAST_ENV, startTestApp, type TestApp } from '../support/app.ts';
import { alternatingPaymentBody, apiCall } from '../support/api-call.ts';
import { spawnBilling, type BillingChild } from '../support/child.ts';
import { until } from '../support/poll.ts';
import { startLocalCluster, type LocalCluster } from '../support/redis-cluster.ts';
import { uniquePrefix } from '../support/redis.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import { referencesThatMovedMoney, statesOnceFinal } from '../support/settled.ts';

let cluster: LocalCluster;
let sandbox: Sandbox;
let t: TestApp;
let worker: BillingChild | undefined;
let env: Record<string, string>;

beforeAll(async () => {
  cluster = await startLocalCluster();
  sandbox = await startTestSandbox({ settleMs: 100, latencyMs: 10 });
  const prefix = uniquePrefix('rs');
  env = {
    ...FAST_ENV,
    ...cluster.env(3),
    QUEUE_PREFIX: prefix,
    SAYSWITCH_BASE_URL: sandbox.url,
    LOG_LEVEL: 'info',
    // The sweep every second: an intent whose job could not finish during the move (its lease
    // lapsed, or it never got a job) is found and checked the way production finds it each minute.
    RECONCILE_CRON: '* * * * * *',
    ORPHAN_AFTER: '3s',
    // A job whose finish BullMQ could not record during the move is taken back by the stalled-job
    // check once its lock lapses (30 s by default).
    WORKER_LOCK_DURATION: '2s',
  };
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api'],
    prefix,
    env: { ...env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' },
  });
}, 60_000);

afterAll(async () => {
  worker?.kill('SIGKILL');
  await worker?.exited;
  await t?.close({ keepData: true });
  await sandbox?.close();
  await cluster?.close();
});

describe('resharding a live Redis Cluster', () => {
  it('moves every group to a new master under load: no payment lost, none paid twice, no 500', async () => {
    const w = spawnBilling(['start', '--roles', 'worker,reconciler'], env, 5_000_000);
    worker = w;
    await w.waitFor('roles started');
    const statuses = new Map<number, number>();
    const acknowledged: string[] = [];
    const unexpected: string[] = [];
    let stop = false;
    let n = 0;
    const producer = async (lane: number) => {
      while (!stop) {
        const i = n++;
        const reply = await apiCall(
          t,
          'POST',
          '/payments',
          alternatingPaymentBody(i, `rs${lane}_`, 'reshard'),
          { timeoutMs: 30_000 },
        ).catch((err: unknown) => ({ status: 0, body: { error: String(err) } }));
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        const code = (reply.body as { error?: { code?: string } }).error?.code;
        if (reply.status === 201) acknowledged.push(`api_rs${lane}_${i}`);
        else if (reply.status !== 503 || code !== 'redis_unavailable')
          unexpected.push(`${i}: ${reply.status} ${JSON.stringify(reply.body)}`);
        // A client waits before it tries again (the answer says Retry-After).
        else await new Promise((r) => setTimeout(r, 100));
      }
    };
    const lanes = [0, 1, 2, 3].map(producer);

    const target = await cluster.addMaster();
    const slots = t.app.layout.allPrefixes().map((tag) => keySlot(tag.slice(1, -1)));
    const moved: Record<number, number> = {};
    for (const slot of slots) {
      moved[slot] = await cluster.migrateSlot(slot, target, { batch: 3, pauseMs: 20 });
    }
    await cluster.waitHealthy(4);
    // A while on the new layout, then stop.
    const after = n + 40;
    await until(() => n >= after, { what: '40 payments after the move', timeoutMs: 30_000 });
    stop = true;
    await Promise.all(lanes);

    const current = await statesOnceFinal(t.app.store, acknowledged, 60_000);
    const counts: Record<string, number> = {};
    for (const s of current.values()) counts[s] = (counts[s] ?? 0) + 1;
    console.log('reshard', { statuses: Object.fromEntries(statuses), counts, moved });
    const exit = w.proc.exitCode ?? w.proc.signalCode;
    expect(exit, `the worker process ended (${exit}):\n${w.output().slice(-5_000)}`).toBeNull();

    expect(Object.values(moved).every((k) => k > 0)).toBe(true);
    expect(await cluster.masters()).toContain(target);
    const open = [...current].filter(([, s]) => s !== 'succeeded');
    if (open.length > 0) {
      // On failure: where each open payment is, and the whole worker log in a file.
      for (const [key] of open.slice(0, 3)) {
        console.log(key, JSON.stringify(await t.app.store.history(key)));
      }
      const file = join(tmpdir(), `cluster-reshard-worker-${process.pid}-${Date.now()}.log`);
      writeFileSync(file, w.output());
      console.log(`worker log: ${file}`, w.output().slice(-15_000));
    }
    expect(open).toEqual([]);
    expect(unexpected).toEqual([]);
    expect(acknowledged.length).toBeGreaterThan(40);
    expect([...referencesThatMovedMoney(sandbox)].filter(([, c]) => c > 1)).toEqual([]);

    // A job whose finish BullMQ could not record during the move stays active until its lock
    // lapses and the stalled-job check takes it back: none holds a worker's slot for good.
    const activeJobs = async () => {
      let active = 0;
      for (const tag of t.app.layout.allPrefixes()) {
        for (const q of ['charges', 'payouts', 'reconcile']) {
          active += await t.app.redis.llen(`${tag}:${q}:active`);
        }
      }
      return active;
    };
    await until(activeJobs, {
      done: (a) => a === 0,
      what: 'no job active once every payment is final',
      timeoutMs: 30_000,
      intervalMs: 500,
    });
  }, 240_000);
});
