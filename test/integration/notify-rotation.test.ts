/**
 * Rotating NOTIFY_SECRET (docs/operations.md "Rotating secrets"), end to end on real Redis and a
 * real HTTP receiver: with NOTIFY_SECRET_PREVIOUS set, a delivery is accepted by a receiver that
 * holds only the old secret and by one that holds only the new, each verifying with the
 * `standardwebhooks` package (and the deprecated header with its own check); once it is unset,
 * only the new secret verifies.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
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
import { notificationsModule } from '../../src/notifications/module.ts';
import { notificationJobId } from '../../src/notifications/relay.ts';
import { verifyNotification } from '../../src/notifications/signature.ts';
import { track } from '../support/leak-check.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, createTestRedis, getRedisUrl, uniquePrefix } from '../support/redis.ts';

const OLD = `whsec_${Buffer.from('notify-rotation-old-secret-0123').toString('base64')}`;
const NEW = `whsec_${Buffer.from('notify-rotation-new-secret-0123').toString('base64')}`;

interface Received {
  raw: string;
  headers: Record<string, string>;
  status: number;
}

interface Receiver {
  url: string;
  requests: Received[];
  isOpen(): boolean;
  close(): Promise<void>;
}

/**
 * A merchant's receiver holding one secret: 204 when its Standard Webhooks library verifies the
 * request, 401 otherwise (a refusal the service would retry).
 */
async function startReceiver(secret: string): Promise<Receiver> {
  const wh = new Webhook(secret);
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
      let status = 204;
      try {
        wh.verify(raw, headers);
      } catch {
        status = 401;
      }
      requests.push({ raw, headers, status });
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return track(
    {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/billing`,
      requests,
      isOpen: () => open,
      close: () =>
        new Promise<void>((resolve) => {
          if (!open) return resolve();
          open = false;
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    },
    'notify-rotation receiver',
  );
}

const EVENT: BillingEvent = {
  id: 'evt_ch_rot_1_succeeded',
  type: 'payment.succeeded',
  at: Date.UTC(2025, 0, 2, 3, 4, 5),
  data: { key: 'ch_rot', amount: 150_000, currency: 'NGN', state: 'succeeded' },
};

describe('notifications while NOTIFY_SECRET is rotated', () => {
  const prefixes: string[] = [];
  let redis: Redis;
  let app: App | undefined;
  let queue: Queue | undefined;
  let receiver: Receiver | undefined;
  let stopNotifier: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    redis = await createTestRedis({}, 'notify-rotation redis');
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

  /**
   * Opens the app on a fresh prefix with `notify` (NOTIFY_SECRET and NOTIFY_SECRET_PREVIOUS),
   * delivering to a receiver holding `receiverSecret`, records EVENT and starts the relay and the
   * delivery worker as the reconciler role does. Resolves with the first delivery attempt.
   */
  async function deliverTo(
    receiverSecret: string,
    notify: Record<string, string>,
  ): Promise<Received> {
    const prefix = uniquePrefix('nrot');
    prefixes.push(prefix);
    receiver = await startReceiver(receiverSecret);
    const config = loadConfig({
      NODE_ENV: 'test',
      SAYSWITCH_SECRET_KEY: 'sk_test_notify_rotation',
      DATA_ENCRYPTION_KEY: '11'.repeat(32),
      API_TOKEN: 'notify-rotation-api-token-0123',
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: prefix,
      NOTIFY_URL: receiver.url,
      ...notify,
      // A refused first attempt would be retried much later: the first one must pass.
      NOTIFY_RETRY_SCHEDULE: '1h',
      LOG_LEVEL: 'silent',
    });
    app = openApp(config, createLogger({ level: 'silent' }));
    track(app.redis, 'app redis');
    queue = track(app.dispatcher.queue(QUEUES.notifications), 'notifications queue');
    await app.events.append(EVENT);

    const deps = notificationsDeps(app, { blockMs: 200 });
    const reconciler = notificationsModule.roles.reconciler;
    if (!deps || !reconciler) throw new Error('notifications are not configured');
    const running = await startContribution(app, reconciler(deps));
    const [worker] = running.workers;
    if (!worker) throw new Error('no notifications worker');
    let open = true;
    stopNotifier = async () => {
      if (!open) return;
      open = false;
      for (const s of running.started) await s.stop();
      await worker.close();
    };
    track({ kind: 'Notifier', isOpen: () => open, close: stopNotifier }, 'notifier');

    const r = receiver;
    return until(() => r.requests[0], { what: 'the first delivery attempt' });
  }

  /** The delivery job's state once it is no longer waiting or running. */
  const settled = (eventId: string) =>
    until(
      async () => {
        const s = await queue!.getJobState(notificationJobId(eventId));
        return s === 'completed' || s === 'failed' || s === 'delayed' ? s : undefined;
      },
      { what: `delivery of ${eventId} settled` },
    );

  it.each([
    ['only the old secret', OLD],
    ['only the new secret', NEW],
  ])(
    'with NOTIFY_SECRET_PREVIOUS set, a receiver holding %s accepts the delivery',
    async (_label, held) => {
      const got = await deliverTo(held, { NOTIFY_SECRET: NEW, NOTIFY_SECRET_PREVIOUS: OLD });
      expect(got.status).toBe(204);
      expect(await settled(EVENT.id)).toBe('completed');
      expect(got.headers['webhook-id']).toBe(EVENT.id);
      const sigs = got.headers['webhook-signature']!.split(' ');
      expect(sigs).toHaveLength(2);
      // The new secret's signature first; each verifies with its own secret alone.
      expect(() =>
        new Webhook(NEW).verify(got.raw, { ...got.headers, 'webhook-signature': sigs[0]! }),
      ).not.toThrow();
      expect(() =>
        new Webhook(OLD).verify(got.raw, { ...got.headers, 'webhook-signature': sigs[1]! }),
      ).not.toThrow();
      // The deprecated header verifies with either secret as well.
      for (const secret of [OLD, NEW]) {
        expect(
          verifyNotification(got.raw, got.headers['x-billing-signature'], secret, {
            nowSec: Date.now() / 1000,
          }),
        ).toBe(true);
      }
      expect(JSON.parse(got.raw)).toMatchObject({ id: EVENT.id, type: EVENT.type });
    },
  );

  it('once NOTIFY_SECRET_PREVIOUS is unset, a receiver still holding the old secret refuses', async () => {
    const got = await deliverTo(OLD, { NOTIFY_SECRET: NEW });
    expect(got.status).toBe(401);
    expect(got.headers['webhook-signature']!.split(' ')).toHaveLength(1);
    expect(await settled(EVENT.id)).toBe('delayed');
  });
});
