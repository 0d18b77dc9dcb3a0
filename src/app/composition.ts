/**
 * The composition root: builds every port once from a Config (connections, stores, the gateway,
 * the dispatcher), and starts roles from one table, role → modules. Each capability says in its
 * `module.ts` what it runs in a role; this file only decides which modules a role runs and maps
 * configuration onto their ports. `main.ts` (the process entry) and the tests use it; nothing here
 * reads process.env. Over 400 lines on purpose: building the ports and starting the roles are one
 * reading of the deployment; the per-shard wiring already lives in shard-ports.ts.
 */
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import { systemClock, type Clock } from '../kernel/clock.ts';
import type {
  EventLog,
  PaymentGateway,
  RateLimiter,
  RefundStore,
  RequestHasher,
  Sealer,
  SignInThrottle,
} from '../kernel/ports.ts';
import { SayswitchGateway } from '../infra/gateway/sayswitch/client.ts';
import {
  createRateLimiter,
  NO_RATE_LIMIT,
  withRateLimit,
} from '../infra/gateway/rate-limited-gateway.ts';
import type { Logger } from '../infra/logger.ts';
import {
  ROLES,
  type AnyQueueJobs,
  type CapabilityModule,
  type Role,
  type RoleContribution,
  type Stoppable,
} from '../infra/module.ts';
import type { QueueDispatcher } from '../infra/queues/dispatcher.ts';
import type { ProcessorDeps } from '../infra/queues/processor.ts';
import { rebuildWorker, startWorker } from '../infra/queues/worker-factory.ts';
import { startWorkerWatchdog } from '../infra/queues/worker-watchdog.ts';
import { createFailFastRedis, createRedis } from '../infra/redis/connection.ts';
import { DeploymentEpoch } from '../infra/redis/epoch.ts';
import {
  RedisHealth,
  redisWriteRefusal,
  WRITE_REFUSALS,
  type WriteRefusalCode,
} from '../infra/redis/health.ts';
import { storeKeys } from '../infra/redis/keys.ts';
import { createSignInThrottle } from '../infra/redis/sign-in-throttle.ts';
import {
  assertClusterSeeds,
  assertRedisReady,
  assertRedisTopology,
  probeWrites,
} from '../infra/redis/redis-check.ts';
import {
  assertShardCount,
  keyLayout,
  restoreShardCount,
  type KeyLayout,
} from '../infra/redis/shards.ts';
import { createRequestHasher, createSealer } from '../infra/sealing.ts';
import { createMetrics, type Metrics } from '../http/metrics.ts';
import { startApi } from '../http/api.ts';
import { startMetricsServer } from '../http/metrics-server.ts';
import { accessTokensOf, previousTokenReporter } from '../http/auth.ts';
import type { IntentStoreSurface } from '../payments/store/sharded-store.ts';
import { SHARD_QUEUES } from '../infra/queues/sharded-dispatcher.ts';
import type { ReconcilePolicy } from '../payments/apply-outcome.ts';
import { paymentsModule, type PaymentsDeps } from '../payments/module.ts';
import type { SweepDeps } from '../payments/sweep.ts';
import { batchesModule, type BatchesDeps } from '../batches/module.ts';
import {
  resumeApprovedReleases,
  resumeCanceledHeldBatches,
  resumeInterruptedCancel,
} from '../batches/operations.ts';
import { RedisBatchStore } from '../batches/store/batch-store.ts';
import { rerunFailedDunning } from '../subscriptions/dunning.ts';
import { subscriptionsModule, type SubscriptionsDeps } from '../subscriptions/module.ts';
import { RedisSubscriptionStore } from '../subscriptions/store/subscription-store.ts';
import { notificationsModule, type NotificationsDeps } from '../notifications/module.ts';
import { startPlatformWatch } from './platform-watch.ts';
import { shardPorts } from './shard-ports.ts';

export { ROLES, type Role };

