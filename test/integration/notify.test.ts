/**
 * Outbound notifications end to end on real Redis and a real HTTP receiver: the relay turns each
 * stream entry into one job, the worker POSTs it signed and retries on the configured schedule,
 * and duplicates (a replayed entry, an event appended twice) collapse into one delivery.
 */
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.ts';
import {
  notificationsDeps,
  openApp,
  startContribution,
  type App,
} from '../../src/app/composition.ts';
import type { BillingEvent } from '../../src/kernel/events.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { QUEUES } from '../../src/infra/queues/names.ts';
import { notificationsModule } from '../../src/notifications/module.ts';
import {
  NOTIFY_GROUP,
  ensureNotifyGroup,
  notificationJobId,
  type RelayHooks,
} from '../../src/notifications/relay.ts';
import { verifyNotification } from '../../src/notifications/signature.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { fieldsOf } from '../../src/infra/redis/stream-consumer.ts';
import { track } from '../support/leak-check.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis, getRedisUrl, uniquePrefix } from '../support/redis.ts';

/** A Standard Webhooks secret (`whsec_` + base64), as docs/notifications.md recommends. */
const SECRET = `whsec_${Buffer.from('integration-test-secret-0123456').toString('base64')}`;

interface NotifierOptions {
  consumer?: string;
  blockMs?: number;
  claimIdleMs?: number;
  relayHooks?: RelayHooks;
}

/** The notifications module's reconciler-role contribution, started as the composition root does. */
interface Notifier {
  worker: Worker;
  isOpen(): boolean;
  stop(): Promise<void>;
}

async function startNotifier(app: App, opts: NotifierOptions): Promise<Notifier> {
  const deps = notificationsDeps(app, {
    ...(opts.consumer !== undefined ? { consumer: opts.consumer } : {}),
    ...(opts.blockMs !== undefined ? { blockMs: opts.blockMs } : {}),
    ...(opts.claimIdleMs !== undefined ? { claimIdleMs: opts.claimIdleMs } : {}),
    ...(opts.relayHooks !== undefined ? { hooks: opts.relayHooks } : {}),
  });
  const reconciler = notificationsModule.roles.reconciler;
  if (!deps || !reconciler) throw new Error('notifications are not configured');
  const running = await startContribution(app, reconciler(deps));
  const [worker] = running.workers;
  if (!worker) throw new Error('no notifications worker');
  let open = true;
  return {
    worker,
    isOpen: () => open,
    async stop() {
      if (!open) return;
      // The relay stops first (no new jobs), then the worker lets an in-flight POST finish.
      for (const s of running.started) await s.stop();
      await worker.close();
      open = false;
    },
  };
}

interface Received {
  at: number;
  raw: string;
  signature: string | undefined;
  json: { id: string; type: string; at: string; data: Record<string, unknown> };
  status: number;
}

interface Receiver {
  url: string;
  /** Every POST, including the refused ones. */
  requests: Received[];
  /** How many times each event id is refused before it is accepted. */
  refuseFirst: number;
  accepted(): Received[];
  isOpen(): boolean;
  close(): Promise<void>;
}

