/**
 * The `api` role: the HTTP server with every route (payments, subscriptions, batches, webhooks
 * in), the dashboard, metrics and probes, listening on PORT. Routes call the capabilities'
 * services; this file only wires them to the ports the composition root built.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.ts';
import type { Clock } from '../kernel/clock.ts';
import type {
  IntentStore,
  PaymentGateway,
  RefundStore,
  RequestHasher,
  Sealer,
  SignInThrottle,
} from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { QueueDispatcher } from '../infra/queues/dispatcher.ts';
import { QUEUES } from '../infra/queues/names.ts';
import { subscriptionServiceDeps, type ServiceApp } from '../subscriptions/service.ts';
import type { BatchDeps } from '../batches/ingest.ts';
import { registerConsole } from '../console/plugin.ts';
import { accessTokensOf, previousTokenReporter } from './auth.ts';
import type { CountSignInFailure } from './sign-in.ts';
import { registerDashboard } from './dashboard.ts';
import { registerMetricsRoute, type Metrics } from './metrics.ts';
import { registerBatchOpsRoutes } from './routes/batch-ops.ts';
import { registerBatchRoutes } from './routes/batches.ts';
import { registerResolveRoute } from './routes/payments-resolve.ts';
import { resolveDeps } from '../payments/resolve.ts';
import { refundDeps } from '../payments/refunds/create.ts';
import { createPaymentDeps } from '../payments/create.ts';
import { registerRefundRoutes } from './routes/payments-refunds.ts';
import { registerSubscriptionRoutes } from './routes/subscriptions.ts';
import { registerTestClockRoutes } from './routes/test-clocks.ts';
import { registerWebhookRoutes } from './routes/webhooks.ts';
import { buildHttpServer, type Readiness } from './server.ts';

/** What the api role needs of the application (the composition root's `App` fits). */
export interface ApiApp extends ServiceApp, BatchDeps {
  config: Config;
  logger: Logger;
  clock: Clock;
  store: IntentStore;
  /** Refunds of charges (docs/refunds.md). */
  refunds: RefundStore;
  /** For an operator's resolution, which asks the gateway first. */
  gateway: PaymentGateway;
  sealer: Sealer;
  hasher: RequestHasher;
  dispatcher: QueueDispatcher;
  metrics: Metrics;
  /** Readiness: Redis answers and no data loss waits to be acknowledged. */
  ready: () => Promise<Readiness>;
  /** Redis reachable right now (no round trip). */
  redisUp?: () => boolean;
  /** Where a request's "Redis unreachable" error is reported (RedisHealth.onError). */
  onRedisError?: (err: Error) => void;
  /** Failed password sign-ins per client address (dashboard and console; http/sign-in.ts). */
  signIns?: SignInThrottle;
}

/** Builds the server and listens on PORT/HOST. */
export async function startApi(app: ApiApp): Promise<FastifyInstance> {
  // One reporter for the API and the console: its once-a-minute log is per process.
  const onPreviousToken = previousTokenReporter(app.logger, app.metrics);
  const countSignInFailure: CountSignInFailure = (realm, failure) =>
    app.metrics.countSignInFailure(realm, failure);
  const http = await buildHttpServer({
    logger: app.logger,
    tokens: accessTokensOf(app.config.http),
    onPreviousToken,
    payments: createPaymentDeps(app),
    ready: app.ready,
    checkResponses: app.config.http.checkResponses,
    ...(app.config.http.trustProxy !== undefined ? { trustProxy: app.config.http.trustProxy } : {}),
    ...(app.redisUp ? { redisUp: app.redisUp } : {}),
    ...(app.onRedisError ? { onRedisError: app.onRedisError } : {}),
    extensions: [
      (server) => registerMetricsRoute(server, app.metrics),
      (server) => registerResolveRoute(server, resolveDeps(app)),
      (server) => registerRefundRoutes(server, refundDeps(app)),
      (server) => registerSubscriptionRoutes(server, subscriptionServiceDeps(app)),
      (server) => registerTestClockRoutes(server, subscriptionServiceDeps(app)),
      (server) =>
        registerDashboard(server, {
          // Every shard's queues: a gateway auth failure pauses `charges` and `payouts` on each.
          queues: Object.values(QUEUES).flatMap((q) => app.dispatcher.queuesOf(q)),
          ...(app.config.http.dashboard
            ? {
                auth: {
                  user: app.config.http.dashboard.user,
                  password: app.config.http.dashboard.password,
                },
              }
            : {}),
          readOnly: app.config.http.dashboardReadOnly,
          authMode: app.config.http.dashboardAuth,
          // registerDashboard binds its own `component`.
          logger: app.logger,
          ...(app.signIns ? { signIns: app.signIns } : {}),
          countSignInFailure,
        }),
      (server) =>
        registerWebhookRoutes(server, {
          store: app.store,
          dispatcher: app.dispatcher,
          logger: app.logger.child({ component: 'webhooks' }),
          secretKey: app.config.sayswitch.secretKey,
          previousSecretKey: app.config.sayswitch.previousSecretKey,
          maxBytes: app.config.http.webhookMaxBytes,
        }),
      (server, guard) => registerBatchRoutes(server, app, guard),
      (server) => registerBatchOpsRoutes(server, app),
      (server) => registerConsole(server, app, { onPreviousToken, countSignInFailure }),
    ],
  });
  await http.listen({ port: app.config.http.port, host: app.config.http.host });
  return http;
}