export interface App {
  config: Config;
  logger: Logger;
  clock: Clock;
  /** BullMQ's workers' connection (waits through outages); also the demo's clean-up. Features never get it. */
  redis: Redis;
  /** The deployment's key groups (QUEUE_PREFIX, shards, cluster hash tags): infra/redis/shards.ts. */
  layout: KeyLayout;
  /** Whether Redis answers, from every connection's events; logs each outage once. */
  health: RedisHealth;
  /** The deployment epoch: how a data loss in Redis is noticed (infra/redis/epoch.ts). */
  epoch: DeploymentEpoch;
  /**
   * Records REDIS_SHARDS again where the group lost the record (infra/redis/shards.ts
   * `restoreShardCount`); the platform watch runs it after each epoch check.
   */
  restoreShardCount(): Promise<void>;
  /**
   * Readiness: every key group accepts a write (on a cluster: every master holding our slots)
   * within half a second, and no data loss waits to be acknowledged.
   */
  ready(): Promise<
    { ok: true } | { ok: false; reason: 'redis_unavailable' | WriteRefusalCode | 'redis_data_lost' }
  >;
  /**
   * The concrete store (one shard's, or the router over every shard's): tests reach its extra
   * helpers; features get the IntentStore port.
   */
  store: IntentStoreSurface;
  /** Refunds of charges (docs/refunds.md), in the intent store's layout. */
  refunds: RefundStore;
  /** Subscription records (concrete, like `store`); features get the SubscriptionStore port. */
  subscriptions: RedisSubscriptionStore;
  /** Batch records (concrete, like `store`); features get the BatchStore port. */
  batches: RedisBatchStore;
  events: EventLog;
  dispatcher: QueueDispatcher;
  gateway: PaymentGateway;
  /** The outbound rate limit: lookups wait inside `gateway`, submissions take a token first. */
  rateLimiter: RateLimiter;
  /** Failed password sign-ins per client address (the dashboard's and the console's). */
  signIns: SignInThrottle;
  sealer: Sealer;
  /** Request digests of idempotency (DATA_ENCRYPTION_KEY, and its previous key in a rotation). */
  hasher: RequestHasher;
  policy: ReconcilePolicy;
  metrics: Metrics;
  close(): Promise<void>;
}

export interface AppOverrides {
  clock?: Clock;
  /** A gateway double; it gets no rate limit unless `rateLimiter` is given too. */
  gateway?: PaymentGateway;
  rateLimiter?: RateLimiter;
}

