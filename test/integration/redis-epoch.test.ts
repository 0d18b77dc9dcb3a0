/**
 * The deployment epoch (src/infra/redis/epoch.ts) between processes: who detects a loss, who
 * adopts it, a process started after the loss, the acknowledgement. On the shared Redis, under a
 * prefix of its own; "losing the data" deletes that prefix's keys only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startPlatformWatch, type PlatformApp } from '../../src/app/platform-watch.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { RedisEventLog } from '../../src/infra/redis/event-log.ts';
import {
  ACK,
  CHECK,
  DeploymentEpoch,
  epochKey,
  FIRST_START_WINDOW_MS,
  OPEN,
  readEpoch,
} from '../../src/infra/redis/epoch.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';
import { resendingOnce } from '../support/resend.ts';

let redis: Redis;
const prefix = uniquePrefix('epoch');

beforeAll(async () => {
  redis = await createTestRedis();
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

describe('deployment epoch', () => {
  it('the first process writes it; the others read the same', async () => {
    const a = new DeploymentEpoch(redis, prefix);
    const b = new DeploymentEpoch(redis, prefix);
    const ea = await a.open(1);
    const eb = await b.open(2);
    expect(ea).toEqual({ id: eb.id, lost: false });
    expect(await a.check(3)).toEqual({ verdict: 'same', id: ea.id, lost: false });
  });

  it('a vanished epoch is detected once, adopted by the others, and held until acknowledged', async () => {
    const a = new DeploymentEpoch(redis, prefix);
    const b = new DeploymentEpoch(redis, prefix);
    const { id: old } = await a.open(1);
    await b.open(1);
    await redis.del(epochKey(prefix)); // the data is gone

    const seenByA = await a.check(10);
    expect(seenByA).toMatchObject({ verdict: 'detected', lostId: old, lost: true });
    expect(await b.check(11)).toMatchObject({ verdict: 'adopt', lost: true });
    expect(await a.check(12)).toMatchObject({ verdict: 'same', lost: true });

    // A process started after the loss reads the alarm too.
    const c = new DeploymentEpoch(redis, prefix);
    expect(await c.open(13)).toMatchObject({ lost: true });

    expect(await a.acknowledge(20)).toBe(true);
    expect(a.isLost(), 'the acknowledging process, before its next check').toBe(false);
    expect(await a.acknowledge(21)).toBe(false);
    for (const p of [a, b, c]) {
      await p.check(22);
      expect(p.isLost()).toBe(false);
    }
    expect(await a.read()).toMatchObject({ state: 'ok', lostId: old, acknowledgedAt: 20 });
  });

  it('an epoch written by a process that started after the loss is marked lost by one that saw the old one', async () => {
    const survivor = new DeploymentEpoch(redis, prefix);
    const { id: old } = await survivor.open(1);
    await redis.del(epochKey(prefix));
    const fresh = new DeploymentEpoch(redis, prefix);
    expect(await fresh.open(2)).toMatchObject({ lost: false }); // looks like a first start

    expect(await survivor.check(3)).toMatchObject({ verdict: 'detected', lostId: old });
    expect(await fresh.check(4)).toMatchObject({ verdict: 'same', lost: true });
  });

  it('a record restored from an acknowledged earlier loss is a new, unacknowledged loss', async () => {
    const survivor = new DeploymentEpoch(redis, prefix);
    await survivor.open(1);
    // Redis came back from an old snapshot: the record of an earlier loss, long acknowledged.
    await redis.del(epochKey(prefix));
    await redis.hset(epochKey(prefix), {
      id: 'e-older',
      state: 'ok',
      createdAt: '0',
      lostId: 'e-oldest',
      detectedAt: '0',
      acknowledgedAt: '0',
    });
    expect(await survivor.check(5)).toMatchObject({ verdict: 'detected', lost: true });
    const record = await survivor.read();
    expect(record).toMatchObject({ state: 'lost', detectedAt: 5 });
    // `billing redis status --json` must not show the old acknowledgement on the new loss.
    expect(record?.acknowledgedAt).toBeUndefined();
  });

  it('a check or an acknowledgement the Redis client runs twice answers as its first run', async () => {
    // A resend after a lost reply: the second run's answer is the one the caller sees. A
    // detection answered `adopt` would publish no alert (only `detected` does), anywhere.
    await CHECK.load(redis);
    await ACK.load(redis);
    for (const replaced of [false, true]) {
      const survivor = new DeploymentEpoch(resendingOnce(redis, CHECK), prefix);
      const { id: old } = await survivor.open(1);
      await redis.del(epochKey(prefix));
      if (replaced) await new DeploymentEpoch(redis, prefix).open(2); // a fresh record
      expect(await survivor.check(3), `replaced: ${replaced}`).toMatchObject({
        verdict: 'detected',
        lostId: old,
        lost: true,
      });
      const acking = new DeploymentEpoch(resendingOnce(redis, ACK), prefix);
      await acking.open(4);
      expect(await acking.acknowledge(5)).toBe(true);
      expect((await acking.read())?.state).toBe('ok');
    }
  });
});

describe('deployment epoch over several key groups (REDIS_SHARDS > 1)', () => {
  const groupsOf = (p: string) => [p, `${p}-s1`, `${p}-s2`];
  const T0 = 1_800_000_000_000;

  it('a group without a record next to an established one lost its data while nothing ran', async () => {
    const groups = groupsOf(`${prefix}-g`);
    const first = await new DeploymentEpoch(redis, groups).open(T0);
    expect(first).toEqual({ id: expect.any(String), lost: false });
    const [base] = first.id.split(',');
    // Shard 2's master restarted empty while every process was stopped.
    await redis.del(epochKey(groups[2]!));

    const next = new DeploymentEpoch(redis, groups);
    const opened = await next.open(T0 + FIRST_START_WINDOW_MS + 1);
    expect(opened).toMatchObject({ lost: true, detected: { lostId: base } });
    expect(await readEpoch(redis, groups[2]!)).toMatchObject({ state: 'lost', lostId: base });
    expect(await readEpoch(redis, groups[0]!)).toMatchObject({ state: 'ok', id: base });
    // The next process reads the loss, detected once.
    const later = await new DeploymentEpoch(redis, groups).open(T0 + FIRST_START_WINDOW_MS + 2);
    expect(later).toEqual({ id: opened.id, lost: true });
    expect(await next.check(T0 + FIRST_START_WINDOW_MS + 3)).toEqual({
      verdict: 'same',
      id: opened.id,
      lost: true,
    });
    expect(await next.acknowledge(T0 + FIRST_START_WINDOW_MS + 4)).toBe(true);
    expect(await new DeploymentEpoch(redis, groups).open(T0 + FIRST_START_WINDOW_MS + 5)).toEqual({
      id: opened.id,
      lost: false,
    });
  });

  it('the first group written moments earlier is a first deployment, not a loss', async () => {
    // Processes of a first deployment start within seconds of each other, and one that died
    // between its groups' writes is restarted at once: neither is a loss.
    const groups = groupsOf(`${prefix}-first`);
    await new DeploymentEpoch(redis, groups.slice(0, 1)).open(T0);
    const opened = await new DeploymentEpoch(redis, groups).open(T0 + FIRST_START_WINDOW_MS - 1);
    expect(opened).toEqual({ id: expect.any(String), lost: false });
    for (const g of groups) expect(await readEpoch(redis, g)).toMatchObject({ state: 'ok' });
  });

  it('every group empty is a first deployment (what a standalone Redis emptied looks like)', async () => {
    const groups = groupsOf(`${prefix}-empty`);
    await new DeploymentEpoch(redis, groups).open(T0);
    await redis.del(...groups.map((g) => epochKey(g)));
    expect(await new DeploymentEpoch(redis, groups).open(T0 + 10 * FIRST_START_WINDOW_MS)).toEqual({
      id: expect.any(String),
      lost: false,
    });
  });

  it('an opening the Redis client runs twice still answers detected', async () => {
    const groups = groupsOf(`${prefix}-resend`);
    await new DeploymentEpoch(redis, groups).open(T0);
    // The base group lost: its opening is the first script call, the one resent.
    await redis.del(epochKey(groups[0]!));
    await OPEN.load(redis);
    const opened = await new DeploymentEpoch(resendingOnce(redis, OPEN), groups).open(
      T0 + FIRST_START_WINDOW_MS + 1,
    );
    expect(opened).toMatchObject({ lost: true, detected: {} });
  });
});

/** A platform watch of one process on `p`, publishing to `events`. */
function watchOf(p: string, epoch: DeploymentEpoch, events: RedisEventLog) {
  const app = {
    config: { redis: { prefix: p } },
    logger: createLogger({ level: 'silent' }),
    clock: { now: () => 100 },
    health: { isUp: () => true, onChange: () => () => undefined, address: 'redis://test' },
    epoch,
    events,
    dispatcher: { ensureSchedules: () => Promise.resolve([]) },
    metrics: { countDataLoss: () => undefined },
  } as unknown as PlatformApp;
  return startPlatformWatch(app, 60_000);
}

