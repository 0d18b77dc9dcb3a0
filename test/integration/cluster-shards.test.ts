/**
 * REDIS_SHARDS on a standalone Redis: the shard count is recorded at first start and another
 * count is refused with a message naming both; a deployment that predates the record counts as
 * one shard. Payments spread over the shards and a list pages across them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openApp, startRoles, type App } from '../../src/app/composition.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { createPayment } from '../../src/payments/create.ts';
import { ShardCountMismatchError } from '../../src/infra/redis/shards.ts';
import { FIRST_START_WINDOW_MS } from '../../src/infra/redis/epoch.ts';
import { createDeps, testConfig } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, uniquePrefix } from '../support/redis.ts';

const opened: App[] = [];
afterEach(async () => {
  for (const app of opened.splice(0)) {
    await cleanupPrefix(app.redis, app.config.redis.prefix);
    await app.close();
  }
});

async function open(prefix: string, shards: number): Promise<App> {
  const app = openApp(
    await testConfig(prefix, { REDIS_SHARDS: String(shards) }),
    createLogger({ level: 'silent' }),
  );
  opened.push(app);
  return app;
}

describe('REDIS_SHARDS', () => {
  it('is fixed at first start: another count is refused, naming both values', async () => {
    const prefix = uniquePrefix('shards');
    const first = await open(prefix, 3);
    await (await startRoles(first, [])).stop();
    const again = await open(prefix, 2);
    const err = await startRoles(again, []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShardCountMismatchError);
    expect((err as Error).message).toContain('REDIS_SHARDS=2');
    expect((err as Error).message).toContain('REDIS_SHARDS=3');
    await (await startRoles(await open(prefix, 3), [])).stop();
  });

  it('counts a deployment from before the record as one shard', async () => {
    const prefix = uniquePrefix('shards');
    const old = await open(prefix, 1);
    await old.epoch.open(Date.now());
    const err = await startRoles(await open(prefix, 3), []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShardCountMismatchError);
    await (await startRoles(await open(prefix, 1), [])).stop();
  });

  it('still starts with its own count after the group lost its data (shard 0 master emptied)', async () => {
    // Shard 0's master restarted empty while the service ran: the group's epoch and shard count
    // are gone, shards 1 and 2 still hold their API payments. The running process detects the
    // loss (it rewrites the group's epoch, state lost). A process restarted with the same
    // REDIS_SHARDS=3 must start: before, the rewritten epoch without a count read as a
    // deployment that predates the record (one shard), so every restart — and every CLI
    // command, `billing redis ack-data-loss` included — was refused with "start with
    // REDIS_SHARDS=1", which would hide shards 1 and 2.
    const prefix = uniquePrefix('shards');
    const app = await open(prefix, 3);
    const running = await startRoles(app, []);
    await app.redis.del(`${app.layout.group}:shards`, `${app.layout.group}:epoch`);
    await until(() => app.epoch.isLost(), { timeoutMs: 12_000, what: 'the loss detected' });
    // The check that detected the loss had time to finish (it restores the record right after).
    await until(() => app.redis.exists(`${app.layout.group}:shards`), {
      done: (n) => n === 1,
      timeoutMs: 12_000,
      what: 'the shard count recorded again',
    }).catch(() => undefined);
    const restarted = await startRoles(await open(prefix, 3), []);
    await restarted.stop();
    // Another count is still refused.
    const err = await startRoles(await open(prefix, 2), []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShardCountMismatchError);
    expect((err as ShardCountMismatchError).stored).toBe(3);
    await running.stop();
  }, 40_000);

  it('notices a data loss in any one shard (one epoch per key group)', async () => {
    const app = await open(uniquePrefix('shards'), 3);
    const running = await startRoles(app, []);
    expect((await app.ready()).ok).toBe(true);
    await app.redis.del(`${app.layout.shard(2)}:epoch`);
    const seen = await app.epoch.check(Date.now());
    expect(seen.verdict).toBe('detected');
    expect(await app.ready()).toEqual({ ok: false, reason: 'redis_data_lost' });
    expect(await app.epoch.acknowledge(Date.now())).toBe(true);
    await app.epoch.check(Date.now());
    expect((await app.ready()).ok).toBe(true);
    await running.stop();
  });

  it('notices at start a shard that lost its data while no process ran, and sends the alert', async () => {
    // Shard 2's master restarted empty while the whole deployment was stopped: no process saw
    // the epoch go. The next start finds the other groups' records (older than the first-start
    // window) without shard 2's, and records the loss instead of a fresh epoch.
    const prefix = uniquePrefix('shards');
    const first = await open(prefix, 3);
    await (await startRoles(first, [])).stop();
    const base = `${first.layout.group}:epoch`;
    await first.redis.hset(base, 'createdAt', Date.now() - 2 * FIRST_START_WINDOW_MS);
    await first.redis.del(`${first.layout.shard(2)}:epoch`);

    const app = await open(prefix, 3);
    const running = await startRoles(app, []);
    try {
      expect(await app.ready()).toEqual({ ok: false, reason: 'redis_data_lost' });
      const alerts = await until(
        async () => (await app.events.read()).filter((e) => e.type === 'alert.redis_data_lost'),
        { done: (a) => a.length > 0, what: 'the data-loss alert' },
      );
      expect(alerts).toHaveLength(1);
      expect(alerts[0]?.data).toMatchObject({ lostEpoch: await app.redis.hget(base, 'id') });
    } finally {
      await running.stop();
    }
  });

  it('runs submit and reconcile workers for the served shards only', async () => {
    const prefix = uniquePrefix('shards');
    const app = openApp(
      await testConfig(prefix, { REDIS_SHARDS: '3', REDIS_SHARDS_SERVED: '1,2' }),
      createLogger({ level: 'silent' }),
    );
    opened.push(app);
    const running = await startRoles(app, ['worker', 'reconciler']);
    const where = (name: string) =>
      running.workers.filter((w) => w.name === name).map((w) => w.opts.prefix);
    expect(where('charges')).toEqual([app.layout.shard(1), app.layout.shard(2)]);
    expect(where('reconcile')).toEqual([app.layout.shard(1), app.layout.shard(2)]);
    await running.stop();
  });

  it('spreads payments over the shards and lists them across shards by state', async () => {
    const app = await open(uniquePrefix('shards'), 3);
    const deps = createDeps(app);
    for (let i = 0; i < 24; i++) {
      const r = await createPayment(deps, {
        type: 'charge',
        key: `s${i}`,
        email: 'ada@example.com',
        amount: '10.00',
        currency: 'NGN',
        card_token: 'tok_abcdef0123456789',
      });
      expect(r.status).toBe('created');
    }
    const counts = await Promise.all(
      app.layout.shardPrefixes().map((p) => app.redis.zcard(`${p}:idx:created`)),
    );
    expect(counts.every((n) => n > 0)).toBe(true);
    expect((await app.store.countByState()).queued).toBe(24);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await app.store.list({ state: 'queued' }, 5, cursor);
      seen.push(...page.intents.map((i) => i.key));
      cursor = page.next;
    } while (cursor !== undefined);
    expect(seen.sort()).toEqual(Array.from({ length: 24 }, (_, i) => `api_s${i}`).sort());

    // A rare match under a residual filter: shards' pages end early on their scan budget (20 ×
    // limit entries), the merge stops there, and every match still comes exactly once.
    for (let i = 0; i < 4; i++) {
      const r = await createPayment(deps, {
        type: 'payout',
        key: `p${i}`,
        account_number: '0123456789',
        bank_code: '000013',
        bank_name: 'GTBank',
        account_name: 'Ada Lovelace',
        amount: '10.00',
        currency: 'NGN',
        narration: 'rare',
      });
      expect(r.status).toBe('created');
    }
    for (let i = 24; i < 150; i++) {
      await createPayment(deps, {
        type: 'charge',
        key: `s${i}`,
        email: 'ada@example.com',
        amount: '10.00',
        currency: 'NGN',
        card_token: 'tok_abcdef0123456789',
      });
    }
    const payouts: string[] = [];
    let pages = 0;
    cursor = undefined;
    do {
      const page = await app.store.list({ state: 'queued', type: 'payout' }, 1, cursor);
      payouts.push(...page.intents.map((i) => i.key));
      cursor = page.next;
      pages++;
    } while (cursor !== undefined && pages < 1_000);
    expect(payouts.sort()).toEqual(['api_p0', 'api_p1', 'api_p2', 'api_p3']);
    // More pages than matches: some came back empty (a shard's budget ran out first).
    expect(pages).toBeGreaterThan(payouts.length + 1);
  });
});
