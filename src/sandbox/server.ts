/**
 * The sandbox's HTTP transport on fastify: routes, Bearer auth, payload encryption, latency and
 * held responses. Endpoint logic is in core.ts; the 3-D Secure pages are in three-ds-routes.ts. The
 * hot path does no logging (fastify's logger is off) so the sandbox is never what a benchmark
 * measures.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  decryptJson,
  encryptJson,
  type PayloadCryptoConfig,
} from '../infra/gateway/sayswitch/crypto.ts';
import type { ApiResult, SandboxCore } from './core.ts';
import type { LedgerStore } from './ledger.ts';
import { originOf, threeDsRoutes } from './three-ds-routes.ts';
import type { TimerRegistry } from './timers.ts';

export interface SandboxAppDeps {
  core: SandboxCore;
  ledger: LedgerStore;
  timers: TimerRegistry;
  secretKey: string;
  crypto: PayloadCryptoConfig | undefined;
  latencyMs: number;
}

/** Where the sandbox's own (never encrypted, unauthenticated) endpoints live. */
export const SANDBOX_PREFIX = '/__sandbox';

const UNAUTHORIZED: ApiResult = { status: 401, body: { success: false, message: 'Unauthorized' } };
const BAD_CIPHERTEXT: ApiResult = {
  status: 400,
  body: { success: false, message: 'Invalid encrypted payload' },
};

/** Framework errors (bad JSON, wrong content type, body too large) get fixed messages: parser
 * messages can quote the body, and the body may hold a card token. */
function frameworkErrorMessage(status: number): string {
  if (status === 413) return 'Payload too large';
  if (status === 415) return 'Unsupported media type';
  if (status >= 500) return 'Internal server error';
  return 'Bad request';
}

type RefParams = { reference: string };
type CurrencyParams = { currency: string };

/** Builds (does not start) the fastify app. */
export function buildSandboxApp(deps: SandboxAppDeps): FastifyInstance {
  const { core, ledger, timers, crypto, latencyMs } = deps;
  const expectedAuth = Buffer.from(`Bearer ${deps.secretKey}`, 'utf8');

  const app = Fastify({
    logger: false,
    // Destroy keep-alive sockets and held 55 responses on close instead of waiting for them.
    forceCloseConnections: true,
  });

  function authorized(req: FastifyRequest): boolean {
    const header = req.headers.authorization;
    if (typeof header !== 'string') return false;
    const given = Buffer.from(header, 'utf8');
    return given.length === expectedAuth.length && timingSafeEqual(given, expectedAuth);
  }

  function send(reply: FastifyReply, result: ApiResult): FastifyReply {
    reply.code(result.status);
    if (result.headers) reply.headers(result.headers);
    return reply.send(crypto ? { data: encryptJson(result.body, crypto) } : result.body);
  }

  /** The socket goes away with the server: nothing is sent, fastify is told the reply is handled. */
  function abandon(reply: FastifyReply): FastifyReply {
    reply.raw.destroy();
    return reply;
  }

  /** Decrypts `{ data }` when encryption is on; undefined when it does not decrypt. */
  function payloadOf(body: unknown): { value: unknown } | undefined {
    if (!crypto) return { value: body };
    const data = (body as { data?: unknown } | null | undefined)?.data;
    if (typeof data !== 'string') return undefined;
    try {
      return { value: decryptJson(data, crypto) };
    } catch {
      return undefined;
    }
  }

  /**
   * The guard every API route goes through: latency, auth, decryption, then the handler, then a
   * hold if the outcome asks for one (55).
   */
  async function handle(
    req: FastifyRequest,
    reply: FastifyReply,
    run: (payload: unknown, origin: string) => ApiResult,
  ): Promise<FastifyReply> {
    if (latencyMs > 0 && !(await timers.wait(latencyMs))) return abandon(reply);
    if (!authorized(req)) return send(reply, UNAUTHORIZED);
    let payload: unknown;
    if (req.method === 'POST') {
      const decoded = payloadOf(req.body);
      if (!decoded) return send(reply, BAD_CIPHERTEXT);
      payload = decoded.value;
    }
    const result = run(payload, originOf(req));
    if (result.holdMs !== undefined && !(await timers.wait(result.holdMs))) return abandon(reply);
    return send(reply, result);
  }

  app.setErrorHandler((err: { statusCode?: number }, req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
    const body = { success: false, message: frameworkErrorMessage(status) };
    if (req.url.startsWith(SANDBOX_PREFIX)) return reply.code(status).send(body);
    return send(reply, { status, body });
  });
  app.setNotFoundHandler((req, reply) => {
    const body = { success: false, message: 'Not found' };
    if (req.url.startsWith(SANDBOX_PREFIX)) return reply.code(404).send(body);
    return send(reply, { status: 404, body });
  });

  app.post('/api/s2s/transaction/initialize', (req, reply) =>
    handle(req, reply, (p, origin) => core.charge(p, origin)),
  );
  app.post('/api/v1/bank_transfer', (req, reply) =>
    handle(req, reply, (p, origin) => core.payout(p, origin)),
  );
  for (const path of [
    '/api/v1/transaction/verify/:reference',
    '/api/s2s/v1/transaction/verify/:reference',
  ]) {
    app.get<{ Params: RefParams }>(path, (req, reply) =>
      handle(req, reply, () => core.verifyCharge(req.params.reference)),
    );
  }
  app.get<{ Params: RefParams }>('/api/v1/payout/:reference', (req, reply) =>
    handle(req, reply, () => core.lookupPayout(req.params.reference)),
  );
  app.get('/api/v1/bank_list', (req, reply) => handle(req, reply, () => core.banks('NGN')));
  app.get<{ Params: CurrencyParams }>('/api/v1/bank_list/:currency', (req, reply) =>
    handle(req, reply, () => core.banks(req.params.currency)),
  );
  app.post('/api/v1/account_name_verify', (req, reply) =>
    handle(req, reply, (p) => core.accountName(p)),
  );
  app.get<{ Params: CurrencyParams }>('/api/v1/wallet_balance/:currency', (req, reply) =>
    handle(req, reply, () => core.wallet(req.params.currency)),
  );

  app.post('/api/v1/refund', (req, reply) => handle(req, reply, (p) => core.refunds.refund(p)));
  app.get<{ Querystring: { reference?: string } }>('/api/v1/refund', (req, reply) =>
    handle(req, reply, () => core.refunds.list(req.query.reference)),
  );
  app.get<{ Params: RefParams }>('/api/v1/refund/status/:reference', (req, reply) =>
    handle(req, reply, () => core.refunds.status(req.params.reference)),
  );

  app.get(`${SANDBOX_PREFIX}/ledger`, (_req, reply) => reply.send(ledger.snapshot()));
  void app.register(threeDsRoutes(core));

  return app;
}
