import { afterEach, describe, expect, it } from 'vitest';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { LeakTracker, formatLeaks, track } from '../support/leak-check.ts';
import {
  cleanupPrefix,
  createTestRedis,
  getRedisTarget,
  getRedisUrl,
  isDockerAvailable,
  pingRedis,
  resolveRedisTarget,
  uniquePrefix,
  waitUntilReady,
} from '../support/redis.ts';
import { findFreePort, spawnRedisServer } from '../support/redis-server.ts';

describe('redis harness: source selection', () => {
  it('connects to a real Redis and reports where it came from', async () => {
    const target = await getRedisTarget();
    console.info(`redis harness: ${target.source} — ${target.detail}`);
    expect(['env', 'testcontainers', 'local', 'spawned']).toContain(target.source);
    if (process.env.REDIS_URL) expect(target.source).toBe('env');
    expect(await getRedisUrl()).toBe(target.url);
    expect(await getRedisTarget()).toBe(target);

    const redis = await createTestRedis();
    expect(await redis.ping()).toBe('PONG');
    await redis.quit();
  });

  it('prefers REDIS_URL without probing anything else', async () => {
    let probed = false;
    const target = await resolveRedisTarget({
      env: { REDIS_URL: 'redis://user:secret@example.invalid:6390' },
      dockerAvailable: () => {
        probed = true;
        return Promise.resolve(true);
      },
    });
    expect(target).toMatchObject({
      source: 'env',
      url: 'redis://user:secret@example.invalid:6390',
    });
    expect(target.detail).not.toContain('secret');
    expect(probed).toBe(false);
  });

  it('spawns a redis-server when there is no Docker and nothing answers locally', async () => {
    const deadPort = await findFreePort();
    const target = await resolveRedisTarget({
      env: {},
      dockerAvailable: () => Promise.resolve(false),
      localUrl: `redis://127.0.0.1:${deadPort}`,
    });
    try {
      expect(target.source).toBe('spawned');
      const redis = track(new Redis(target.url, { maxRetriesPerRequest: null }), 'spawned client');
      expect(await redis.ping()).toBe('PONG');
      await redis.quit();
    } finally {
      await target.stop?.();
    }
  });

  // How fast the probes answer is a performance claim, not checked here (no clock in tests).
  it('probes Docker and a silent port', async () => {
    const docker = await isDockerAvailable();
    expect(typeof docker).toBe('boolean');

    const deadPort = await findFreePort();
    expect(await pingRedis('127.0.0.1', deadPort, 500)).toBe(false);
    const url = new URL(await getRedisUrl());
    if (url.password === '') {
      expect(await pingRedis(url.hostname, Number(url.port || 6379), 500)).toBe(true);
    }
  });
});

describe('redis harness: prefixes', () => {
  it('issues distinct prefixes that contain no ":"', () => {
    const prefixes = Array.from({ length: 1_000 }, (_, i) =>
      uniquePrefix(i % 2 ? 'Bulk: batch/1' : undefined),
    );
    expect(new Set(prefixes).size).toBe(prefixes.length);
    for (const p of prefixes) expect(p).toMatch(/^t\d+(_[a-z0-9-]+)?_[0-9a-f]{12}$/);
    expect(uniquePrefix('Bulk: batch/1')).toMatch(/^t\d+_bulk-batch-1_[0-9a-f]{12}$/);
  });

  it('keeps two prefixes apart and cleans up only its own keys', async () => {
    const redis = await createTestRedis();
    const a = uniquePrefix('a');
    const b = uniquePrefix('b');
    try {
      const keysOfA = Array.from({ length: 2_500 }, (_, i) => `${a}:k${i}`);
      await redis.mset(...keysOfA.flatMap((k) => [k, '1']));
      await redis.set(`${b}:k0`, 'b');
      await redis.hset(`${b}:h`, 'f', 'v');

      expect(await redis.get(`${b}:k0`)).toBe('b');
      expect(await redis.exists(`${a}:k0`, `${b}:k0`)).toBe(2);
      expect(await redis.get(`${a}:k0`)).toBe('1');

      expect(await cleanupPrefix(redis, a)).toBe(keysOfA.length);
      expect(await redis.exists(...keysOfA.slice(0, 100))).toBe(0);
      expect(await redis.exists(`${b}:k0`, `${b}:h`)).toBe(2);
      expect(await cleanupPrefix(redis, a)).toBe(0);
      await expect(cleanupPrefix(redis, '')).rejects.toThrow(/refuses/);
    } finally {
      await cleanupPrefix(redis, a);
      await cleanupPrefix(redis, b);
      await redis.quit();
    }
  });
});

