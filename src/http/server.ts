/**
 * The `api` role's HTTP server (fastify). Routes are registered from feature-facing services
 * passed in; this file owns only the server, the error format and the guards.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type preHandlerAsyncHookHandler,
} from 'fastify';
import type { Logger } from '../infra/logger.ts';
import { requireBearer } from './auth.ts';
import { apiError } from './errors.ts';
import { registerPaymentRoutes } from './routes/payments.ts';
import type { CreateDeps } from '../payments/create.ts';

export interface HttpDeps {
  logger: Logger;
  apiToken: string;
  payments: CreateDeps;
  /** Readiness: resolves true when Redis answers and queues are reachable. */
  ready: () => Promise<boolean>;
  /** Extra routes registered by other features (webhooks, batches, dashboard, metrics). */
  extensions?: ((
    app: FastifyInstance,
    guard: preHandlerAsyncHookHandler,
  ) => void | Promise<void>)[];
}

export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const httpLogger: FastifyBaseLogger = deps.logger.child({ component: 'http' });
  const app: FastifyInstance = Fastify({
    loggerInstance: httpLogger,
    // One log line per meaningful event: our routes log what matters, not every request.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const guard = requireBearer(deps.apiToken);

  app.setErrorHandler(
    (err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      const status = err.statusCode ?? 500;
      if (status >= 500)
        req.log.error({ err: { message: err.message, code: err.code } }, 'request failed');
      return reply
        .code(status)
        .send(
          apiError(
            status === 413
              ? 'payload_too_large'
              : status >= 500
                ? 'internal'
                : (err.code ?? 'bad_request'),
            status >= 500 ? 'internal error' : err.message,
          ),
        );
    },
  );
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(apiError('not_found', `no route ${req.method} ${req.url}`)),
  );

  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ok = await deps.ready().catch(() => false);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready' });
  });
  registerPaymentRoutes(app, deps.payments, guard);
  for (const ext of deps.extensions ?? []) await ext(app, guard);
  return app;
}