/** An HTTP receiver on port 0 that refuses each event `refuseFirst` times with a 500, then 200s. */
async function startReceiver(refuseFirst = 0): Promise<Receiver> {
  const seen = new Map<string, number>();
  const requests: Received[] = [];
  let open = true;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const json = JSON.parse(raw) as Received['json'];
      const n = (seen.get(json.id) ?? 0) + 1;
      seen.set(json.id, n);
      const status = n <= receiver.refuseFirst ? 500 : 200;
      const header = req.headers['x-billing-signature'];
      requests.push({
        at: Date.now(),
        raw,
        signature: Array.isArray(header) ? header[0] : header,
        json,
        status,
      });
      res.statusCode = status;
      res.end(status === 200 ? 'ok' : 'try later');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/billing`,
    requests,
    refuseFirst,
    accepted: () => requests.filter((r) => r.status === 200),
    isOpen: () => open,
    close: () =>
      new Promise<void>((resolve) => {
        if (!open) return resolve();
        open = false;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return receiver;
}

async function testConfig(prefix: string, notifyUrl: string): Promise<Config> {
  return loadConfig({
    NODE_ENV: 'test',
    SAYSWITCH_SECRET_KEY: 'sk_test_notify_suite',
    DATA_ENCRYPTION_KEY: '11'.repeat(32),
    API_TOKEN: 'notify-test-api-token-0123',
    REDIS_URL: await getRedisUrl(),
    QUEUE_PREFIX: prefix,
    NOTIFY_URL: notifyUrl,
    NOTIFY_SECRET: SECRET,
    NOTIFY_RETRY_SCHEDULE: '50ms,100ms',
    LOG_LEVEL: 'silent',
  });
}

function event(n: number, type: BillingEvent['type'] = 'payment.succeeded'): BillingEvent {
  return {
    id: `evt_ch_${n}_1_succeeded`,
    type,
    at: Date.UTC(2025, 0, 2, 3, 4, 5, n),
    data: { key: `ch_${n}`, amount: 150_000 + n, currency: 'NGN' },
  };
}

describe('outbound notifications', () => {
  let prefix: string;
  let redis: Redis;
  let receiver: Receiver;
  let app: App | undefined;
  let queue: Queue | undefined;
  let logLines: string[];
  const notifiers: Notifier[] = [];

  beforeEach(async () => {
    prefix = uniquePrefix('notify');
    redis = await createTestRedis({}, 'notify test redis');
    logLines = [];
  });

  afterEach(async () => {
    for (const n of notifiers.splice(0)) await n.stop();
    await app?.close();
    app = undefined;
    queue = undefined;
    await receiver?.close();
    await cleanupPrefix(redis, prefix);
    await redis.quit();
  });

  async function open(opts: { refuseFirst?: number; url?: string } = {}): Promise<App> {
    receiver = track(await startReceiver(opts.refuseFirst), 'notify receiver');
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => void logLines.push(line) },
    });
    app = openApp(await testConfig(prefix, opts.url ?? receiver.url), logger);
    track(app.redis, 'app redis');
    queue = track(app.dispatcher.queue(QUEUES.notifications), 'notifications queue');
    return app;
  }

  async function start(opts: NotifierOptions = {}): Promise<Notifier> {
    if (!app) throw new Error('open() first');
    const notifier = await startNotifier(app, { blockMs: 200, ...opts });
    notifiers.push(notifier);
    track(notifier.worker, 'notifications worker');
    track(
      { kind: 'Notifier', isOpen: () => notifier.isOpen(), close: () => notifier.stop() },
      'notifier',
    );
    return notifier;
  }

  async function stopNotifier(notifier: Notifier): Promise<void> {
    await notifier.stop();
    notifiers.splice(notifiers.indexOf(notifier), 1);
  }

  const pendingCount = async () => {
    const summary = (await redis.xpending(storeKeys(prefix).events(), NOTIFY_GROUP)) as [
      number,
      ...unknown[],
    ];
    return summary[0];
  };

  /** Resolves once the group has read the whole stream and acknowledged every entry. */
  const allRelayed = () =>
    until(
      async () => {
        const key = storeKeys(prefix).events();
        const [last] = (await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0] ?? [];
        const groups = (await redis.xinfo('GROUPS', key)) as unknown[][];
        const g = groups.map((row) => {
          const f: Record<string, unknown> = {};
          for (let i = 0; i + 1 < row.length; i += 2) f[String(row[i])] = row[i + 1];
          return f;
        });
        const mine = g.find((f) => f.name === NOTIFY_GROUP);
        return mine !== undefined && mine['last-delivered-id'] === last && mine.pending === 0;
      },
      { what: 'every entry relayed and acknowledged', timeoutMs: 10_000 },
    );

  const accepted = (n: number) =>
    until(() => (receiver.accepted().length >= n ? receiver.accepted() : undefined), {
      what: `${n} notifications accepted`,
      timeoutMs: 10_000,
    });

  const settledCounts = () =>
    until(
      async () => {
        const c = await queue!.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
        return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0 ? c : undefined;
      },
      { what: 'no notification job left to run', timeoutMs: 10_000 },
    );

  /**
   * When BullMQ scheduled each retry of a job: the `delay` field (the timestamp the job becomes
   * due) of the job's "delayed" events in the queue's event stream, in order.
   */
  const retriesScheduledAt = async (jobId: string) => {
    const entries = await redis.xrange(`${prefix}:${QUEUES.notifications}:events`, '-', '+');
    return entries
      .map(([, flat]) => fieldsOf(flat))
      .filter((f) => f.event === 'delayed' && f.jobId === jobId)
      .map((f) => Number(f.delay));
  };

  it('retries a refusing receiver on the schedule and delivers each event once, signed', async () => {
    const a = await open({ refuseFirst: 2 });
    const events = [event(1), event(2, 'payment.failed'), event(3, 'batch.completed')];
    for (const e of events) await a.events.append(e);
    await start();

    const ok = await accepted(3);
    await allRelayed();
    const counts = await settledCounts();
    expect(counts).toMatchObject({ completed: 3, failed: 0 });

    // Exactly once each, after two refusals each; every try (refused ones too) is verifiable.
    expect(ok.map((r) => r.json.id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(receiver.requests).toHaveLength(9);
    for (const r of receiver.requests) {
      expect(
        verifyNotification(r.raw, r.signature, SECRET, { nowSec: Date.now() / 1000 }),
        `signature of ${r.json.id}`,
      ).toBe(true);
      expect(
        verifyNotification(r.raw, r.signature, 'whsec_wrong', { nowSec: Date.now() / 1000 }),
      ).toBe(false);
    }
    for (const e of events) {
      const tries = receiver.requests.filter((r) => r.json.id === e.id);
      expect(tries.map((r) => r.status)).toEqual([500, 500, 200]);
      // The schedule is 50 ms then 100 ms. Read from what BullMQ recorded, not measured: each
      // refusal scheduled its retry for at least that long after the refused try reached the
      // receiver, and no retry reached it before the time it was scheduled for.
      const due = await retriesScheduledAt(notificationJobId(e.id));
      expect(due).toHaveLength(2);
      expect(due[0]).toBeGreaterThanOrEqual(tries[0]!.at + 50);
      expect(tries[1]!.at).toBeGreaterThanOrEqual(due[0]!);
      expect(due[1]).toBeGreaterThanOrEqual(tries[1]!.at + 100);
      expect(tries[2]!.at).toBeGreaterThanOrEqual(due[1]!);
      expect(JSON.parse(tries[2]!.raw)).toEqual({
        id: e.id,
        type: e.type,
        at: new Date(e.at).toISOString(),
        data: e.data,
      });
      // The attempts are BullMQ attempts: what the dashboard shows.
      const job = await queue!.getJob(notificationJobId(e.id));
      expect(job?.attemptsMade).toBe(3);
      expect(await job?.getState()).toBe('completed');
    }

    // One line per attempt from the handler, and the secret in none of them.
    const parsed = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const refused = parsed.filter((l) => l.msg === 'notification refused');
    const delivered = parsed.filter((l) => l.msg === 'notification delivered');
    expect(refused).toHaveLength(6);
    expect(delivered).toHaveLength(3);
    expect(delivered[0]).toMatchObject({ status: 200, attempt: 3 });
    expect(refused.map((l) => l.attempt).sort()).toEqual([1, 1, 1, 2, 2, 2]);
    expect(Object.keys(delivered[0]!)).toEqual(
      expect.arrayContaining(['eventId', 'type', 'status', 'attempt']),
    );
    expect(logLines.join('\n')).not.toContain(SECRET);
  });

  it('keeps retrying an unreachable receiver, then leaves the job failed', async () => {
    // A port that was just listening and is now closed: connection refused.
    const gone = await startReceiver();
    await gone.close();
    const a = await open({ url: gone.url });
    await a.events.append(event(7));
    await start();

    const id = notificationJobId(event(7).id);
    await until(async () => (await queue!.getJobState(id)) === 'failed', {
      what: 'job failed for good',
      timeoutMs: 10_000,
    });
    // Read once it is final: a job read before its last attempt failed shows the attempts so far.
    const job = (await queue!.getJob(id))!;
    // First try plus one per schedule entry; then it stays failed, retryable from the dashboard.
    expect(job.attemptsMade).toBe(3);
    expect(job.failedReason).toMatch(/did not answer \(ECONNREFUSED\)/);
    expect(job.failedReason).not.toContain(SECRET);
    expect(receiver.requests).toHaveLength(0);
  });

  it('delivers an event appended twice (same id) once', async () => {
    const a = await open();
    await a.events.append(event(4));
    await a.events.append(event(4));
    await start();

    await accepted(1);
    await allRelayed();
    expect(await settledCounts()).toMatchObject({ completed: 1, failed: 0 });

    // A later replay of the same event, once delivered, collapses into the completed job too.
    await a.events.append(event(4));
    await allRelayed();
    expect(await settledCounts()).toMatchObject({ completed: 1, failed: 0 });
    expect(receiver.requests).toHaveLength(1);
  });

  it.each([
    ['a restart under the same consumer name re-reads its pending entries', 'relay-x', undefined],
    ['another process claims the entries of a consumer that died', 'relay-b', 0],
  ] as const)(
    'relays entries enqueued but not acknowledged before a crash: %s',
    async (_label, restartAs, claimIdleMs) => {
      const a = await open();
      await a.events.append(event(5));
      await a.events.append(event(6));

      let crashed!: () => void;
      const crash = new Promise<void>((resolve) => (crashed = resolve));
      let calls = 0;
      const first = await start({
        consumer: 'relay-x',
        relayHooks: {
          afterEnqueue: () => {
            calls++;
            crashed();
            throw new Error('simulated crash between enqueue and ack');
          },
        },
      });
      await crash;
      await stopNotifier(first);
      expect(calls).toBe(1);
      // Both entries were read and their jobs added, but neither was acknowledged.
      expect(await pendingCount()).toBe(2);

      await start({ consumer: restartAs, claimIdleMs });
      await allRelayed();
      await accepted(2);
      expect(await settledCounts()).toMatchObject({ completed: 2, failed: 0 });
      expect(receiver.requests.map((r) => r.json.id).sort()).toEqual(
        [event(5).id, event(6).id].sort(),
      );
    },
  );

  it('relays entries a consumer read and died on before adding any job', async () => {
    const a = await open();
    await a.events.append(event(8));
    await ensureNotifyGroup(a.events);
    await redis.xreadgroup(
      'GROUP',
      NOTIFY_GROUP,
      'dead-consumer',
      'COUNT',
      10,
      'STREAMS',
      storeKeys(prefix).events(),
      '>',
    );
    expect(await pendingCount()).toBe(1);

    await start({ claimIdleMs: 0 });
    await allRelayed();
    await accepted(1);
    expect(await settledCounts()).toMatchObject({ completed: 1, failed: 0 });
  });

  it('stops promptly while blocked on the stream', async () => {
    // This process's Redis connections (the shared Redis also serves other test files, some of
    // them blocked in XREADGROUP too), by local port, as Node opens them.
    const ownPorts = new Set<number>();
    const onSocket = (message: unknown) => {
      const { socket } = message as { socket: Socket };
      socket.once('connect', () => ownPorts.add(socket.localPort!));
    };
    diagnostics.subscribe('net.client.socket', onSocket);
    try {
      await open();
      // A block far longer than the test's timeout: a stop() that waited for the read to time
      // out would fail the test, so "promptly" needs no clock.
      const notifier = await start({ blockMs: 600_000 });
      /** How many of this process's connections are blocked (flag b) in XREADGROUP. */
      const ownBlockedReads = async () => {
        const lines = String(await redis.client('LIST'))
          .trim()
          .split('\n');
        return lines.filter((line) => {
          const f = new Map(
            line.split(' ').map((kv) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)]),
          );
          const addr = f.get('addr') ?? '';
          return (
            f.get('cmd') === 'xreadgroup' &&
            (f.get('flags') ?? '').includes('b') &&
            ownPorts.has(Number(addr.slice(addr.lastIndexOf(':') + 1)))
          );
        }).length;
      };
      await until(async () => (await ownBlockedReads()) === 1, {
        what: 'the relay blocked in XREADGROUP',
        timeoutMs: 10_000,
      });
      await stopNotifier(notifier);
      expect(notifier.isOpen()).toBe(false);
      // The block was ended by dropping its connection.
      await until(async () => (await ownBlockedReads()) === 0, {
        what: 'the blocked read gone from CLIENT LIST',
        timeoutMs: 10_000,
      });
    } finally {
      diagnostics.unsubscribe('net.client.socket', onSocket);
    }
  });
});
