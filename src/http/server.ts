/**
 * The `api` role's HTTP server (fastify). Routes are registered from feature-facing services
 * passed in; this file owns only the server, the error format and the probes. Who may call what
 * is the access policy of auth.ts, installed before any route so that no route escapes it.
 */
import { STATUS_CODES } from 'node:http';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type preHandlerAsyncHookHandler,
} from 'fastify';
import { z } from 'zod';
import type { Logger } from '../infra/logger.ts';
import {
  isRedisConnectionError,
  redisWriteRefusal,
  WRITE_REFUSALS,
} from '../infra/redis/health.ts';
import { UnreadableRecordError, type RecordKind } from '../kernel/errors.ts';
import {
  DOCS_PATH,
  installAccessPolicy,
  OPENAPI_PATH,
  type AccessTokens,
  type OnPreviousToken,
} from './auth.ts';
import {
  apiError,
  connectionError,
  frameworkError,
  isValidationFailure,
  validationFailure,
} from './errors.ts';
import { installOpenApi } from './openapi.ts';
import { registerPaymentRoutes } from './routes/payments.ts';
import type { CreateDeps } from '../payments/create.ts';

export interface HttpDeps {
  logger: Logger;
  /** API_TOKEN (every route), API_READ_TOKEN (GET routes) and their previous ones (auth.ts). */
  tokens: AccessTokens;
  /** A request carried a previous token (a rotation not finished): counted and logged. */
  onPreviousToken?: OnPreviousToken;
  payments: CreateDeps;
  /** Readiness: Redis answers (within a second) and no data loss waits to be acknowledged. */
  ready: () => Promise<Readiness>;
  /**
   * Whether Redis is reachable right now (the connections' state, no round trip). While it is
   * not, requests that need Redis answer 503 at once instead of waiting for a failed command.
   */
  redisUp?: () => boolean;
  /**
   * A request's Redis command failed as unreachable (infra/redis/health.ts `onError`): a Redis
   * that hangs closes no connection, so only a timed-out command can start the outage, after which
   * `redisUp` is false and requests answer 503 at once. Also told when Redis refused a write for
   * want of memory (logged there once a minute).
   */
  onRedisError?: (err: Error) => void;
  /** HTTP_CHECK_RESPONSES: answers checked against their documented schemas (openapi.ts). */
  checkResponses?: boolean;
  /**
   * TRUST_PROXY: the proxies (addresses, CIDR ranges) whose `X-Forwarded-For`/`-Proto` fastify
   * believes; absent: none, `req.ip` is the socket's peer.
   */
  trustProxy?: readonly string[];
  /**
   * Extra routes registered by other features (webhooks, batches, dashboard, metrics). The access
   * policy guards them all; `guard` does nothing more and remains for routes that still pass it.
   */
  extensions?: ((
    app: FastifyInstance,
    guard: preHandlerAsyncHookHandler,
  ) => void | Promise<void>)[];
}

/** What `/readyz` reports. */
export type Readiness = { ok: true } | { ok: false; reason: string };

/** Routes that answer without Redis, or that report on it themselves. */
const WITHOUT_REDIS = new Set(['/healthz', '/readyz', '/metrics', OPENAPI_PATH]);
const withoutRedis = (url: string) =>
  WITHOUT_REDIS.has(url) || url === DOCS_PATH || url.startsWith(`${DOCS_PATH}/`);

/** The answer to a request that needs Redis while it is unreachable (docs/operations.md). */
const REDIS_UNAVAILABLE = apiError(
  'redis_unavailable',
  'Redis is unreachable: retry shortly (retrying a POST with the same key is always safe)',
);
const RETRY_AFTER_S = '5';
/** The log field that names a record of each kind, as the loops that skip one name it. */
const RECORD_ID_FIELD: Record<RecordKind, string> = {
  intent: 'key',
  subscription: 'subscriptionId',
  batch: 'batchId',
  'held row': 'row',
  'test clock': 'clock',
};
/** The answer to a request whose write Redis refused (nothing of it was written). */
const refusedWrite = (code: string, words: string) =>
  apiError(code, `${words}. Retry later (retrying a POST with the same key is always safe)`);