/** Connects to Redis and builds every adapter. Nothing runs until roles are started. */
export function openApp(config: Config, logger: Logger, overrides: AppOverrides = {}): App {
  const nodes = config.redis.clusterNodes;
  const layout = keyLayout({
    prefix: config.redis.prefix,
    shards: config.redis.shards,
    served: config.redis.shardsServed,
    cluster: nodes !== undefined,
  });
  const target = { url: config.redis.url, ...(nodes ? { clusterNodes: nodes } : {}) };
  const health = new RedisHealth(
    config.redis.url,
    logger.child({ component: 'redis' }),
    Date.now,
    nodes ? `cluster ${nodes.map((n) => `${n.host}:${n.port}`).join(',')}` : undefined,
  );
  // BullMQ's workers wait through an outage (blocking commands must not give up). The stores, the
  // gateway rate limiter and the queues' producers fail fast instead, so a request or a command
  // answers "Redis unavailable" in bounded time; the stores' many small commands share round
  // trips (auto-pipelining).
  const redis = createRedis(target);
  const storeRedis = createFailFastRedis(target, { enableAutoPipelining: true });
  const queueRedis = createFailFastRedis(target);
  for (const conn of [redis, storeRedis, queueRedis]) health.watch(conn);
  // An outage started by a command error (a cluster failing over) ends when every group takes a
  // write again: no connection event would say so.
  health.recoverBy(() =>
    withDeadline(probeWrites(storeRedis, layout.allPrefixes()), READY_PING_MS).catch(() => false),
  );
  const prefix = layout.group;
  // Claims take their gateway token in the claim script; lookups through `rateLimiter` below, at
  // shard 0's key. A gateway double gets no limit unless a `rateLimiter` is given too. With N
  // shards each shard's claims (and shard 0's lookups) get 1/N of the rate, so the deployment
  // never sends more than SAYSWITCH_RATE_LIMIT_PER_SEC (docs/operations.md, "Redis Cluster").
  const limited = overrides.gateway === undefined || overrides.rateLimiter !== undefined;
  const perSecond = Math.max(1, Math.floor(config.sayswitch.rateLimitPerSec / layout.shards));
  // One epoch record per key group: each master of a cluster can lose its data on its own.
  const epoch = new DeploymentEpoch(storeRedis, layout.allPrefixes());
  // One store, dispatcher and events stream per shard, behind one of each (app/shard-ports.ts).
  // Intents created while a data loss is unacknowledged are marked (payments/resubmission.ts).
  const { store, refunds, dispatcher, events, queueGauges } = shardPorts(
    layout,
    { store: storeRedis, queue: queueRedis },
    (err) => health.onError(err, 'queue'),
    {
      dataLossUnacknowledged: () => epoch.isLost(),
      ...(limited ? { gatewayRateLimit: { perWindow: perSecond, windowMs: 1_000 } } : {}),
    },
    (shard, what, err) =>
      logger.error(
        {
          component: 'sweep',
          shard,
          prefix: layout.shard(shard),
          query: what,
          err: { message: (err as Error).message },
        },
        'reconcile sweep: a shard could not be read; the other shards are swept, this one on the next sweep',
      ),
  );
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
  const rateLimiter =
    overrides.rateLimiter ??
    (overrides.gateway
      ? NO_RATE_LIMIT
      : createRateLimiter(storeRedis, { key: storeKeys(prefix).rateLimit(), perSecond }));
  // Instrumented inside the rate limiter, so gateway latency excludes time waiting for a token.
  const gateway = withRateLimit(
    metrics.instrumentGateway(overrides.gateway ?? sayswitch()),
    rateLimiter,
  );
  metrics.collectOnScrape({
    store,
    queues: queueGauges(),
  });
  metrics.watchPlatform({
    redisUp: () => health.isUp(),
    dataLossUnacknowledged: () => epoch.isLost(),
    redisWriteRefusals: (kind) => health.writeRefusals(kind),
  });
  const connections = [redis, storeRedis, queueRedis];
  return {
    config,
    logger,
    clock: overrides.clock ?? systemClock,
    redis,
    layout,
    health,
    epoch,
    restoreShardCount: () => restoreShardCount(storeRedis, layout),
    async ready() {
      if (!health.isUp()) return { ok: false, reason: 'redis_unavailable' };
      const wrote = await withDeadline(
        probeWrites(storeRedis, layout.allPrefixes()),
        READY_PING_MS,
      ).catch((err: unknown) => redisWriteRefusal(err) ?? false);
      if (wrote === 'out_of_memory' || wrote === 'cannot_persist') {
        return { ok: false, reason: WRITE_REFUSALS[wrote].code };
      }
      if (!wrote) return { ok: false, reason: 'redis_unavailable' };
      if (epoch.isLost()) return { ok: false, reason: 'redis_data_lost' };
      return { ok: true };
    },
    store,
    refunds,
    subscriptions: new RedisSubscriptionStore(storeRedis, prefix),
    batches: new RedisBatchStore(storeRedis, prefix),
    events,
    dispatcher,
    gateway,
    rateLimiter,
    signIns: createSignInThrottle(storeRedis, {
      keyPrefix: storeKeys(prefix).signInFailures(),
      ...config.http.signIn,
    }),
    metrics,
    sealer: createSealer(config.dataEncryptionKey, config.previousDataEncryptionKey),
    hasher: createRequestHasher(config.dataEncryptionKey, config.previousDataEncryptionKey),
    policy: {
      scheduleMs: config.reconcile.scheduleMs,
      notFoundGraceMs: config.reconcile.notFoundGraceMs,
      maxUnsentResubmits: config.reconcile.maxUnsentResubmits,
      payoutWatchMs: config.reconcile.payoutWatchMs,
      requiresActionWindowMs: config.reconcile.requiresActionWindowMs,
    },
    async close() {
      health.closing();
      // Quitting waits for Redis; while it is unreachable (or if quitting stalls) the
      // connections are dropped instead, so closing never outlasts CLOSE_MS.
      const graceful = async () => {
        await dispatcher.close();
        await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
      };
      const done = health.isUp()
        ? await withDeadline(graceful(), CLOSE_MS).then(
            () => true,
            () => false,
          )
        : false;
      if (!done) for (const c of connections) c.disconnect();
    },
  };
}

