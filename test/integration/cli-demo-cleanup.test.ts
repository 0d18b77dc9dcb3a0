/**
 * `billing demo` cleans up whatever stops it during start-up. A failure after it started its own
 * pieces (here a bad variable in the environment, met when the configuration is loaded) stops the
 * redis-server it spawned (on a free port, never 6379) and its sandbox; a SIGINT during start-up
 * (before it waits for the payments) ends it with exit 130 once its keys and its env file are
 * gone, instead of killing the process with both left behind.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { runDemo } from '../../src/demo/run-demo.ts';
import { createLogger } from '../../src/infra/logger.ts';
import {
  answersPing,
  findOrStartRedis,
  type LocalRedis,
} from '../../src/infra/redis/local-redis.ts';
import { emptyDir, spawnCli } from '../support/cli-run.ts';
import { track, trackChild } from '../support/leak-check.ts';
import { cleanupPrefix, getRedisUrl } from '../support/redis.ts';
import { findFreePort } from '../support/redis-server.ts';

/** What a test started, stopped again afterwards whatever the demo did. */
const started: LocalRedis[] = [];
afterEach(async () => {
  for (const r of started.splice(0)) await r.stop();
});

const notCalled = (what: string) => () => {
  throw new Error(`${what} should not be called`);
};

describe('billing demo: cleaning up after a failed start', () => {
  it('a configuration error after Redis and the sandbox started stops both', async () => {
    let redis: LocalRedis | undefined;
    let sandboxUrl = '';
    const lines: string[] = [];
    const attempt = runDemo(
      {
        env: {},
        // A throwaway redis-server on a free port, as the demo starts when none answers.
        findRedis: async () => {
          redis = await findOrStartRedis(undefined, { localPort: await findFreePort() });
          started.push(redis);
          return redis;
        },
        // The operator's environment holds a bad variable.
        loadConfig: (overrides) => {
          sandboxUrl = overrides.SAYSWITCH_BASE_URL ?? '';
          return loadConfig({ WORKER_CONCURRENCY: '0', ...overrides });
        },
        logger: () => createLogger({ level: 'silent' }),
        openApp: notCalled('openApp'),
        startRoles: notCalled('startRoles'),
        untilSignal: () => new Promise(() => {}),
        print: (line) => lines.push(line),
        progress: () => {},
        seeders: [],
      },
      { exitWhenDone: true, timeoutMs: 1_000 },
    );
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    expect(sandboxUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await expect(fetch(`${sandboxUrl}/__sandbox/ledger`)).rejects.toThrow();
    expect(redis?.source).toBe('spawned');
    const port = Number(new URL(redis?.url ?? 'redis://x:1').port);
    expect(await answersPing('127.0.0.1', port)).toBe(false);
    expect(lines.filter((l) => l.startsWith('(could not'))).toEqual([]);
  });
});

describe('billing demo: SIGINT during start-up', () => {
  it('exits 130 with its keys and env file removed', async () => {
    const redisUrl = await getRedisUrl();
    const dir = emptyDir('demo-sigint');
    const envOut = join(dir, '.env.demo');
    const demo = spawnCli(
      ['demo', '--json', '--timeout', '120', '--env-out', envOut],
      { REDIS_URL: redisUrl, PORT: String(await findFreePort()) },
      { cwd: dir },
    );
    trackChild(demo, 'billing demo');
    const client = track(new Redis(redisUrl), 'demo sigint test client');
    let prefix: string | undefined;
    try {
      // The first sample data is in and the env file written; the demo is still seeding.
      await demo.waitForStderr('Seeded ', 60_000);
      prefix = /key prefix (\S+)/.exec(demo.stderr())?.[1];
      expect(prefix).toMatch(/^demo-\d{14}-[0-9a-f]{12}$/);
      expect(existsSync(envOut)).toBe(true);
      demo.kill('SIGINT');
      expect(await demo.exited, demo.stderr()).toBe(130);
      expect(JSON.parse(demo.stdout())).toMatchObject({ error: { code: 'interrupted' } });
      expect(existsSync(envOut)).toBe(false);
      const [, keys] = await client.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 100_000);
      expect(keys).toEqual([]);
    } finally {
      demo.kill('SIGKILL');
      await demo.exited;
      // What a demo killed before it could clean up left behind.
      if (prefix !== undefined) await cleanupPrefix(client, prefix);
      await client.quit();
    }
  }, 120_000);
});