describe('redis harness: BullMQ round trip', () => {
  let prefix: string | undefined;
  let resources: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    for (const r of resources.reverse()) await r.close();
    resources = [];
    if (prefix) {
      const redis = await createTestRedis();
      await cleanupPrefix(redis, prefix);
      await redis.quit();
    }
  });

  it('adds a job on a unique prefix and a worker completes it', async () => {
    prefix = uniquePrefix('bullmq');
    const connection = { url: await getRedisUrl(), maxRetriesPerRequest: null };
    const queue = track(new Queue('harness', { connection, prefix }), 'queue');
    resources.push(queue);
    const events = track(new QueueEvents('harness', { connection, prefix }), 'queue events');
    resources.push(events);
    const worker = track(
      new Worker(
        'harness',
        (job) => Promise.resolve({ doubled: (job.data as { n: number }).n * 2 }),
        {
          connection,
          prefix,
        },
      ),
      'worker',
    );
    resources.push(worker);
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);

    const job = await queue.add('double', { n: 21 }, { jobId: `${prefix}_job-1` });
    expect(await job.waitUntilFinished(events, 10_000)).toEqual({ doubled: 42 });

    const redis = await createTestRedis();
    const keys = await redis.keys(`${prefix}:harness:*`);
    await redis.quit();
    expect(keys.length).toBeGreaterThan(0);
  });
});

describe('spawnRedisServer', () => {
  it('keeps an acknowledged write across SIGKILL with AOF (appendfsync always)', async () => {
    const server = track(await spawnRedisServer({ appendonly: true }), 'aof server');
    try {
      let redis = track(new Redis(server.url, { maxRetriesPerRequest: null }), 'before crash');
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual([
        'maxmemory-policy',
        'noeviction',
      ]);
      await redis.set('durable', 'yes');
      await redis.hset('durable:hash', { a: '1', b: '2' });
      const firstPid = server.pid;

      const ended = new Promise<void>((resolve) => redis.once('end', resolve));
      redis.disconnect();
      await ended;
      await server.stop('SIGKILL');
      expect(server.isOpen()).toBe(false);

      await server.restart();
      expect(server.isOpen()).toBe(true);
      expect(server.pid).not.toBe(firstPid);
      redis = track(new Redis(server.url, { maxRetriesPerRequest: null }), 'after restart');
      expect(await redis.get('durable')).toBe('yes');
      expect(await redis.hgetall('durable:hash')).toEqual({ a: '1', b: '2' });
      await redis.quit();
    } finally {
      await server.close();
    }
  });

  it('loses unsaved data on SIGKILL without AOF, and stops cleanly with SIGTERM', async () => {
    const server = track(await spawnRedisServer({ appendonly: false }), 'volatile server');
    try {
      const redis = track(
        new Redis(server.url, { maxRetriesPerRequest: null, lazyConnect: true }),
        'client',
      );
      await redis.connect();
      await redis.set('volatile', '1');
      redis.disconnect();
      await server.stop('SIGKILL');
      await server.restart();

      const again = track(new Redis(server.url, { maxRetriesPerRequest: null }), 'client again');
      expect(await again.get('volatile')).toBeNull();
      await again.quit();
      await server.stop('SIGTERM');
      expect(server.isOpen()).toBe(false);
      await server.stop();
    } finally {
      await server.close();
    }
  });

  it('honours an explicit port and refuses to restart after close()', async () => {
    const port = await findFreePort();
    const server = track(await spawnRedisServer({ port }), 'fixed-port server');
    expect(server.url).toBe(`redis://127.0.0.1:${port}`);
    expect(await pingRedis('127.0.0.1', port, 500)).toBe(true);
    await server.close();
    expect(await pingRedis('127.0.0.1', port, 500)).toBe(false);
    await expect(server.restart()).rejects.toThrow(/after close/);
  });
});

