/**
 * A Redis that stops answering without closing its connections (a frozen process, a partition
 * that resets nothing; here SIGSTOP on a `redis-server` this test owns). No connection event says
 * so, and the API's requests used to wait for as long as it lasted, then run behind the caller's
 * back when it woke up. Now a fail-fast connection's command times out
 * (FAIL_FAST_COMMAND_TIMEOUT_MS), the request answers 503 `redis_unavailable`, the outage starts
 * there, and the next requests answer 503 at once until a probe write succeeds again. The service
 * runs as an operator runs it (`billing start`, a child process). docs/operations.md "Redis
 * outages".
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
const FAIL_FAST_COMMAND_TIMEOUT_MS = 10_000;
import type { Sandbox } from '../../src/sandbox/index.ts';
import { apiCall } from '../support/api-call.ts';
import { FAST_ENV } from '../support/app.ts';
import { spawnBilling, type BillingChild } from '../support/child.ts';
import { until } from '../support/poll.ts';
import { findFreePort, spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';

/** Longer than a command may wait, so a request that hangs fails the test instead of passing. */
const REQUEST_LIMIT_MS = FAIL_FAST_COMMAND_TIMEOUT_MS + 20_000;

let redis: RedisServerHandle;
let sandbox: Sandbox;
let child: BillingChild | undefined;
let base: string;
let stopped = false;

const api = (method: 'GET' | 'POST', path: string, body?: unknown) =>
  apiCall({ url: base }, method, path, body, { timeoutMs: REQUEST_LIMIT_MS });

const charge = (key: string) => ({
  type: 'charge',
  key,
  email: 'hang@example.com',
  amount: '10.00',
  currency: 'NGN',
  card_token: 'tok_hang_0123456789',
});

beforeAll(async () => {
  redis = await spawnRedisServer();
  sandbox = await startTestSandbox();
  const port = await findFreePort();
  base = `http://127.0.0.1:${port}`;
  child = spawnBilling(['start'], {
    ...FAST_ENV,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'hang',
    SAYSWITCH_BASE_URL: sandbox.url,
    PORT: String(port),
    LOG_LEVEL: 'info',
  });
  await child.waitFor('roles started', 60_000);
}, 90_000);

afterAll(async () => {
  if (stopped && redis.pid !== undefined) process.kill(redis.pid, 'SIGCONT');
  child?.kill('SIGKILL');
  await child?.exited;
  await sandbox?.close();
  await redis?.close();
});

it('answers 503 redis_unavailable while Redis hangs, then serves again when it wakes', async () => {
  expect((await api('POST', '/payments', charge('before'))).status).toBe(201);

  process.kill(redis.pid!, 'SIGSTOP');
  stopped = true;
  const during = await api('POST', '/payments', charge('during'));
  expect(during).toMatchObject({ status: 503, body: { error: { code: 'redis_unavailable' } } });
  // The outage is known now: a read answers 503 without waiting for a command of its own.
  expect(await api('GET', '/payments/api_before')).toMatchObject({ status: 503 });

  process.kill(redis.pid!, 'SIGCONT');
  stopped = false;
  await until(async () => (await api('GET', '/readyz')).status === 200, {
    what: '/readyz 200 after Redis woke',
    timeoutMs: 30_000,
  });
  expect(await api('GET', '/payments/api_before')).toMatchObject({ status: 200 });
  // The 503'd POST may have been stored when Redis woke (its commands were already sent): sent
  // again with the same key it is one payment, whichever it was.
  const again = await api('POST', '/payments', charge('during'));
  expect([200, 201]).toContain(again.status);
  expect(again.body).toMatchObject({ key: 'api_during' });
}, 120_000);