/** How long readiness waits for its probe writes. */
const READY_PING_MS = 500;
/** How long closing the app waits for Redis before dropping the connections. */
const CLOSE_MS = 2_000;

class DeadlineExceeded extends Error {}

/** `p`, or a rejection with DeadlineExceeded after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The ports of the payments module, from the app and its configuration. They carry the sweep's
 * ({@link sweepDeps}): the reconciler role's scheduled sweep runs on them.
 */
export function paymentsDeps(app: App): PaymentsDeps {
  return {
    ...app,
    submitLeaseMs: app.config.worker.submitLeaseMs,
    orphanAfterMs: app.config.reconcile.orphanAfterMs,
    sweepCron: app.config.reconcile.cron,
    partialRefunds: app.config.sayswitch.partialRefunds,
    // What the gateway contradicts (apply-outcome.ts) is counted for the alerts.
    discrepancies: app.metrics,
    // A queued orphan of a held batch canceled before approval is its interrupted cancel's: the
    // batches capability resumes the cancel instead of the sweep re-enqueueing the row.
    claimBatchOrphan: (batchId) => resumeInterruptedCancel(app, batchId),
    // A held batch whose cancel stopped before any row became an intent has no orphan to find.
    resumeStuckCancels: (graceMs) => resumeCanceledHeldBatches(app, graceMs),
    // An approved batch whose release stopped partway has held rows no orphan stands for.
    resumeStuckReleases: (graceMs) => resumeApprovedReleases(app, graceMs),
    // A dunning retry job whose attempts were spent is re-armed by nothing else.
    rerunFailedDunning: (graceMs) =>
      rerunFailedDunning(
        {
          subs: app.subscriptions,
          dispatcher: app.dispatcher,
          clock: app.clock,
          logger: app.logger,
        },
        graceMs,
      ),
  };
}

/** What the reconcile sweep needs; also used by `billing reconcile`. */
export function sweepDeps(app: App): SweepDeps {
  return paymentsDeps(app);
}

/**
 * The ports of the subscriptions module. `tuning` is for tests: `cron: false` registers no tick
 * job scheduler (ticks are driven with `runTick`), the rest tunes the outcome consumer.
 */
export function subscriptionsDeps(
  app: App,
  tuning: { cron?: false } & NonNullable<SubscriptionsDeps['outcomes']> = {},
): SubscriptionsDeps {
  const { cron, ...outcomes } = tuning;
  return {
    subs: app.subscriptions,
    intents: app.store,
    dispatcher: app.dispatcher,
    events: app.events,
    clock: app.clock,
    logger: app.logger,
    tickCron: cron === false ? null : app.config.scheduler.cron,
    catchUpMaxPeriods: app.config.scheduler.catchUpMaxPeriods,
    dunning: app.config.dunning,
    outcomes,
  };
}

/**
 * The ports of the notifications module; undefined when NOTIFY_URL is not set (the module does
 * not run then).
 */
export function notificationsDeps(
  app: App,
  relay?: NotificationsDeps['relay'],
): NotificationsDeps | undefined {
  if (!app.config.notify) return undefined;
  return { ...app, notify: app.config.notify, ...(relay ? { relay } : {}) };
}

/** The ports of the batches module (the batch tracker). */
export function batchesDeps(app: App): BatchesDeps {
  return { batches: app.batches, events: app.events, clock: app.clock, logger: app.logger };
}

/** A module with its ports, ready to contribute to the roles it takes part in. */
export interface Mounted {
  name: string;
  contribution(role: Role): RoleContribution | undefined;
}

function mount<D>(module: CapabilityModule<D>, deps: D | undefined): Mounted {
  return {
    name: module.name,
    contribution: (role) => (deps === undefined ? undefined : module.roles[role]?.(deps)),
  };
}

