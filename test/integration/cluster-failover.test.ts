/**
 * Crashes on a Redis Cluster with REDIS_SHARDS=3 and one replica per master (six processes):
 * payments are posted to the API while the worker process is SIGKILLed and restarted, and one
 * master holding a shard is SIGKILLed and replaced by its replica. Every payment the API
 * acknowledged (201) ends final or needs_review, and no intent moved money under two references
 * (judged by the sandbox ledger, the truth of what moved). docs/operations.md, "Redis Cluster".
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { FAST_ENV, startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { spawnBilling, type BillingChild } from '../support/child.ts';
import { until } from '../support/poll.ts';
import { startLocalCluster, type LocalCluster } from '../support/redis-cluster.ts';
import { uniquePrefix } from '../support/redis.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import {
  FINAL_STATES as FINAL,
  referencesThatMovedMoney,
  statesOnceFinal,
} from '../support/settled.ts';

const N = 150;

let cluster: LocalCluster;
let sandbox: Sandbox;
let api: TestApp;
let env: Record<string, string>;
const children: BillingChild[] = [];

describe('cluster failover', () => {
  beforeAll(async () => {
    cluster = await startLocalCluster({ replicas: 1 });
    // Faults (54–57: timeouts, 500s, 429s) keep references in doubt across the crashes.
    sandbox = await startTestSandbox({
      faultRate: 0.15,
      seed: 11,
      settleMs: 200,
      hangMs: 1_500,
      latencyMs: 20,
    });
    const prefix = uniquePrefix('clfo');
    env = {
      ...FAST_ENV,
      ...cluster.env(3),
      QUEUE_PREFIX: prefix,
      SAYSWITCH_BASE_URL: sandbox.url,
      SUBMIT_LEASE: '1500ms',
      WORKER_LOCK_DURATION: '1s',
      RECONCILE_SCHEDULE: '200ms,300ms,500ms,1s,2s,3s,5s',
      RECONCILE_CRON: '* * * * * *',
      ORPHAN_AFTER: '3s',
      // A BullMQ worker can stay alive yet stop fetching after the failover (bullmq#648, #3088):
      // the watchdog replaces it well within the test's bound.
      WORKER_STUCK_AFTER: '5s',
      LOG_LEVEL: 'info',
    };
    api = await startTestApp({ sandboxUrl: sandbox.url, roles: ['api'], prefix, env });
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await api?.close({ keepData: true });
    await sandbox?.close();
    await cluster?.close();
  });

  function body(i: number): Record<string, unknown> {
    // Amounts avoid the sandbox's deterministic 51–58 remainders.
    const amount = `${100 + i}.${String(i % 50).padStart(2, '0')}`;
    return i % 2 === 0
      ? {
          type: 'charge',
          key: `fo${i}`,
          email: 'c@example.com',
          amount,
          currency: 'NGN',
          card_token: 'tok_failover_0123456789',
        }
      : {
          type: 'payout',
          key: `fo${i}`,
          account_number: '0123456789',
          bank_code: '000013',
          bank_name: 'GTBank',
          account_name: 'Failover Test',
          amount,
          currency: 'NGN',
          narration: 'failover test',
        };
  }

  async function post(i: number): Promise<number> {
    const res = await fetch(`${api.url}/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body(i)),
    }).catch(() => undefined);
    await res?.text();
    return res?.status ?? 0;
  }

  function startWorker(): BillingChild {
    // Its whole log is kept: on failure it goes to a file.
    const child = spawnBilling(
      ['start', '--roles', 'worker,reconciler,scheduler'],
      env,
      20_000_000,
    );
    children.push(child);
    return child;
  }

  describe('on a Redis Cluster with replicas', () => {
    it('loses no acknowledged payment and moves no money twice across a worker crash and a master failover', async () => {
      const acknowledged: string[] = [];
      let worker = startWorker();
      await worker.waitFor('roles started');

      const victim = await cluster.masterOf(
        Number(
          await cluster
            .node(cluster.nodes[0]!.port)
            .call('CLUSTER', 'KEYSLOT', `{${api.app.layout.shard(1).slice(1, -1)}}`),
        ),
      );
      for (let i = 0; i < N; i++) {
        if (i === N / 3) {
          // The worker dies without warning mid-run; a new one takes over.
          worker.kill('SIGKILL');
          await worker.exited;
          worker = startWorker();
          await worker.waitFor('roles started');
        }
        if (i === N / 2) {
          // A master holding shard 1 dies; its replica is promoted. Its replica first has what the
          // master had (the deployment epoch among it): a replica still in its first sync has
          // nothing, and the product then rightly reports a data loss instead of a failover.
          await cluster.waitReplicated(victim);
          await cluster.nodes.find((n) => n.port === victim)!.server.stop('SIGKILL');
          // Readiness writes to every group: it answers 503 until the replica took over.
          await until(() => api.app.ready().then((r) => !r.ok), {
            what: 'readiness failing while a master is down',
            timeoutMs: 10_000,
          });
        }
        if ((await post(i)) === 201) acknowledged.push(`api_fo${i}`);
      }
      await cluster.waitHealthy(3);
      expect(await cluster.masters()).not.toContain(victim);
      await until(() => api.app.ready().then((r) => r.ok), {
        what: 'readiness back after the failover',
        timeoutMs: 20_000,
      });

      const current = await statesOnceFinal(api.app.store, acknowledged, 90_000);
      worker.kill('SIGTERM');
      await worker.exited;

      const open = [...current].filter(([, s]) => !FINAL.has(s));
      // On failure: where each open payment is, and its history, to tell a stuck queue from a loss.
      const diagnosis = async () =>
        JSON.stringify(
          await Promise.all(
            open.map(async ([key]) => ({
              key,
              shard: api.app.layout.shardOf(key),
              history: await api.app.store.history(key),
            })),
          ),
        );
      if (open.length > 0) {
        // The whole worker log goes to a file (CI prints only its end).
        const file = join(tmpdir(), `cluster-failover-worker-${process.pid}-${Date.now()}.log`);
        writeFileSync(file, worker.output());
        console.log(await diagnosis(), `worker log: ${file}`, worker.output().slice(-15_000));
      }
      expect(open).toEqual([]);
      expect(acknowledged.length).toBeGreaterThan(N / 2);

      const perIntent = referencesThatMovedMoney(sandbox);
      expect([...perIntent].filter(([, n]) => n > 1)).toEqual([]);
      // The store agrees with the ledger: succeeded moved money under its reference, failed did not.
      const ledger = sandbox.ledger().references;
      const disagree: string[] = [];
      for (const [key, state] of current) {
        const intent = await api.app.store.get(key);
        const moved = ledger[intent?.reference ?? '']?.moneyMoved === true;
        if (state === 'succeeded' && !moved) disagree.push(`${key} succeeded, nothing moved`);
        if (state === 'failed' && perIntent.has(key)) disagree.push(`${key} failed, money moved`);
      }
      expect(disagree).toEqual([]);
      const counts: Record<string, number> = {};
      for (const s of current.values()) counts[s] = (counts[s] ?? 0) + 1;
      console.log('cluster failover final states', counts, {
        acknowledged: acknowledged.length,
        posted: N,
      });
    }, 180_000);
  });
});
