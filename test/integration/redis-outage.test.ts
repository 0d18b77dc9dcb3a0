/**
 * Redis failing under a running service (docs/operations.md, "Redis outages" and "Redis lost its
 * data"), on a `redis-server` this test owns: stopped, restarted with its AOF, restarted empty.
 * The service runs as an operator runs it (`billing start`, a child process); the CLI too.
 */
import { rmSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { apiCall } from '../support/api-call.ts';
import { FAST_ENV, TEST_API_TOKEN } from '../support/app.ts';
import { runBilling, spawnBilling, type BillingChild } from '../support/child.ts';
import { until } from '../support/poll.ts';
import { spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { submitJob } from '../../src/infra/queues/dispatcher.ts';
import { QUEUES } from '../../src/infra/queues/names.ts';
import { SWEEP_SCHEDULER_ID } from '../../src/payments/module.ts';
import type { Intent } from '../../src/kernel/payment.ts';

const WAIT_MS = 60_000;
/** A request that hangs fails the test instead of hanging it. */
const REQUEST_LIMIT_MS = 5_000;
const SHUTDOWN_TIMEOUT_MS = 4_000;
const PREFIX = 'outage';

let redis: RedisServerHandle;
let sandbox: Sandbox;
let env: Record<string, string>;
let base: string;
let child: BillingChild | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const api = (method: 'GET' | 'POST', path: string, body?: unknown) =>
  apiCall({ url: base }, method, path, body, { timeoutMs: REQUEST_LIMIT_MS });

const charge = (key: string) => ({
  type: 'charge',
  key,
  email: 'outage@example.com',
  amount: '1200.00',
  currency: 'NGN',
  card_token: 'tok_outage_0123456789',
});

async function paymentState(key: string): Promise<string | undefined> {
  const r = await api('GET', `/payments/api_${key}`).catch(() => undefined);
  return r?.status === 200 ? (r.body.state as string) : undefined;
}

const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

async function startService(): Promise<BillingChild> {
  const c = spawnBilling(['start'], env);
  await c.waitFor('roles started', WAIT_MS);
  return c;
}

async function stopService(): Promise<void> {
  if (!child) return;
  child.kill('SIGKILL');
  await child.exited;
  child = undefined;
}

/** Stops the server and removes what it persisted, then starts it again: Redis restarted empty. */
async function restartEmpty(): Promise<void> {
  await redis.stop('SIGKILL');
  for (const f of readdirSync(redis.dir))
    rmSync(join(redis.dir, f), { recursive: true, force: true });
  await redis.restart();
}

beforeAll(async () => {
  redis = await spawnRedisServer({ appendonly: true });
  sandbox = await startTestSandbox();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    ...FAST_ENV,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: PREFIX,
    SAYSWITCH_BASE_URL: sandbox.url,
    PORT: String(port),
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms`,
  };
});

afterAll(async () => {
  await stopService();
  await sandbox.close();
  await redis.close();
});

describe('Redis stopped and restarted with its AOF', () => {
  it('answers 503 fast, logs the outage once, and the CLI exits 1 naming the address', async () => {
    child = await startService();
    expect((await api('POST', '/payments', charge('before1'))).status).toBe(201);
    await until(async () => (await paymentState('before1')) === 'succeeded', {
      what: 'the first payment to succeed',
      timeoutMs: WAIT_MS,
    });

    await redis.stop('SIGTERM');

    const ready = await until(
      async () => {
        const r = await api('GET', '/readyz');
        return r.status === 503 ? r : undefined;
      },
      { what: '/readyz to answer 503', timeoutMs: WAIT_MS },
    );
    expect(ready.body).toMatchObject({ status: 'not_ready', reason: 'redis_unavailable' });

    const post = await api('POST', '/payments', charge('during1'));
    expect(post.status).toBe(503);
    expect(post.body).toMatchObject({ error: { code: 'redis_unavailable' } });
    // Refused before anything else runs, validation included (not after a command failed): a
    // body the schema would refuse with 422 gets the outage's 503, so a client retries later.
    const early = await api('POST', '/payments', { amount: 'not a number' });
    expect(early.status).toBe(503);
    expect(early.body).toMatchObject({ error: { code: 'redis_unavailable' } });
    const get = await api('GET', '/payments/api_before1');
    expect(get.status).toBe(503);
    expect(get.body).toMatchObject({ error: { code: 'redis_unavailable' } });

    // Every CLI command: exit 1 and one line naming the address and what to do.
    const commands = [
      ['payments', 'show', 'api_before1'],
      ['reconcile'],
      ['redis', 'status'],
      ['batch', 'status', 'b1'],
      ['subs', 'list'],
      ['start'],
    ];
    const runs = await Promise.all(
      commands.map((args) => runBilling(args, { ...env, LOG_LEVEL: 'silent' })),
    );
    runs.forEach((run, i) => {
      const what = `${commands[i]?.join(' ')}: ${run.output}`;
      expect(run.code, what).toBe(1);
      const lines = run.output.trim().split('\n');
      expect(lines, what).toHaveLength(1);
      expect(lines[0]).toContain(`cannot reach Redis at ${redis.url}`);
      expect(lines[0]).toContain('start Redis or point REDIS_URL');
    });

    // The service said so once, without a stack per reconnect attempt.
    const out = child.output();
    expect(occurrences(out, 'redis unreachable'), out).toBe(1);
    expect(out).not.toContain('    at ');

    await redis.restart();
    await until(async () => (await api('GET', '/readyz')).status === 200, {
      what: '/readyz to answer 200 again',
      timeoutMs: WAIT_MS,
    });
    await until(() => child?.output().includes('redis reachable again'), {
      what: 'the end of the outage logged',
      timeoutMs: WAIT_MS,
    });
    expect(occurrences(child.output(), 'redis reachable again')).toBe(1);
    // The AOF kept everything: no data loss is reported, the payment is still there.
    expect(child.output()).not.toContain('REDIS DATA LOSS');
    expect(await paymentState('before1')).toBe('succeeded');
    expect((await api('POST', '/payments', charge('after1'))).status).toBe(201);
    await until(async () => (await paymentState('after1')) === 'succeeded', {
      what: 'a payment after the outage to succeed',
      timeoutMs: WAIT_MS,
    });
  });

  it('SIGTERM while Redis is down still exits, within SHUTDOWN_TIMEOUT', async () => {
    child ??= await startService();
    await redis.stop('SIGTERM');
    await until(async () => (await api('GET', '/readyz')).status === 503, {
      what: '/readyz to answer 503',
      timeoutMs: WAIT_MS,
    });
    const c = child;
    c.kill('SIGTERM');
    // The limit is the test's patience, not a measurement: SHUTDOWN_TIMEOUT plus process exit.
    const code = await until(
      () => (c.proc.exitCode !== null || c.proc.signalCode !== null ? c.exited : undefined),
      { what: 'the service to exit after SIGTERM', timeoutMs: SHUTDOWN_TIMEOUT_MS + 5_000 },
    );
    expect(code, c.output()).not.toBe('SIGKILL');
    child = undefined;
    await redis.restart();
  });
});

describe('Redis restarted empty', () => {
  it('detects the loss, alerts, holds /readyz at 503 until acknowledged, re-creates schedulers', async () => {
    child = await startService();
    expect((await api('POST', '/payments', charge('lost1'))).status).toBe(201);
    await until(async () => (await paymentState('lost1')) === 'succeeded', {
      what: 'the payment before the loss to succeed',
      timeoutMs: WAIT_MS,
    });
    const lost = (await api('GET', '/payments/api_lost1')).body as unknown as Intent;

    // The submit job exactly as it was enqueued before the loss, to replay afterwards as a
    // client's offline queue would.
    const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    const intentHash = await conn.hgetall(`${PREFIX}:intent:api_lost1`);
    const replayed = submitJob({
      key: lost.key,
      type: 'charge',
      attempt: 1,
      amount: Number(intentHash.amount) as Intent['amount'],
      currency: 'NGN',
      reference: intentHash.reference as Intent['reference'],
      enqueues: Number(intentHash.enqueues),
      ...(intentHash.incarnation ? { incarnation: intentHash.incarnation } : {}),
    });
    await conn.quit();

    await restartEmpty();

    await until(() => child?.output().includes('REDIS DATA LOSS'), {
      what: 'the data loss to be logged',
      timeoutMs: WAIT_MS,
    });
    const ready = await until(
      async () => {
        const r = await api('GET', '/readyz');
        return r.status === 503 ? r : undefined;
      },
      { what: '/readyz 503', timeoutMs: WAIT_MS },
    );
    expect(ready.body).toMatchObject({ reason: 'redis_data_lost' });

    const metrics = await fetch(`${base}/metrics`, {
      headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
      signal: AbortSignal.timeout(REQUEST_LIMIT_MS),
    }).then((r) => r.text());
    expect(metrics).toMatch(/^billing_redis_data_loss_total 1$/m);
    expect(metrics).toMatch(/^billing_redis_data_loss_unacknowledged 1$/m);

    const check = new Redis(redis.url, { maxRetriesPerRequest: null });
    try {
      const events = await check.xrange(`${PREFIX}:events`, '-', '+');
      expect(events.map(([, f]) => f.join(' ')).join('\n')).toContain('alert.redis_data_lost');

      // The schedulers are back without a restart.
      const reconcile = new Queue(QUEUES.reconcile, { connection: check, prefix: PREFIX });
      await until(async () => Boolean(await reconcile.getJobScheduler(SWEEP_SCHEDULER_ID)), {
        what: 'the sweep scheduler re-created',
        timeoutMs: WAIT_MS,
      });
      await reconcile.close();

      // A job replayed into the empty Redis finds no intent and completes; the same payment
      // posted again is not blocked by it, and the gateway moves its money once.
      const charges = new Queue(QUEUES.charges, { connection: check, prefix: PREFIX });
      await charges.add(replayed.name, replayed.data, replayed.opts);
      await until(async () => (await charges.getJobState(replayed.opts.jobId)) === 'completed', {
        what: 'the replayed job to complete',
        timeoutMs: WAIT_MS,
      });
      await charges.close();
    } finally {
      await check.quit();
    }
    expect([200, 201]).toContain((await api('POST', '/payments', charge('lost1'))).status);
    await until(async () => (await paymentState('lost1')) === 'succeeded', {
      what: 'the re-posted payment to reach succeeded',
      timeoutMs: WAIT_MS,
    });
    expect(sandbox.ledger().activity['api_lost1_1']?.moves).toBe(1);

    // Still not ready: only an operator clears the alarm.
    expect((await api('GET', '/readyz')).status).toBe(503);
    const ack = await runBilling(['redis', 'ack-data-loss', '--json'], {
      ...env,
      LOG_LEVEL: 'silent',
    });
    expect(ack.code, ack.output).toBe(0);
    expect(JSON.parse(ack.output)).toEqual({ acknowledged: true });
    await until(async () => (await api('GET', '/readyz')).status === 200, {
      what: '/readyz 200 after the acknowledgement',
      timeoutMs: WAIT_MS,
    });
  });
});