/** The api role as a module of the edge: the HTTP server. */
function apiMount(app: App, onListen: (http: FastifyInstance) => void): Mounted {
  return {
    name: 'api',
    contribution: (role) =>
      role !== 'api'
        ? undefined
        : {
            start: async () => {
              const http = await startApi({
                ...app,
                redisUp: () => app.health.isUp(),
                onRedisError: (err) => app.health.onError(err, 'http'),
              });
              onListen(http);
              return { stop: () => http.close() };
            },
          },
  };
}

/** Role → the modules that run in it. The one place that says which capability runs where. */
const ROLE_TABLE: Readonly<Record<Role, readonly string[]>> = {
  api: ['api'],
  worker: ['payments', 'batches'],
  scheduler: ['payments', 'subscriptions'],
  reconciler: ['payments', 'notifications'],
};

export interface RunningRoles {
  roles: Role[];
  http?: FastifyInstance;
  workers: Worker[];
  /** Stops taking jobs, lets in-flight ones finish (up to `timeoutMs`), closes everything. */
  stop(timeoutMs?: number): Promise<void>;
}

/** A started module contribution: its workers and whatever it started. */
export interface RunningModule {
  workers: Worker[];
  started: Stoppable[];
}

function processorDeps(app: App, jobs: AnyQueueJobs): ProcessorDeps {
  return {
    logger: app.logger,
    now: () => app.clock.now(),
    onAuthFailure:
      jobs.onAuthFailure ??
      ((queue, err) => {
        app.logger.error({ queue, code: err.code }, 'unexpected gateway auth failure');
        return Promise.resolve();
      }),
  };
}

/**
 * Starts one contribution: its workers (ready before anything else starts), then what it starts.
 * If starting fails, what was started is closed again.
 */
export async function startContribution(
  app: App,
  c: RoleContribution,
  opts: { lockDurationMs?: number } = {},
): Promise<RunningModule> {
  // A queue every shard has runs one worker per served shard (shard 0's prefix is the group's).
  const { layout } = app;
  const placed = (c.jobs ?? []).flatMap((jobs) =>
    layout.shards > 1 && SHARD_QUEUES.includes(jobs.queue)
      ? layout.served.map((n) => ({ jobs, prefix: layout.shard(n) }))
      : [{ jobs, prefix: layout.group }],
  );
  const workers = placed.map(({ jobs, prefix }) =>
    startWorker(jobs.queue, jobs.handlers as never, processorDeps(app, jobs), {
      connection: app.redis,
      prefix,
      concurrency: jobs.concurrency ?? app.config.worker.concurrency,
      lockDurationMs: opts.lockDurationMs ?? app.config.worker.lockDurationMs,
      ...(jobs.backoffMs ? { backoffMs: jobs.backoffMs } : {}),
      onError: (err) => app.health.onError(err, `worker ${jobs.queue}`),
    }),
  );
  try {
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    const started = c.start ? await c.start() : undefined;
    return { workers, started: started ? [started] : [] };
  } catch (err) {
    await Promise.all(workers.map((w) => w.close(true)));
    throw err;
  }
}

/**
 * The order roles start in: the table's, with the api role last, so that it listens (and
 * `/readyz` answers 200) only once the process's other roles run.
 */
export function startOrder(roles: readonly Role[]): Role[] {
  return [...ROLES.filter((r) => r !== 'api'), 'api' as const].filter((r) => roles.includes(r));
}

