/**
 * Builds the adapters from a Config and starts roles. `main.ts` (the process entry) and the
 * tests use this; nothing here reads process.env.
 */
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import { systemClock, type Clock } from '../kernel/clock.ts';
import type { BillingError } from '../kernel/errors.ts';
import type { EventLog, PaymentGateway, Sealer } from '../kernel/ports.ts';
import { SayswitchGateway } from '../infra/gateway/sayswitch/client.ts';
import { withRateLimit } from '../infra/gateway/rate-limited-gateway.ts';
import { buildHttpServer } from '../http/server.ts';
import { registerWebhookRoutes } from '../http/routes/webhooks.ts';
import { createMetrics, registerMetricsRoute, type Metrics } from '../http/metrics.ts';
import { registerDashboard } from '../http/dashboard.ts';
import { registerSubscriptionRoutes } from '../http/routes/subscriptions.ts';
import { startSubscriptionScheduler } from '../subscriptions/tick.ts';
import { subscriptionServiceDeps } from '../subscriptions/service.ts';
import type { CreateDeps } from '../payments/create.ts';
import type { OutcomeDeps, ReconcilePolicy } from '../payments/apply-outcome.ts';
import type { Logger } from '../infra/logger.ts';
import { assertRedisReady } from '../infra/redis/redis-check.ts';
import { createRedis } from '../infra/redis/connection.ts';
import { createDispatcher, type QueueDispatcher } from '../infra/queues/dispatcher.ts';
import { QUEUES } from '../infra/queues/names.ts';
import { jobOptionsFor } from '../infra/queues/catalog.ts';
import type { ProcessorDeps } from '../infra/queues/processor.ts';
import { startWorker } from '../infra/queues/worker-factory.ts';
import { createReconcileHandler } from '../payments/reconcile.ts';
import { runSweep, type SweepDeps } from '../payments/sweep.ts';
import { RedisEventLog } from '../infra/redis/event-log.ts';
import { RedisIntentStore } from '../payments/store/intent-store.ts';
import { createSealer } from '../infra/sealing.ts';
import { createSubmitHandler } from '../payments/submit.ts';
import { startNotifier, type Notifier } from '../notifications/notifier.ts';
import { startBatchTracker, type BatchTracker } from '../batches/tracking.ts';
import { registerBatchRoutes } from '../http/routes/batches.ts';

export const ROLES = ['api', 'worker', 'scheduler', 'reconciler'] as const;
export type Role = (typeof ROLES)[number];

export interface App {
  config: Config;
  logger: Logger;
  clock: Clock;
  redis: Redis;
  store: RedisIntentStore;
  events: EventLog;
  dispatcher: QueueDispatcher;
  gateway: PaymentGateway;
  sealer: Sealer;
  policy: ReconcilePolicy;
  metrics: Metrics;
  close(): Promise<void>;
}

export interface AppOverrides {
  clock?: Clock;
  gateway?: PaymentGateway;
}

