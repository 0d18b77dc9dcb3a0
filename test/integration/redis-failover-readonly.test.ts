/**
 * A standalone Redis that fails over behind one address (docs/operations.md "Redis outages"): a
 * managed Redis or Sentinel behind a DNS name, here a TCP proxy in front of two `redis-server`s
 * this test owns. After the failover the old primary stays up as a replica and answers every
 * write on the connections opened before `READONLY`; nothing closes them. The service must move
 * to the new primary by itself: requests answer 503 `redis_unavailable` for a moment (never 500),
 * payments made before and after settle, each reference moves money once. A process or a
 * command pointed at the replica's own address is refused by name.
 */
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { alternatingPaymentBody, apiCall } from '../support/api-call.ts';
import { openApp, startRoles } from '../../src/app/composition.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { RedisReplicaError } from '../../src/infra/redis/redis-check.ts';
import { startTestApp, testConfig, type TestApp } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { analyse } from '../support/chaos.ts';
import { until } from '../support/poll.ts';
import { spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let a: RedisServerHandle;
let b: RedisServerHandle;
let sandbox: Sandbox;
let t: TestApp;
let proxy: net.Server;
let target = 0;
const sockets = new Set<net.Socket>();
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  a = await spawnRedisServer();
  b = await spawnRedisServer();
  const rb = new Redis(b.url);
  await rb.replicaof('127.0.0.1', a.port);
  await until(async () => /master_link_status:up/.test(await rb.info('replication')));
  rb.disconnect();
  target = a.port;
  proxy = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as net.AddressInfo).port;
  sandbox = await startTestSandbox();
  t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api', 'worker', 'reconciler'],
    env: { REDIS_URL: `redis://127.0.0.1:${port}`, LOG_LEVEL: 'info' },
    logDestination: {
      write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    },
  });
});
afterAll(async () => {
  // Keep the data: both servers are this file's, and a connection that has not written since the
  // failover would meet READONLY once more while deleting.
  await t?.close({ keepData: true });
  await sandbox?.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  await a?.close();
  await b?.close();
});

/** Posts payment `i` until it is accepted; every refusal on the way is a 503 to retry. */
async function postUntilAccepted(i: number): Promise<string> {
  const refusals: unknown[] = [];
  const accepted = await until(
    async () => {
      const r = await apiCall(t, 'POST', '/payments', alternatingPaymentBody(i, 'fo-', 'failover'));
      // 200: an earlier try stored it and then met the refusal (its enqueue, say): the same key
      // is the same payment.
      if (r.status === 201 || r.status === 200) return r.body.key as string;
      refusals.push({ status: r.status, body: r.body });
      return undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  for (const r of refusals) {
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'redis_unavailable' } } });
  }
  return accepted;
}

describe('a failover behind one address (a managed Redis, Sentinel behind a DNS name)', () => {
  it('reconnects to the new primary: requests answer 503 for a moment, then every payment settles once', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 10; i++) keys.push(await postUntilAccepted(i));
    await until(async () => (await t.app.store.countByState()).succeeded === 10);

    // B becomes the primary, A its replica, and the address leads to B from now on. The app's
    // connections opened before still lead to A, which stays up and answers writes READONLY.
    const rb = new Redis(b.url);
    const ra = new Redis(a.url);
    await rb.replicaof('NO', 'ONE');
    await ra.replicaof('127.0.0.1', b.port);
    target = b.port;
    ra.disconnect();
    rb.disconnect();

    for (let i = 10; i < 20; i++) keys.push(await postUntilAccepted(i));
    const intents = await until(
      async () => {
        const all = await Promise.all(keys.map((k) => t.app.store.get(k)));
        return all.every((i) => i?.state === 'succeeded') ? all.map((i) => i!) : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(analyse(intents, sandbox.ledger(), keys).checks.filter((c) => c.count > 0)).toEqual([]);
    await until(async () => (await fetch(`${t.url!}/readyz`)).status === 200);
    // Said as an outage that ended, not as a stream of errors.
    expect(lines.filter((l) => String(l.msg).startsWith('redis unreachable'))).not.toEqual([]);
    expect(lines.filter((l) => l.msg === 'redis reachable again')).not.toEqual([]);
    expect(lines.filter((l) => l.msg === 'redis error')).toEqual([]);
  }, 90_000);

  it('a process or a command pointed at the replica itself is refused by name', async () => {
    // After the test above A is B's replica: as if REDIS_URL named the old primary's own address.
    const config = await testConfig(t.prefix, { REDIS_URL: a.url });
    const cli = await runCliInProcess(config, ['redis', 'status', '--json']);
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.out)).toMatchObject({
      error: { code: 'redis_is_replica', message: expect.stringContaining(String(a.port)) },
    });
    const app = openApp(config, createLogger({ level: 'silent' }));
    try {
      await expect(startRoles(app, ['worker'])).rejects.toBeInstanceOf(RedisReplicaError);
    } finally {
      await app.close();
    }
  });
});