export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const httpLogger: FastifyBaseLogger = deps.logger.child({ component: 'http' });
  const app: FastifyInstance = Fastify({
    loggerInstance: httpLogger,
    ...(deps.trustProxy !== undefined ? { trustProxy: [...deps.trustProxy] } : {}),
    // One log line per meaningful event: our routes log what matters, not every request.
    logController: new LogController({ disableRequestLogging: true }),
    // Routing errors (a malformed URL, an over-long path parameter) in the one error shape.
    frameworkErrors: (err, _req, reply) => {
      void (reply as unknown as FastifyReply)
        .code(err.statusCode ?? 400)
        .send(frameworkError(err.code) ?? apiError('bad_request', 'the request is malformed'));
    },
    // What node's parser refuses before any route (a URL over 16 KiB): the same shape again.
    clientErrorHandler: (err, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const { status, body } = connectionError(err.code);
      const text = JSON.stringify(body);
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
        );
      }
      socket.destroy(err);
    },
  });
  // The API reads JSON (and CSV where a route says so): a text/plain body is refused as 415,
  // like every other media type no route reads, not handed to the schemas as a string (422).
  app.removeContentTypeParser('text/plain');
  installAccessPolicy(app, deps.tokens, deps.onPreviousToken);
  // Zod schemas for every route and the document of them, before any route is registered.
  await installOpenApi(app, { checkResponses: deps.checkResponses === true });
  /** The policy already decided before any preHandler runs. */
  const guard: preHandlerAsyncHookHandler = async () => {};

  const redisUp = deps.redisUp;
  if (redisUp) {
    app.addHook('onRequest', async (req, reply) => {
      if (redisUp() || withoutRedis(req.routeOptions.url ?? '')) return;
      await reply.code(503).header('retry-after', RETRY_AFTER_S).send(REDIS_UNAVAILABLE);
    });
  }

  app.setErrorHandler(
    (err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      if (isRedisConnectionError(err)) {
        deps.onRedisError?.(err as Error);
        return reply.code(503).header('retry-after', RETRY_AFTER_S).send(REDIS_UNAVAILABLE);
      }
      const refusal = redisWriteRefusal(err);
      if (refusal) {
        deps.onRedisError?.(err as Error);
        const { code, words } = WRITE_REFUSALS[refusal];
        return reply.code(503).header('retry-after', RETRY_AFTER_S).send(refusedWrite(code, words));
      }
      if (err instanceof UnreadableRecordError) {
        // A stored record this version cannot read: which one and what is wrong, never its content.
        req.log.error(
          { [RECORD_ID_FIELD[err.kind]]: err.id, why: err.why },
          `${err.kind} cannot be read by this version`,
        );
        return reply.code(500).send(apiError('record_unreadable', err.message));
      }
      if (isValidationFailure(err)) {
        // A query, path or body the route's zod schemas refused: named field by field.
        const answer = validationFailure(err, req.routeOptions.config.invalid);
        return reply.code(answer.status).send(answer.body);
      }
      const status = err.statusCode ?? 500;
      const framework = status < 500 ? frameworkError(err.code) : undefined;
      if (framework) return reply.code(status).send(framework);
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

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process answers',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    () => ({ status: 'ok' }),
  );
  const readiness = z.object({
    status: z.enum(['ready', 'not_ready']),
    reason: z
      .string()
      .optional()
      .describe(
        'why not ready: redis_unavailable, redis_out_of_memory, redis_cannot_persist, redis_data_lost',
      ),
  });
  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: Redis answers and no data loss waits to be acknowledged',
        response: { 200: readiness, 503: readiness },
      },
    },
    async (_req, reply) => {
      const r = await deps
        .ready()
        .catch((): Readiness => ({ ok: false, reason: 'redis_unavailable' }));
      return r.ok
        ? reply.code(200).send({ status: 'ready' })
        : reply.code(503).send({ status: 'not_ready', reason: r.reason });
    },
  );
  registerPaymentRoutes(app, deps.payments);
  for (const ext of deps.extensions ?? []) await ext(app, guard);
  return app;
}
