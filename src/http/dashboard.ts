/**
 * The bull-board dashboard at `/admin/queues`, behind HTTP basic auth. The API's bearer-token
 * policy (auth.ts) classifies these routes as `dashboard` and leaves them to this file.
 *
 * Modes, whatever NODE_ENV is: with DASHBOARD_USER and DASHBOARD_PASSWORD every request needs
 * them (`protected`); without them it is not served (`disabled`: 404 and one warning at start)
 * unless DASHBOARD_AUTH=none says so explicitly (`open`: served without credentials, with a
 * warning, but read-only: an action, which would need credentials, answers 401).
 *
 * Everything bull-board serves (the page, its static assets, its JSON API) is registered inside
 * one encapsulated fastify scope whose `onRequest` hook checks the credentials, so no dashboard
 * route can be reached around the check, and the hook never leaks to the app's other routes.
 *
 * What the dashboard can show: job payloads (intent keys, attempts, amounts, cause; the catalog
 * keeps card tokens and account secrets out of them), return values (`{ status }`/`{ skipped }`),
 * failure messages (BillingError messages carry no secrets), and Redis INFO (version, memory,
 * clients; never the URL or password).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../infra/logger.ts';
import type { SignInThrottle } from '../kernel/ports.ts';
import { apiError } from './errors.ts';
import { isBasicAuth, signInGate, type CountSignInFailure } from './sign-in.ts';

/** Where the dashboard is mounted. */
export const DASHBOARD_PATH = '/admin/queues';

export interface DashboardOptions {
  /** Every queue to show (all of `QUEUES`). */
  queues: readonly Queue[];
  /** DASHBOARD_USER / DASHBOARD_PASSWORD; absent when unset. */
  auth?: { user: string; password: string };
  /** DASHBOARD_READ_ONLY: no retry, clean, pause, promote or remove, in the UI or its API. */
  readOnly: boolean;
  /** DASHBOARD_AUTH: `none` serves it without credentials (read-only); `basic` (default) not. */
  authMode: 'basic' | 'none';
  logger: Logger;
  /** Failed password sign-ins per client address (http/sign-in.ts); absent: not throttled. */
  signIns?: SignInThrottle;
  /** Counts wrong passwords and blocked requests (metrics). */
  countSignInFailure?: CountSignInFailure;
}

/** What {@link registerDashboard} decided, for the caller's startup log and tests. */
export type DashboardMode = 'protected' | 'open' | 'disabled';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Checks an `Authorization: Basic …` header in constant time. Both fields are always compared
 * (no short-circuit), and digests make the comparison length-independent.
 */
export function basicAuthMatches(
  header: string | undefined,
  expected: { user: string; password: string },
): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  const decoded = m ? Buffer.from(m[1] ?? '', 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const user = colon >= 0 ? decoded.slice(0, colon) : '';
  const password = colon >= 0 ? decoded.slice(colon + 1) : '';
  const userOk = timingSafeEqual(digest(user), digest(expected.user));
  const passwordOk = timingSafeEqual(digest(password), digest(expected.password));
  return m !== null && colon >= 0 && userOk && passwordOk;
}

/** The answer to a client address blocked for failed sign-ins (http/sign-in.ts). */
function tooManyFailures(reply: FastifyReply, retryAfterS: number) {
  return reply
    .code(429)
    .header('retry-after', String(retryAfterS))
    .send(
      apiError(
        'too_many_sign_in_failures',
        `too many failed sign-ins from this address: try again in ${retryAfterS} s`,
      ),
    );
}

/** Methods that change nothing: the only ones an open (DASHBOARD_AUTH=none) dashboard serves. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A mutating request must come from the dashboard's own origin. Browsers attach basic-auth
 * credentials to cross-site requests too, so without this another site could make a logged-in
 * operator's browser retry or clean jobs (CSRF). Requests without `Origin` (curl, scripts) pass.
 */
function crossOrigin(req: FastifyRequest): boolean {
  return !SAFE_METHODS.has(req.method) && foreignOrigin(req);
}

/** Whether the request's `Origin` names another host than the one it was sent to (absent: no). */
export function foreignOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

