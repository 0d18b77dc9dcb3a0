/**
 * `/metrics` while Redis is down (docs/operations.md, "Metrics" and "Alerts worth setting"): a
 * scrape that cannot read Redis counts in `billing_metrics_collect_errors_total` and leaves the
 * Redis gauges absent, never reports every intent state as 0. A zero would clear the "Payments
 * need a human" and "Outcomes stuck unknown" panels while payments still wait, and no "Metrics
 * blind" alert would say why. The server here is this file's own `redis-server`, stopped mid-test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type App } from '../../src/app/composition.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { testConfig } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { uniquePrefix } from '../support/redis.ts';
import { spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';
import { parseMetrics } from '../support/metrics-text.ts';

let server: RedisServerHandle;
let app: App;

beforeAll(async () => {
  server = await spawnRedisServer();
  const config = await testConfig(uniquePrefix('metdown'), { REDIS_URL: server.url });
  app = openApp(config, createLogger({ level: 'silent' }));
  await app.health.waitUntilUp(5_000);
});

afterAll(async () => {
  await app?.close();
  await server?.close();
});

describe('/metrics while Redis is down', () => {
  it('counts the failed read and reports no intent count, rather than 0 in every state', async () => {
    const before = parseMetrics(await app.metrics.registry.metrics());
    expect(before.filter((s) => s.name === 'billing_intents').length).toBeGreaterThan(0);

    await server.stop('SIGKILL');
    await until(() => !app.health.isUp() || undefined, {
      what: 'outage noticed',
      timeoutMs: 10_000,
    });

    // Two scrapes: the counter read by one scrape is the one the scrape before it incremented.
    await app.metrics.registry.metrics();
    const down = parseMetrics(await app.metrics.registry.metrics());
    const intents = down.filter((s) => s.name === 'billing_intents');
    expect(intents, 'intent gauges reported while Redis is unreadable').toEqual([]);
    const errors = down.filter(
      (s) => s.name === 'billing_metrics_collect_errors_total' && s.labels.collector === 'intents',
    );
    expect(errors[0]?.value ?? 0).toBeGreaterThan(0);
  });
});
