/**
 * Outbound notifications survive the events stream's trim (MAXLEN ~ 1 000 000, docs/notifications.md):
 * a delivery job carries its event, so a retry, or a dashboard retry, after the entry left the
 * stream still sends it, with the same `webhook-id` and byte for byte the same body. A job queued
 * before jobs carried their event still reads the stream. And a consumer group the trim overtook
 * (entries trimmed before it read them) is reported once, at start, not skipped in silence.
 *
 * Real Redis under a unique prefix; the trim is an XTRIM (no need to write a million events).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import {
  notificationsDeps,
  openApp,
  startContribution,
  type App,
} from '../../src/app/composition.ts';
import type { BillingEvent } from '../../src/kernel/events.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { QUEUES } from '../../src/infra/queues/names.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { notificationsModule } from '../../src/notifications/module.ts';
import {
  NOTIFY_GROUP,
  ensureNotifyGroup,
  notificationJobId,
} from '../../src/notifications/relay.ts';
import { track } from '../support/leak-check.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis, getRedisUrl, uniquePrefix } from '../support/redis.ts';

/** A Standard Webhooks secret (`whsec_` + base64), as docs/notifications.md recommends. */
const SECRET = `whsec_${Buffer.from('notify-trimmed-test-secret-0123').toString('base64')}`;

interface Received {
  raw: string;
  headers: Record<string, string>;
  id: string;
  status: number;
}

interface Receiver {
  url: string;
  requests: Received[];
  accepted(): Received[];
  isOpen(): boolean;
  close(): Promise<void>;
}

