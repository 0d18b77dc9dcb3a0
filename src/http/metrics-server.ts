/**
 * `/metrics` of a process that runs no `api` role (METRICS_PORT, docs/operations.md "Metrics").
 * Job, stall, watchdog and gateway metrics count what one process did, and the workers and the
 * reconciler are where jobs run and the gateway is called: without this listener a deployment
 * with one process per role (docker-compose.yml) never exposes them, and the alerts built on them
 * cannot fire. Same access policy as the api role: a bearer token, `API_READ_TOKEN` or `API_TOKEN`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { installAccessPolicy, type AccessTokens, type OnPreviousToken } from './auth.ts';
import { apiError } from './errors.ts';
import { registerMetricsRoute, type Metrics } from './metrics.ts';
import { installZodCompilers } from './openapi.ts';

export async function startMetricsServer(opts: {
  metrics: Pick<Metrics, 'registry'>;
  tokens: AccessTokens;
  onPreviousToken?: OnPreviousToken;
  port: number;
  host: string;
}): Promise<FastifyInstance> {
  const server = Fastify({ logger: false });
  installAccessPolicy(server, opts.tokens, opts.onPreviousToken);
  installZodCompilers(server);
  server.setNotFoundHandler((_req, reply) =>
    reply.code(404).send(apiError('not_found', 'this port serves GET /metrics only')),
  );
  registerMetricsRoute(server, opts.metrics);
  await server.listen({ port: opts.port, host: opts.host });
  return server;
}