/** Connects to Redis and builds every adapter. Nothing runs until roles are started. */
export function openApp(config: Config, logger: Logger, overrides: AppOverrides = {}): App {
  const redis = createRedis(config.redis.url);
  redis.on('error', (err) =>
    logger.warn({ err: { message: err.message } }, 'redis connection error'),
  );
  // The stores and the gateway rate limiter get their own connection with auto-pipelining: their
  // many small commands share round trips. BullMQ keeps a plain one (it issues blocking commands).
  const storeRedis = createRedis(config.redis.url, { enableAutoPipelining: true });
  storeRedis.on('error', (err) =>
    logger.warn({ err: { message: err.message } }, 'redis connection error'),
  );
  const prefix = config.redis.prefix;
  const store = new RedisIntentStore(storeRedis, prefix);
  const dispatcher = createDispatcher(redis, prefix);
  const metrics = createMetrics();
  const sayswitch = (): PaymentGateway =>
    new SayswitchGateway({
      baseUrl: config.sayswitch.baseUrl,
      secretKey: config.sayswitch.secretKey,
      timeoutMs: config.sayswitch.timeoutMs,
      ...(config.sayswitch.encryption
        ? {
            encryption: {
              ...config.sayswitch.encryption,
              onWarning: (msg: string) => logger.warn({ component: 'gateway' }, msg),
            },
          }
        : {}),
      chargePath: config.sayswitch.chargePath,
      verifyPath: config.sayswitch.verifyPath,
      payoutLookupPath: config.sayswitch.payoutLookupPath,
      signRequests: config.sayswitch.signRequests,
      logger: logger.child({ component: 'gateway' }),
    });
  // Instrumented inside the rate limiter, so gateway latency excludes time waiting for a token.
  const gateway = overrides.gateway
    ? metrics.instrumentGateway(overrides.gateway)
    : withRateLimit(metrics.instrumentGateway(sayswitch()), storeRedis, {
        prefix,
        perSecond: config.sayswitch.rateLimitPerSec,
      });
  metrics.collectOnScrape({
    store,
    queues: Object.values(QUEUES).map((q) => dispatcher.queue(q)),
  });
  return {
    config,
    logger,
    clock: overrides.clock ?? systemClock,
    redis,
    store,
    events: new RedisEventLog(storeRedis, prefix),
    dispatcher,
    gateway,
    metrics,
    sealer: createSealer(config.dataEncryptionKey),
    policy: {
      scheduleMs: config.reconcile.scheduleMs,
      notFoundGraceMs: config.reconcile.notFoundGraceMs,
      maxUnsentResubmits: config.reconcile.maxUnsentResubmits,
      payoutWatchMs: config.reconcile.payoutWatchMs,
    },
    async close() {
      await dispatcher.close();
      await redis.quit().catch(() => redis.disconnect());
      await storeRedis.quit().catch(() => storeRedis.disconnect());
    },
  };
}

export interface RunningRoles {
  roles: Role[];
  http?: FastifyInstance;
  workers: Worker[];
  /** Stops taking jobs, lets in-flight ones finish (up to `timeoutMs`), closes everything. */
  stop(timeoutMs?: number): Promise<void>;
}

function outcomeDeps(app: App): OutcomeDeps {
  return { store: app.store, dispatcher: app.dispatcher, logger: app.logger, policy: app.policy };
}

/** What the reconcile sweep needs; also used by `billing reconcile`. */
export function sweepDeps(app: App): SweepDeps {
  return {
    store: app.store,
    dispatcher: app.dispatcher,
    clock: app.clock,
    logger: app.logger,
    orphanAfterMs: app.config.reconcile.orphanAfterMs,
  };
}

function processorDeps(app: App): ProcessorDeps {
  return {
    logger: app.logger,
    now: () => app.clock.now(),
    onAuthFailure: async (queueName: string, err: BillingError) => {
      await app.dispatcher.queue(queueName as never).pause();
      const minute = Math.floor(app.clock.now() / 60_000);
      const id = `evt_alert_auth_${queueName}_${minute}`;
      // Many jobs fail on the same bad key at once: one alert per queue and minute.
      const first = await app.redis.set(
        `${app.config.redis.prefix}:alerts:${id}`,
        '1',
        'EX',
        3_600,
        'NX',
      );
      if (first !== 'OK') return;
      await app.events.append({
        id,
        type: 'alert.gateway_auth_failed',
        at: app.clock.now(),
        data: {
          queue: queueName,
          code: err.code,
          action: 'queue paused; fix credentials, then resume it',
        },
      });
    },
  };
}