/** Starts the given roles in this process. Every role first checks Redis's eviction policy. */
export async function startRoles(app: App, roles: Role[]): Promise<RunningRoles> {
  await assertClusterSeeds(app.config.redis);
  const check = await assertRedisReady(app.redis, {
    allowEviction: app.config.redis.allowEviction,
  });
  if ('warning' in check && check.warning) app.logger.warn(check.warning);
  await assertRedisTopology(app.redis, app.health.address);
  await assertShardCount(app.redis, app.layout);
  const epoch = await app.epoch.open(app.clock.now());
  if (epoch.detected) {
    app.metrics.countDataLoss();
    app.logger.error(
      { redis: app.health.address, lostEpoch: epoch.detected.lostId, epoch: epoch.id },
      'REDIS DATA LOSS: a key group has no deployment epoch while the others have (its master ' +
        'restarted empty while no process ran); payments accepted before it may be missing. ' +
        '/readyz answers 503 until `billing redis ack-data-loss` (docs/operations.md, "Redis ' +
        'lost its data")',
    );
  } else if (epoch.lost) {
    app.logger.error(
      { epoch: epoch.id },
      'Redis lost its data and nobody acknowledged it yet: /readyz answers 503 until ' +
        '`billing redis ack-data-loss` (docs/operations.md, "Redis lost its data")',
    );
  }
  const lostAtStart = epoch.lost
    ? (epoch.detected?.lostId ?? (await app.epoch.read())?.lostId)
    : undefined;
  const watch = startPlatformWatch(app, undefined, lostAtStart);

  let http: FastifyInstance | undefined;
  const modules = new Map<string, Mounted>(
    [
      mount(paymentsModule, paymentsDeps(app)),
      mount(batchesModule, batchesDeps(app)),
      mount(subscriptionsModule, subscriptionsDeps(app)),
      mount(notificationsModule, notificationsDeps(app)),
      apiMount(app, (server) => (http = server)),
    ].map((m) => [m.name, m]),
  );

  const workers: Worker[] = [];
  const started: Stoppable[] = [];
  const watchdogs: { stop(): void }[] = [];
  const stopAll = async () => {
    watch.stop();
    for (const w of watchdogs) w.stop();
    // No job is taken after the signal: every worker stops fetching at once (`pause` resolves
    // once its jobs in flight ended), not after the HTTP server's close, which waits for its open
    // requests (an upload, a slow webhook sender).
    const drained = Promise.all(workers.map((w) => w.pause()));
    // What was started (consumers, the HTTP server) stops while the jobs in flight run on.
    await Promise.all(started.map((s) => s.stop()));
    // Closed only once drained: a close that has begun cannot be forced (BullMQ returns the
    // pending close), and `stop` below forces one when the drain outlasts its timeout.
    await drained;
    return Promise.all(workers.map((w) => w.close()));
  };
  try {
    for (const role of startOrder(roles)) {
      for (const name of ROLE_TABLE[role]) {
        const c = modules.get(name)?.contribution(role);
        if (!c) continue;
        const running = await startContribution(app, c);
        workers.push(...running.workers);
        started.push(...running.started);
      }
    }
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
  for (const w of workers) app.metrics.observeJob(w, w.name);
  // A worker alive but no longer fetching (after a failover) is replaced in `workers` itself.
  const watchdog = startWorkerWatchdog({
    workers,
    recreate: rebuildWorker,
    redis: app.redis,
    logger: app.logger,
    isUp: () => app.health.isUp(),
    now: () => Date.now(),
    stuckAfterMs: app.config.worker.stuckAfterMs,
    onReplaced: (fresh) => {
      app.metrics.observeJob(fresh, fresh.name);
      app.metrics.countWorkerReplaced(fresh.name);
    },
  });
  watchdogs.push(watchdog);
  // Only the api role listens on PORT: any other process serves its own metrics (the jobs it ran,
  // the gateway calls it made) on METRICS_PORT, or they could not be scraped at all.
  const metricsPort = app.config.http.metricsPort;
  if (metricsPort !== undefined && !roles.includes('api')) {
    try {
      const server = await startMetricsServer({
        metrics: app.metrics,
        tokens: accessTokensOf(app.config.http),
        onPreviousToken: previousTokenReporter(app.logger, app.metrics),
        port: metricsPort,
        host: app.config.http.host,
      });
      started.push({ stop: () => server.close() });
    } catch (err) {
      await stopAll().catch(() => undefined);
      throw err;
    }
  }
  app.logger.info({ roles }, 'roles started');

  return {
    roles,
    workers,
    ...(http ? { http } : {}),
    async stop(timeoutMs = app.config.shutdownTimeoutMs) {
      const graceful = stopAll();
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