describe('the data-loss alert', () => {
  it('is published once by the processes that adopt the loss when the one that detected it died first', async () => {
    const p = `${prefix}-adopt`;
    const events = new RedisEventLog(redis, p);
    const detector = new DeploymentEpoch(redis, p);
    const b = new DeploymentEpoch(redis, p);
    const c = new DeploymentEpoch(redis, p);
    for (const e of [detector, b, c]) await e.open(1);
    const watches = [watchOf(p, b, events), watchOf(p, c, events)];
    try {
      await redis.del(epochKey(p)); // the data is gone
      // The detecting process records the loss and dies before it publishes anything.
      expect(await detector.check(10)).toMatchObject({ verdict: 'detected' });
      for (const w of watches) await w.check();
      for (const w of watches) await w.check();
    } finally {
      for (const w of watches) w.stop();
    }
    expect((await events.read()).map((e) => e.type)).toEqual(['alert.redis_data_lost']);
  });

  it('is published by a later check when the append of the one that detected the loss failed', async () => {
    const p = `${prefix}-alert`;
    const epoch = new DeploymentEpoch(redis, p);
    await epoch.open(1);
    const events = new RedisEventLog(redis, p);
    let failures = 1;
    // The events port, its first append failing (Redis went away again for a moment).
    const failOnce =
      <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
      (...a: A): Promise<R> =>
        failures-- > 0 ? Promise.reject(new Error('Connection is closed.')) : f(...a);
    const flaky = Object.assign(Object.create(events) as RedisEventLog, {
      append: failOnce(events.append.bind(events)),
      appendOnce: failOnce(events.appendOnce.bind(events)),
    });
    const watch = watchOf(p, epoch, flaky);
    try {
      await redis.del(epochKey(p)); // the data is gone
      await watch.check(); // detects the loss; the alert's append fails
      expect((await events.read()).map((e) => e.type)).toEqual([]);
      await watch.check(); // sees the new epoch as its own: only the alert left to send
      await watch.check();
    } finally {
      watch.stop();
    }
    expect(epoch.isLost()).toBe(true);
    expect((await events.read()).map((e) => e.type)).toEqual(['alert.redis_data_lost']);
  });
});