/**
 * One adapter per queue. A name that several queues carry (each shard's `charges`, REDIS_SHARDS)
 * is told apart by its shard's number, `s0-charges`, `s1-charges`…, in the order given: bull-board
 * keys its queues by name, so without it only one shard's queue would show (and could be resumed
 * after a gateway auth failure paused them all).
 */
function dashboardAdapters(queues: readonly Queue[], readOnly: boolean): BullMQAdapter[] {
  const seen = new Map<string, number>();
  const total = new Map<string, number>();
  for (const q of queues) total.set(q.name, (total.get(q.name) ?? 0) + 1);
  return queues.map((q) => {
    const n = seen.get(q.name) ?? 0;
    seen.set(q.name, n + 1);
    const prefix = (total.get(q.name) ?? 0) > 1 ? `s${n}-` : '';
    return new BullMQAdapter(q, { readOnlyMode: readOnly, prefix });
  });
}

/**
 * Mounts bull-board at `/admin/queues` for `queues`. With credentials every dashboard request
 * needs them; without, it answers 404, unless `authMode` is `none` (open, read-only, a warning).
 */
export async function registerDashboard(
  app: FastifyInstance,
  opts: DashboardOptions,
): Promise<DashboardMode> {
  const log = opts.logger.child({ component: 'dashboard' });

  if (!opts.auth && opts.authMode !== 'none') {
    log.warn(
      'dashboard disabled: DASHBOARD_USER and DASHBOARD_PASSWORD are not set ' +
        '(set them, or DASHBOARD_AUTH=none to serve it without authentication)',
    );
    const refuse = async (_req: FastifyRequest, reply: FastifyReply) =>
      reply
        .code(404)
        .send(
          apiError(
            'dashboard_disabled',
            'the dashboard is disabled: set DASHBOARD_USER and DASHBOARD_PASSWORD',
          ),
        );
    app.all(DASHBOARD_PATH, refuse);
    app.all(`${DASHBOARD_PATH}/*`, refuse);
    return 'disabled';
  }
  // Open (DASHBOARD_AUTH=none) means looking without credentials, never acting without them.
  const readOnly = opts.readOnly || !opts.auth;
  if (!opts.auth) {
    log.warn(
      'dashboard open WITHOUT authentication (DASHBOARD_AUTH=none), read-only: ' +
        'set DASHBOARD_USER and DASHBOARD_PASSWORD to protect it and allow actions',
    );
  }

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: dashboardAdapters(opts.queues, readOnly),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'sayswitch-billing' } },
  });

  const auth = opts.auth;
  const gate = signInGate(opts.signIns, log, 'dashboard', opts.countSignInFailure);
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      if (!auth && !SAFE_METHODS.has(req.method)) {
        return reply
          .code(401)
          .send(
            apiError(
              'unauthorized',
              'dashboard actions need credentials: set DASHBOARD_USER and DASHBOARD_PASSWORD',
            ),
          );
      }
      const header = req.headers.authorization;
      // A password is counted before it is checked; over the limit it is not checked at all
      // (http/sign-in.ts).
      const password = auth !== undefined && isBasicAuth(header);
      const blocked = password ? await gate.attempt(req) : 0;
      if (blocked > 0) return tooManyFailures(reply, blocked);
      if (auth && !basicAuthMatches(header, auth)) {
        if (password) {
          const wait = await gate.failed(req);
          if (wait > 0) return tooManyFailures(reply, wait);
        } else if (header !== undefined) {
          log.warn({ ip: req.ip, url: req.url }, 'dashboard: wrong credentials');
        }
        return reply
          .code(401)
          .header('www-authenticate', 'Basic realm="billing dashboard", charset="UTF-8"')
          .send(apiError('unauthorized', 'dashboard credentials are required'));
      }
      if (password) await gate.succeeded(req);
      if (crossOrigin(req)) {
        return reply
          .code(403)
          .send(apiError('forbidden', 'cross-origin requests to the dashboard are refused'));
      }
    });
    scope.addHook('onSend', async (_req, reply, payload) => {
      // Job lists are operator data: keep them out of shared caches and out of frames.
      reply.header('cache-control', 'no-store');
      reply.header('x-frame-options', 'DENY');
      return payload;
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
  log.info({ path: DASHBOARD_PATH, readOnly, auth: Boolean(auth) }, 'dashboard mounted');
  return auth ? 'protected' : 'open';
}
