/**
 * The CLI and REDIS_SHARDS (docs/operations.md, "Redis Cluster"): a one-shot command checks the
 * deployment's recorded shard count as a service does when it starts. Run with another count, it
 * is refused naming both values (where it would have looked in the wrong shards and answered
 * `not_found`); run before the first service start, it records its count, so the service started
 * next with the same REDIS_SHARDS starts (where the epoch the command opened made it count as a
 * one-shard deployment). On the harness Redis, under unique prefixes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openApp, startRoles, type App } from '../../src/app/composition.ts';
import type { Config } from '../../src/config/config.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { createPayment } from '../../src/payments/create.ts';
import { createDeps, testConfig } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { cleanupPrefix, uniquePrefix } from '../support/redis.ts';

const opened: App[] = [];
afterEach(async () => {
  for (const app of opened.splice(0)) {
    await cleanupPrefix(app.redis, app.config.redis.prefix);
    await app.close();
  }
});

const config = (prefix: string, shards?: number): Promise<Config> =>
  testConfig(prefix, {
    SAYSWITCH_BASE_URL: 'http://127.0.0.1:9',
    ...(shards !== undefined ? { REDIS_SHARDS: String(shards) } : {}),
  });

function open(c: Config): App {
  const app = openApp(c, createLogger({ level: 'silent' }));
  opened.push(app);
  return app;
}

describe('the CLI and REDIS_SHARDS', () => {
  it('another count than the deployment records: refused naming both, not a wrong not_found', async () => {
    const prefix = uniquePrefix('cli-shards');
    const three = await config(prefix, 3);
    const service = open(three);
    await (await startRoles(service, [])).stop(); // records REDIS_SHARDS=3
    // An API payment in a shard other than 0 (keys hash over the shards).
    let key = '';
    for (let i = 0; key === '' || service.layout.shardOf(`api_${key}`) === 0; i++) key = `cs${i}`;
    await createPayment(createDeps(service), {
      type: 'charge',
      key,
      email: 'a@example.com',
      amount: '5.00',
      currency: 'NGN',
      card_token: 'tok_abcdef0123456789',
    });

    const ok = await runCliInProcess(three, ['payments', 'show', `api_${key}`, '--json']);
    expect(ok.code, ok.err).toBe(0);

    // The operator's shell without REDIS_SHARDS (one shard).
    const one = await config(prefix);
    const json = await runCliInProcess(one, ['payments', 'show', `api_${key}`, '--json']);
    expect(json.code, json.out).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({
      error: {
        code: 'redis_shard_count_mismatch',
        details: { variable: 'REDIS_SHARDS', configured: 1, stored: 3 },
      },
    });
    const human = await runCliInProcess(one, ['payments', 'list']);
    expect(human.code).toBe(1);
    expect(human.err).toContain('REDIS_SHARDS=1');
    expect(human.err).toContain('REDIS_SHARDS=3');
    // The refusal changed nothing: the service still starts with its count.
    await (await startRoles(open(three), [])).stop();
  });

  it('a command before the first service start records its count: the service then starts', async () => {
    const prefix = uniquePrefix('cli-shards');
    const three = await config(prefix, 3);
    const status = await runCliInProcess(three, ['redis', 'status', '--json']);
    expect(status.code, status.err).toBe(0);
    const app = open(three);
    await (await startRoles(app, [])).stop();
    // And another count is refused from then on, by the CLI as by the service.
    const two = await runCliInProcess(await config(prefix, 2), ['redis', 'status', '--json']);
    expect(two.code).toBe(1);
    expect(JSON.parse(two.out)).toMatchObject({ error: { code: 'redis_shard_count_mismatch' } });
  });
});