/** An HTTP receiver on port 0; `answer` decides each status (it may act first, e.g. trim). */
async function startReceiver(answer: (r: Omit<Received, 'status'>) => Promise<number>) {
  const requests: Received[] = [];
  let open = true;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined) headers[k] = Array.isArray(v) ? (v[0] ?? '') : v;
      }
      const got = { raw, headers, id: (JSON.parse(raw) as { id: string }).id };
      void answer(got).then(
        (status) => {
          requests.push({ ...got, status });
          res.statusCode = status;
          res.end();
        },
        () => {
          res.statusCode = 500;
          res.end();
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/billing`,
    requests,
    accepted: () => requests.filter((r) => r.status >= 200 && r.status < 300),
    isOpen: () => open,
    close: () =>
      new Promise<void>((resolve) => {
        if (!open) return resolve();
        open = false;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return track(receiver, 'notify-trimmed receiver');
}

function event(n: number): BillingEvent {
  return {
    id: `evt_ch_trim${n}_1_succeeded`,
    type: 'payment.succeeded',
    at: Date.UTC(2025, 0, 2, 3, 4, 5, n),
    data: { key: `ch_trim${n}`, amount: 5_000_000 + n, currency: 'NGN', state: 'succeeded' },
  };
}

/** The body docs/notifications.md describes, as the event's first delivery sent it. */
const bodyOf = (e: BillingEvent) =>
  JSON.stringify({ id: e.id, type: e.type, at: new Date(e.at).toISOString(), data: e.data });

describe('notifications and the events stream trim', () => {
  const prefixes: string[] = [];
  let redis: Redis;
  let prefix: string;
  let app: App | undefined;
  let queue: Queue | undefined;
  let receiver: Receiver | undefined;
  let stopNotifier: (() => Promise<void>) | undefined;
  let logLines: string[];

  beforeAll(async () => {
    redis = await createTestRedis({}, 'notify-trimmed redis');
  });

  afterEach(async () => {
    await stopNotifier?.();
    stopNotifier = undefined;
    await app?.close();
    app = undefined;
    queue = undefined;
    await receiver?.close();
    receiver = undefined;
  });

  afterAll(async () => {
    for (const p of prefixes) await cleanupPrefix(redis, p);
    await redis.quit();
  });

  const eventsKey = () => storeKeys(prefix).events();

  /** Opens the app on a fresh prefix, NOTIFY_URL at a receiver answering with `answer`. */
  async function open(answer: (r: Omit<Received, 'status'>) => Promise<number>): Promise<App> {
    prefix = uniquePrefix('ntrim');
    prefixes.push(prefix);
    logLines = [];
    receiver = await startReceiver(answer);
    const config = loadConfig({
      NODE_ENV: 'test',
      SAYSWITCH_SECRET_KEY: 'sk_test_notify_trimmed',
      DATA_ENCRYPTION_KEY: '11'.repeat(32),
      API_TOKEN: 'notify-trimmed-api-token-0123',
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: prefix,
      NOTIFY_URL: receiver.url,
      NOTIFY_SECRET: SECRET,
      // One retry, soon: the first try is refused, the retry finds the entry trimmed.
      NOTIFY_RETRY_SCHEDULE: '50ms',
      LOG_LEVEL: 'info',
    });
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => void logLines.push(line) },
    });
    app = openApp(config, logger);
    track(app.redis, 'app redis');
    queue = track(app.dispatcher.queue(QUEUES.notifications), 'notifications queue');
    return app;
  }

  /** The notifications module's reconciler contribution (relay and delivery worker). */
  async function startNotifier(): Promise<Worker> {
    const deps = notificationsDeps(app!, { blockMs: 200 });
    const reconciler = notificationsModule.roles.reconciler;
    if (!deps || !reconciler) throw new Error('notifications are not configured');
    const running = await startContribution(app!, reconciler(deps));
    const [worker] = running.workers;
    if (!worker) throw new Error('no notifications worker');
    let open = true;
    const stop = async () => {
      if (!open) return;
      open = false;
      // The relay first (no new jobs), then the worker lets an in-flight POST finish.
      for (const s of running.started) await s.stop();
      await worker.close();
    };
    stopNotifier = stop;
    track({ kind: 'Notifier', isOpen: () => open, close: stop }, 'notifier');
    return worker;
  }

  /** The job's state once final (completed or failed), and the job. */
  const finalState = async (eventId: string) => {
    const id = notificationJobId(eventId);
    const state = await until(
      async () => {
        const s = await queue!.getJobState(id);
        return s === 'completed' || s === 'failed' ? s : undefined;
      },
      { what: `delivery of ${eventId} final`, timeoutMs: 15_000 },
    );
    return { state, job: (await queue!.getJob(id))! };
  };

  /** What a merchant's Standard Webhooks library makes of a request (throws if it does not verify). */
  const verified = (r: Received) => new Webhook(SECRET).verify(r.raw, r.headers);

  const trimLines = () =>
    logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => String(l.msg).includes('trimmed from the stream before the consumer group'));

  it('a retry after the entry was trimmed sends the event the job carries, once, same id and body', async () => {
    const victim = event(1);
    let trimmed = false;
    const a = await open(async () => {
      if (trimmed) return 200;
      // The merchant is down; meanwhile the stream is trimmed past the event (as a backlog of
      // a million later events would), before the retry.
      await redis.xtrim(eventsKey(), 'MAXLEN', 0);
      trimmed = true;
      return 503;
    });
    await a.events.append(victim);
    await startNotifier();

    const { state } = await finalState(victim.id);
    expect(state).toBe('completed');
    expect(await redis.xlen(eventsKey())).toBe(0);

    expect(receiver!.requests.map((r) => r.status)).toEqual([503, 200]);
    const [refused, ok] = receiver!.requests as [Received, Received];
    expect(receiver!.accepted()).toHaveLength(1);
    // The same webhook-id on both tries and byte for byte the body of the first one.
    expect(ok.headers['webhook-id']).toBe(victim.id);
    expect(refused.headers['webhook-id']).toBe(victim.id);
    expect(ok.raw).toBe(refused.raw);
    expect(ok.raw).toBe(bodyOf(victim));
    expect(verified(ok)).toEqual(JSON.parse(bodyOf(victim)));
    // Nothing was trimmed before the relay read it: no gap reported.
    expect(trimLines()).toEqual([]);
  });

  it('a dashboard retry of a failed delivery sends the event after its entry was trimmed', async () => {
    const victim = event(2);
    let up = false;
    const a = await open(() => Promise.resolve(up ? 200 : 503));
    await a.events.append(victim);
    await startNotifier();

    // Every try refused: the job stays failed, as after ~39 h of a merchant outage.
    const first = await finalState(victim.id);
    expect(first.state).toBe('failed');
    await redis.xtrim(eventsKey(), 'MAXLEN', 0);

    up = true;
    await first.job.retry('failed'); // what the dashboard's retry does
    await until(async () => (await queue!.getJobState(notificationJobId(victim.id))) !== 'failed', {
      what: 'the retried job out of failed',
    });
    const { state, job } = await finalState(victim.id);
    expect(job.failedReason ?? '').not.toContain('no longer in the stream');
    expect(state).toBe('completed');

    const [ok, ...more] = receiver!.accepted();
    expect(more).toEqual([]);
    expect(ok!.headers['webhook-id']).toBe(victim.id);
    expect(ok!.raw).toBe(bodyOf(victim));
    expect(receiver!.requests.every((r) => r.raw === ok!.raw)).toBe(true);
    expect(verified(ok!)).toEqual(JSON.parse(bodyOf(victim)));
  });

  it('a job queued without its event (before this release) still reads its stream entry', async () => {
    const old = event(3);
    const a = await open(() => Promise.resolve(200));
    await ensureNotifyGroup(a.events);
    await a.events.append(old);
    // The relay already went past the entry: only the old-shaped job below delivers it.
    await redis.xgroup('SETID', eventsKey(), NOTIFY_GROUP, '$');
    const [[streamId]] = (await redis.xrange(eventsKey(), '-', '+')) as [[string, string[]]];
    await a.dispatcher.addMany('notifications.deliver', [
      { data: { eventId: old.id, streamId }, jobId: notificationJobId(old.id), attempts: 2 },
    ]);
    await startNotifier();

    const { state, job } = await finalState(old.id);
    expect(job.data).toEqual({ eventId: old.id, streamId });
    expect(state).toBe('completed');
    const [ok, ...more] = receiver!.accepted();
    expect(more).toEqual([]);
    expect(ok!.raw).toBe(bodyOf(old));
    expect(verified(ok!)).toEqual(JSON.parse(bodyOf(old)));
  });

  it('reports, once, events trimmed before the relay read them', async () => {
    const [read, lost1, lost2, kept1, kept2] = [event(4), event(5), event(6), event(7), event(8)];
    const a = await open(() => Promise.resolve(200));
    // The relay ran and read an event...
    await a.events.append(read);
    await startNotifier();
    await until(() => receiver!.accepted().length >= 1, { what: 'the first event delivered' });
    await stopNotifier!();
    const [readId] = (await redis.xrange(eventsKey(), '-', '+'))[0]!;

    // ...then was down while the stream moved on and its trim overtook the group.
    for (const e of [lost1, lost2, kept1, kept2]) await a.events.append(e);
    const entries = await redis.xrange(eventsKey(), '-', '+');
    const keptId = entries[3]![0];
    await redis.xtrim(eventsKey(), 'MINID', keptId);
    expect(await redis.xlen(eventsKey())).toBe(2);
    expect(trimLines()).toEqual([]);

    await startNotifier();
    await until(() => receiver!.accepted().length >= 3, { what: 'the kept events delivered' });

    expect(
      receiver!
        .accepted()
        .map((r) => r.id)
        .sort(),
    ).toEqual([read.id, kept1.id, kept2.id].sort());
    const lines = trimLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'error',
      component: 'notify-relay',
      group: NOTIFY_GROUP,
    });
    // How far behind: how many events, and from when (the last one read) to when (the first left).
    expect(lines[0]).toMatchObject({
      missed: 2,
      lastReadAt: new Date(Number(readId.split('-')[0])).toISOString(),
      firstEntryAt: new Date(Number(keptId.split('-')[0])).toISOString(),
    });
  });
});