/** Starts the given roles in this process. Every role first checks Redis's eviction policy. */
export async function startRoles(app: App, roles: Role[]): Promise<RunningRoles> {
  const check = await assertRedisReady(app.redis, {
    allowEviction: app.config.redis.allowEviction,
  });
  if ('warning' in check && check.warning) app.logger.warn(check.warning);
  const connection = app.redis;
  const workerOpts = {
    connection,
    prefix: app.config.redis.prefix,
    concurrency: app.config.worker.concurrency,
    lockDurationMs: app.config.worker.lockDurationMs,
  };
  const workers: Worker[] = [];
  let http: FastifyInstance | undefined;

  if (roles.includes('worker')) {
    const handler = createSubmitHandler({
      ...outcomeDeps(app),
      gateway: app.gateway,
      sealer: app.sealer,
      clock: app.clock,
      leaseMs: app.config.worker.submitLeaseMs,
    });
    workers.push(
      startWorker(QUEUES.charges, { 'charges.submit': handler }, processorDeps(app), workerOpts),
    );
    workers.push(
      startWorker(QUEUES.payouts, { 'payouts.submit': handler }, processorDeps(app), workerOpts),
    );
  }
  if (roles.includes('reconciler')) {
    const check = createReconcileHandler({
      ...outcomeDeps(app),
      gateway: app.gateway,
      clock: app.clock,
    });
    const sweep = (data: { olderThanMs?: number | undefined }) =>
      runSweep(
        sweepDeps(app),
        data.olderThanMs !== undefined ? { olderThanMs: data.olderThanMs } : {},
      );
    workers.push(
      startWorker(
        QUEUES.reconcile,
        { 'reconcile.check': check, 'reconcile.sweep': sweep },
        processorDeps(app),
        workerOpts,
      ),
    );
  }
  // Batch bookkeeping (counts, completion) runs with the workers that produce its events.
  let tracker: BatchTracker | undefined;
  if (roles.includes('worker')) tracker = await startBatchTracker(app);
  let notifier: Notifier | undefined;
  if (roles.includes('reconciler') && app.config.notify) {
    notifier = await startNotifier(app, {
      processorDeps: processorDeps(app),
      lockDurationMs: app.config.worker.lockDurationMs,
    });
  }
  let subscriptions: { stop(): Promise<void> } | undefined;
  if (roles.includes('scheduler')) {
    subscriptions = await startSubscriptionScheduler(app);
    // One job scheduler per id, however many scheduler replicas upsert it.
    await app.dispatcher
      .queue(QUEUES.reconcile)
      .upsertJobScheduler(
        'reconcile-sweep',
        { pattern: app.config.reconcile.cron },
        { name: 'sweep', data: {}, opts: jobOptionsFor('reconcile.sweep') },
      );
  }
  if (roles.includes('api')) {
    const payments: CreateDeps = {
      store: app.store,
      dispatcher: app.dispatcher,
      sealer: app.sealer,
      clock: app.clock,
      hashKey: app.config.dataEncryptionKey,
    };
    http = await buildHttpServer({
      logger: app.logger,
      apiToken: app.config.http.apiToken,
      payments,
      ready: async () => (await app.redis.ping()) === 'PONG',
      extensions: [
        (server) => registerMetricsRoute(server, app.metrics),
        (server, guard) => registerSubscriptionRoutes(server, subscriptionServiceDeps(app), guard),
        (server) =>
          registerDashboard(server, {
            queues: Object.values(QUEUES).map((q) => app.dispatcher.queue(q)),
            ...(app.config.http.dashboard
              ? {
                  auth: {
                    user: app.config.http.dashboard.user,
                    password: app.config.http.dashboard.password,
                  },
                }
              : {}),
            readOnly: app.config.http.dashboardReadOnly,
            production: app.config.nodeEnv === 'production',
            logger: app.logger.child({ component: 'dashboard' }),
          }),
        (server) =>
          registerWebhookRoutes(server, {
            store: app.store,
            dispatcher: app.dispatcher,
            logger: app.logger.child({ component: 'webhooks' }),
            secretKey: app.config.sayswitch.secretKey,
            maxBytes: app.config.http.webhookMaxBytes,
          }),
        (server, guard) => registerBatchRoutes(server, app, guard),
      ],
    });
    await http.listen({ port: app.config.http.port, host: app.config.http.host });
  }
  for (const w of workers) app.metrics.observeJob(w, w.name);
  if (notifier) app.metrics.observeJob(notifier.worker, QUEUES.notifications);
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  app.logger.info({ roles }, 'roles started');

  return {
    roles,
    workers,
    ...(http ? { http } : {}),
    async stop(timeoutMs = app.config.shutdownTimeoutMs) {
      const graceful = Promise.all([
        http?.close(),
        notifier?.stop(),
        subscriptions?.stop(),
        tracker?.stop(),
        ...workers.map((w) => w.close()),
      ]);
      let timer: NodeJS.Timeout | undefined;
      const forced = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const r = await Promise.race([graceful.then(() => 'ok' as const), forced]);
      clearTimeout(timer);
      if (r === 'timeout') {
        app.logger.warn({ timeoutMs }, 'in-flight jobs did not finish in time; forcing close');
        await Promise.all(workers.map((w) => w.close(true)));
      }
    },
  };
}
