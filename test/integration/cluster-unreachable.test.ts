/**
 * Two ways a Redis Cluster configuration used to hang instead of answering:
 * - the fail-fast connection (the stores, HTTP requests, CLI commands) queued a command for as
 *   long as the whole cluster was unreachable and ran it when the cluster came back, behind its
 *   caller's back; it now refuses it, as the standalone connection does;
 * - REDIS_CLUSTER_NODES naming a standalone server left start-up waiting for a slot map forever,
 *   without a word; it is now refused at start, naming the node.
 * Real redis-server processes of the test's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { openApp, startRoles } from '../../src/app/composition.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { createFailFastRedis } from '../../src/infra/redis/connection.ts';
import { RedisNotAClusterError } from '../../src/infra/redis/redis-check.ts';
import { testConfig } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startLocalCluster, type LocalCluster } from '../support/redis-cluster.ts';
import { uniquePrefix } from '../support/redis.ts';
import { spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';

let cluster: LocalCluster;
let standalone: RedisServerHandle;

beforeAll(async () => {
  [cluster, standalone] = await Promise.all([
    startLocalCluster({ replicas: 0 }),
    spawnRedisServer(),
  ]);
}, 60_000);
afterAll(async () => {
  await Promise.all([cluster?.close(), standalone?.close()]);
});

describe('a Redis Cluster that is not there', () => {
  it('the fail-fast connection refuses a command while the whole cluster is down', async () => {
    const conn: Redis = createFailFastRedis({
      url: `redis://127.0.0.1:${cluster.nodes[0]!.port}`,
      clusterNodes: cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    });
    conn.on('error', () => undefined);
    try {
      expect(await conn.set('{ff}:n', '0')).toBe('OK');
      await Promise.all(cluster.nodes.map((n) => n.server.stop('SIGKILL')));
      // Before the fix this stayed pending until the cluster was back (the test's timeout).
      await expect(conn.incr('{ff}:n')).rejects.toThrow();
      // Refused means dropped: the INCR must not run once the (emptied) cluster is back, behind
      // its caller's back. The GET is sent after anything the client had queued.
      await Promise.all(cluster.nodes.map((n) => n.server.restart()));
      await cluster.waitHealthy(3);
      await until(() => conn.status === 'ready', {
        what: 'the client to come back',
        timeoutMs: 30_000,
      });
      expect(await conn.get('{ff}:n')).toBeNull();
    } finally {
      conn.disconnect();
      if (cluster.nodes.some((n) => !n.server.isOpen())) {
        await Promise.all(cluster.nodes.map((n) => n.server.restart()));
        await cluster.waitHealthy(3);
      }
    }
  }, 60_000);

  it('REDIS_CLUSTER_NODES naming a standalone server is refused at start, by name', async () => {
    const config = await testConfig(uniquePrefix('notcluster'), {
      REDIS_URL: standalone.url,
      REDIS_CLUSTER_NODES: `127.0.0.1:${standalone.port}`,
    });
    const app = openApp(config, createLogger({ level: 'silent' }));
    try {
      const err = await startRoles(app, ['api']).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RedisNotAClusterError);
      expect((err as Error).message).toContain(`127.0.0.1:${standalone.port}`);
    } finally {
      await app.close();
    }
  }, 30_000);
});
