/**
 * The worker watchdog (infra/queues/worker-watchdog.ts) replaces a worker that stays alive but
 * takes no job while its queue has jobs due — what BullMQ workers can do after a Redis master
 * failover — and leaves alone a worker that is merely idle or whose queue is paused on purpose.
 * The test stops a worker's fetching behind the product's back (`Worker.pause`, which the product
 * never calls: it pauses queues, not workers); from the queue's side that is exactly a worker that
 * stopped fetching.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeBacklog } from '../../src/infra/queues/worker-watchdog.ts';
import { createPayment } from '../../src/payments/create.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { createDeps, startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox;
let t: TestApp;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['worker'],
    env: { WORKER_STUCK_AFTER: '1s' },
  });
});

afterAll(async () => {
  await t?.close();
  await sandbox?.close();
});

const deps = () => createDeps(t.app);

function charge(key: string) {
  return {
    type: 'charge',
    key,
    email: 'ada@example.com',
    amount: '25.00',
    currency: 'NGN',
    card_token: 'tok_watchdog_0123456789',
  };
}

async function replacedCount(): Promise<number> {
  const metric = await t.app.metrics.registry.getSingleMetricAsString(
    'billing_workers_replaced_total',
  );
  // Every observed queue has its series (at 0 until a replacement): the charges worker's.
  const line = metric
    .split('\n')
    .find((l) => l.startsWith('billing_workers_replaced_total{') && l.includes('queue="charges"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const chargesWorker = () => {
  const i = t.running.workers.findIndex((w) => w.name === 'charges');
  return { i, worker: t.running.workers[i]! };
};

describe('worker watchdog', () => {
  it('replaces a worker that takes no job while one is due, and the payment completes', async () => {
    const { i, worker: stuck } = chargesWorker();
    await stuck.pause();
    const before = await replacedCount();

    expect((await createPayment(deps(), charge('wd1'))).status).toBe('created');
    const intent = await until(() => t.app.store.get('api_wd1'), {
      done: (x) => x?.state === 'succeeded',
      what: 'api_wd1 succeeded through the replacement worker',
      timeoutMs: 30_000,
    });
    expect(intent?.state).toBe('succeeded');
    const fresh = t.running.workers[i]!;
    expect(fresh).not.toBe(stuck);
    expect(fresh.name).toBe('charges');
    expect(fresh.isRunning()).toBe(true);
    expect(await replacedCount()).toBe(before + 1);
  });

  it('leaves an idle worker and a worker of a paused queue alone', async () => {
    const { worker } = chargesWorker();
    const before = await replacedCount();
    await t.app.dispatcher.pause('charges');
    try {
      expect((await createPayment(deps(), charge('wd2'))).status).toBe('created');
      const queue = t.app.dispatcher.queue('charges');
      const backlog = await probeBacklog(t.app.redis, worker, Date.now());
      expect(backlog.paused).toBe(true);
      expect(await queue.getWaitingCount()).toBe(1);
      // Several watchdog periods (1 s / 4) past WORKER_STUCK_AFTER: nothing is replaced.
      await new Promise((r) => setTimeout(r, 2_500));
      expect(chargesWorker().worker).toBe(worker);
      expect(await replacedCount()).toBe(before);
    } finally {
      await t.app.dispatcher.queue('charges').resume();
    }
    await until(() => t.app.store.get('api_wd2'), {
      done: (x) => x?.state === 'succeeded',
      what: 'api_wd2 succeeded once the queue resumed',
      timeoutMs: 30_000,
    });
    expect(chargesWorker().worker).toBe(worker);
  });

  it('counts a delayed job whose time has come, and one not yet due as nothing', async () => {
    const { worker } = chargesWorker();
    const probe = new Queue('watchdog-probe', {
      connection: t.app.redis,
      prefix: worker.opts.prefix!,
    });
    try {
      await probe.add('later', {}, { delay: 60_000 });
      expect((await probeBacklog(t.app.redis, probe, Date.now())).delayedDue).toBe(0);
      expect((await probeBacklog(t.app.redis, probe, Date.now() + 61_000)).delayedDue).toBe(1);
    } finally {
      await probe.obliterate({ force: true });
      await probe.close();
    }
  });
});