describe('leak check', () => {
  it('reports a connection, a Worker and a Queue left open, and force-closes them', async () => {
    const tracker = new LeakTracker();
    const url = await getRedisUrl();
    const prefix = uniquePrefix('leak');
    const connection = { url, maxRetriesPerRequest: null };
    const leakedRedis = tracker.track(
      new Redis(url, { maxRetriesPerRequest: null }),
      'leaked client',
    );
    const leakedWorker = tracker.track(
      new Worker('leaky', () => Promise.resolve(), { connection, prefix }),
      'leaked worker',
    );
    const leakedQueue = tracker.track(new Queue('leaky', { connection, prefix }), 'leaked queue');
    await waitUntilReady(leakedRedis, 5_000);
    await Promise.all([leakedWorker.waitUntilReady(), leakedQueue.waitUntilReady()]);

    const leaks = await tracker.release();
    expect(leaks.map((l) => [l.kind, l.label]).sort()).toEqual([
      ['Queue', 'leaked queue'],
      ['Worker', 'leaked worker'],
      ['ioredis', 'leaked client'],
    ]);
    expect(leaks.find((l) => l.kind === 'ioredis')?.state).toMatch(/status "ready"/);
    expect(leaks.every((l) => l.createdAt?.includes('redis-harness.test.ts'))).toBe(true);
    expect(formatLeaks(leaks, 'test "x"')).toMatch(/3 resource\(s\) left open by test "x"/);

    expect(leakedRedis.status).toBe('end');
    expect(leakedWorker.closing).toBeDefined();
    expect(leakedQueue.closing).toBeDefined();
    expect(tracker.tracked()).toEqual([]);
    expect(await tracker.release()).toEqual([]);

    const redis = await createTestRedis();
    await cleanupPrefix(redis, prefix);
    await redis.quit();
  });

  it('accepts resources that were closed, including closes still finishing', async () => {
    const tracker = new LeakTracker();
    const url = await getRedisUrl();
    const prefix = uniquePrefix('noleak');
    const quitting = tracker.track(
      new Redis(url, { maxRetriesPerRequest: null }),
      'quitting client',
    );
    const neverConnected = tracker.track(new Redis(url, { lazyConnect: true }), 'lazy client');
    const worker = tracker.track(
      new Worker('tidy', () => Promise.resolve(), {
        connection: { url, maxRetriesPerRequest: null },
        prefix,
      }),
      'tidy worker',
    );
    const events = tracker.track(
      new QueueEvents('tidy', { connection: { url }, prefix }),
      'tidy events',
    );
    const server = tracker.track(await spawnRedisServer(), 'tidy server');
    await waitUntilReady(quitting, 5_000);
    await Promise.all([worker.waitUntilReady(), events.waitUntilReady()]);

    await quitting.quit(); // resolves on +OK, usually before status reaches "end"
    neverConnected.disconnect();
    await worker.close();
    const eventsClosing = events.close(); // started, deliberately not awaited yet
    await server.close();

    expect(await tracker.release()).toEqual([]);
    await eventsClosing;
    expect(quitting.status).toBe('end');

    // The worker wrote its queue's meta key on the shared Redis.
    const redis = await createTestRedis();
    await cleanupPrefix(redis, prefix);
    await redis.quit();
  });

  it('tracks an open spawned server as a leak', async () => {
    const tracker = new LeakTracker();
    const server = tracker.track(await spawnRedisServer(), 'forgotten server');
    const leaks = await tracker.release();
    expect(leaks).toEqual([
      expect.objectContaining({
        kind: 'redis-server',
        label: 'forgotten server',
        state: 'isOpen() is true',
      }),
    ]);
    expect(server.isOpen()).toBe(false);
  });

  it('refuses to track something it cannot check', () => {
    const tracker = new LeakTracker();
    expect(() => tracker.track({} as unknown as Redis, 'mystery')).toThrow(TypeError);
  });
});
