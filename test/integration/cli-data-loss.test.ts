/**
 * A batch re-posted with the CLI while a Redis data loss is unacknowledged (docs/operations.md,
 * "Redis lost its data") is marked `afterDataLoss` like one re-posted through the service: the
 * CLI reads the deployment epoch before its command, as a service does when it starts. Unmarked,
 * a re-posted row whose payout the lost store had sent would take Sayswitch's refusal of the
 * repeated reference for a first refusal (`failed`), and "retry failed rows" would pay it again.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliInProcess } from '../support/cli-run.ts';
import { epochKey, FIRST_START_WINDOW_MS } from '../../src/infra/redis/epoch.ts';
import { openApp } from '../../src/app/composition.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { cleanupPrefix, uniquePrefix } from '../support/redis.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, testConfig, type TestApp } from '../support/app.ts';
import { startTestSandbox } from '../support/sandbox.ts';

let sandbox: Sandbox;
let t: TestApp;
let dir: string;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  // No roles: nothing submits, the test reads what the CLI created.
  t = await startTestApp({ sandboxUrl: sandbox.url, roles: [] });
  dir = await mkdtemp(join(tmpdir(), 'cli-data-loss-'));
});

afterAll(async () => {
  await t.close();
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
});

const billing = (...args: string[]) => runCliInProcess(t.app.config, args);

const CSV = [
  'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration',
  'r1,0123456789,058,GTBank,Ada Obi,40.00,NGN,data loss',
].join('\n');

describe('the CLI and an unacknowledged data loss', () => {
  it('a batch submitted before any loss is not marked', async () => {
    await writeFile(join(dir, 'before.csv'), CSV);
    const r = await billing(
      'batch',
      'submit',
      join(dir, 'before.csv'),
      '--type',
      'payout',
      '--id',
      'beforeb',
    );
    expect(r.code, r.err).toBe(0);
    const [key] = await t.app.store.batchKeys('beforeb', 0, 10);
    expect((await t.app.store.get(key!))?.afterDataLoss).toBeUndefined();
  });

  it('a batch re-posted while the loss is unacknowledged is marked afterDataLoss', async () => {
    // As a running service records a loss it detected (infra/redis/epoch.ts).
    await t.app.redis.hset(epochKey(t.prefix), 'state', 'lost', 'detectedAt', String(Date.now()));
    await writeFile(join(dir, 'after.csv'), CSV.replace('r1,', 'r2,'));
    const r = await billing(
      'batch',
      'submit',
      join(dir, 'after.csv'),
      '--type',
      'payout',
      '--id',
      'lostb',
    );
    expect(r.code, r.err).toBe(0);
    const [key] = await t.app.store.batchKeys('lostb', 0, 10);
    expect((await t.app.store.get(key!))?.afterDataLoss).toEqual(expect.any(Number));
  });
});

describe('a key group that lost its data while nothing ran (REDIS_SHARDS > 1)', () => {
  it('is recorded lost by the next command, once, and `redis status` shows it', async () => {
    const config = await testConfig(uniquePrefix('clidl'), { REDIS_SHARDS: '3' });
    const app = openApp(config, createLogger({ level: 'silent' }));
    try {
      const run = (...args: string[]) => runCliInProcess(config, args);
      expect((await run('--json', 'redis', 'status')).code).toBe(0); // writes every group's epoch
      // The deployment is older than the first-start window, and shard 2's master restarted
      // empty while nothing ran.
      const base = epochKey(app.layout.group);
      await app.redis.hset(base, 'createdAt', Date.now() - 2 * FIRST_START_WINDOW_MS);
      await app.redis.del(epochKey(app.layout.shard(2)));

      const r = await run('--json', 'redis', 'status');
      expect(r.code, r.err).toBe(0);
      type Status = { epoch: { state: string; lostId: string; detectedAt: number } };
      const lost = (JSON.parse(r.out) as Status).epoch;
      expect(lost).toMatchObject({ state: 'lost', lostId: await app.redis.hget(base, 'id') });
      // Recorded once: the next command reads the same record (before, each command wrote the
      // group a fresh epoch and every later start found nothing wrong).
      const again = await run('--json', 'redis', 'status');
      expect((JSON.parse(again.out) as Status).epoch).toEqual(lost);
    } finally {
      await cleanupPrefix(app.redis, config.redis.prefix);
      await app.close();
    }
  });
});
