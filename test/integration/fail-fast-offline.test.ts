/**
 * The fail-fast connection (src/infra/redis/connection.ts `createFailFastRedis`: the stores, the
 * queues' producers, HTTP requests, CLI commands) during an outage: a command is refused after
 * one reconnection attempt, and the refused command is dropped, never run once Redis is back.
 * A store write its caller was told failed (a 503) must not happen later behind its back. On a
 * `redis-server` of the test's own, killed and restarted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createFailFastRedis } from '../../src/infra/redis/connection.ts';
import { until } from '../support/poll.ts';
import { spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';

let server: RedisServerHandle;

beforeAll(async () => {
  server = await spawnRedisServer();
});
afterAll(async () => {
  await server?.close();
});

describe('a fail-fast connection while Redis is down', () => {
  it('refuses a command, and the refused command never runs once Redis is back', async () => {
    const conn: Redis = createFailFastRedis(server.url);
    conn.on('error', () => undefined);
    try {
      expect(await conn.ping()).toBe('PONG');
      await server.stop('SIGKILL');
      await expect(conn.set('ff:late', '1')).rejects.toThrow();

      await server.restart();
      await until(() => conn.status === 'ready', {
        what: 'the connection to come back',
        timeoutMs: 30_000,
      });
      // Sent after anything the client had queued: the refused SET would have run before it.
      expect(await conn.get('ff:late')).toBeNull();
    } finally {
      conn.disconnect();
    }
  });
});
