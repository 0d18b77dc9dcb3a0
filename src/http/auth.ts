/**
 * The HTTP access policy: the one place that says who may call which route.
 *
 * Every route is classified when it is registered (a fastify `onRoute` hook installed before any
 * route), so a new route cannot forget its guard:
 *
 * | access      | who                                                   | routes                                  |
 * | ----------- | ----------------------------------------------------- | --------------------------------------- |
 * | `public`    | anyone                                                | `GET /healthz`, `GET /readyz` (probes), |
 * |             |                                                       | `GET /openapi.json`, `/docs` (no data)  |
 * | `webhook`   | Sayswitch: the route checks its HMAC `payloadSignature` | `POST /webhooks/sayswitch`            |
 * | `dashboard` | HTTP basic auth, checked by the dashboard's own scope | everything under `/admin/queues`        |
 * | `console-read` / `console-write` | dashboard credentials or a token, checked by the console's scope (console/access.ts) | GET/HEAD / other methods under `/console` |
 * | `read`      | `API_READ_TOKEN` or `API_TOKEN`                       | every other GET/HEAD (default)          |
 * | `write`     | `API_TOKEN` only; the read token gets 403             | every other method (default)            |
 *
 * Only the exemptions are listed ({@link EXEMPT}); everything else defaults by method. Tokens are
 * compared as sha256 digests with `timingSafeEqual` (length-independent, constant time), and both
 * tokens are always compared so the answer's timing does not say which one nearly matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RouteOptions,
  onRequestAsyncHookHandler,
} from 'fastify';
import { CONSOLE_PATH } from '../console/paths.ts';
import { DASHBOARD_PATH } from './dashboard.ts';
import { apiError } from './errors.ts';

export type Access =
  'public' | 'read' | 'write' | 'webhook' | 'dashboard' | 'console-read' | 'console-write';

/** Where the OpenAPI document and its docs page are served (http/openapi.ts). */
export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';

/** The routes that do not take a bearer token, by `METHOD path`. Nothing else is exempt. */
const EXEMPT: Readonly<Record<string, Access>> = {
  // What the API accepts, never anything stored: public, so a browser can open the docs page.
  [`GET ${OPENAPI_PATH}`]: 'public',
  [`HEAD ${OPENAPI_PATH}`]: 'public',
  'GET /healthz': 'public',
  'HEAD /healthz': 'public',
  'GET /readyz': 'public',
  'HEAD /readyz': 'public',
  'POST /webhooks/sayswitch': 'webhook',
};

const READ_METHODS = new Set(['GET', 'HEAD']);

/** The access of one method and path: an exemption, the dashboard, else read (GET) or write. */
export function classifyRoute(method: string, url: string): Access {
  const m = method.toUpperCase();
  const exempt = EXEMPT[`${m} ${url}`];
  if (exempt) return exempt;
  if (url === DASHBOARD_PATH || url.startsWith(`${DASHBOARD_PATH}/`)) return 'dashboard';
  if (url === CONSOLE_PATH || url.startsWith(`${CONSOLE_PATH}/`))
    return READ_METHODS.has(m) ? 'console-read' : 'console-write';
  // The docs page and its static assets (GET and HEAD only; anything else there is write).
  if ((url === DOCS_PATH || url.startsWith(`${DOCS_PATH}/`)) && READ_METHODS.has(m)) {
    return 'public';
  }
  return READ_METHODS.has(m) ? 'read' : 'write';
}

/** One registered route and what the policy made of it (for tests and the startup log). */
export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
}

export interface AccessTokens {
  /** API_TOKEN: every route. */
  write: string;
  /** API_READ_TOKEN: read routes only; absent when unset. */
  read?: string;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The tokens' digests, computed once. */
interface TokenDigests {
  write: Buffer;
  read?: Buffer;
}

function tokenDigests(tokens: AccessTokens): TokenDigests {
  return {
    write: digest(tokens.write),
    ...(tokens.read !== undefined ? { read: digest(tokens.read) } : {}),
  };
}

/** Which token an `Authorization` header carries; both are always compared. */
function grantOf(header: string | undefined, d: TokenDigests): 'write' | 'read' | undefined {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  const got = digest(m?.[1] ?? '');
  const isWrite = timingSafeEqual(got, d.write);
  const isRead = d.read !== undefined && timingSafeEqual(got, d.read);
  if (m === null) return undefined;
  return isWrite ? 'write' : isRead ? 'read' : undefined;
}

/** Which of `tokens` an `Authorization: Bearer …` header carries, compared in constant time. */
export function bearerGrant(
  header: string | undefined,
  tokens: AccessTokens,
): 'write' | 'read' | undefined {
  return grantOf(header, tokenDigests(tokens));
}

/** The guard of one access level, as a route `onRequest` hook (before the body is read). */
function guardFor(access: 'read' | 'write', d: TokenDigests): onRequestAsyncHookHandler {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const grant = grantOf(req.headers.authorization, d);
    req.tokenName =
      grant === 'write' ? 'API_TOKEN' : grant === 'read' ? 'API_READ_TOKEN' : undefined;
    if (grant === undefined) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="sayswitch-billing"')
        .send(apiError('unauthorized', 'a valid Authorization: Bearer token is required'));
    }
    if (access === 'write' && grant !== 'write') {
      return reply
        .code(403)
        .send(apiError('forbidden', 'the read-only token cannot change anything: use API_TOKEN'));
    }
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the token the request carried (`API_TOKEN`, `API_READ_TOKEN`): who asked. */
    tokenName?: 'API_TOKEN' | 'API_READ_TOKEN';
  }
}

const routeTables = new WeakMap<FastifyInstance, RouteAccess[]>();

/**
 * Installs the policy on `app`: call it before registering any route (routes registered earlier
 * would escape it). Prepends the read or write guard to each route's `onRequest` hooks.
 */
export function installAccessPolicy(app: FastifyInstance, tokens: AccessTokens): void {
  const table: RouteAccess[] = [];
  routeTables.set(app, table);
  const d = tokenDigests(tokens);
  const guards = { read: guardFor('read', d), write: guardFor('write', d) };
  app.decorateRequest('tokenName', undefined);
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const accesses = new Set(methods.map((m) => classifyRoute(m, route.url)));
    for (const m of methods)
      table.push({ method: m, url: route.url, access: classifyRoute(m, route.url) });
    // One route with several methods takes the strictest of their classifications.
    const guard = accesses.has('write')
      ? guards.write
      : accesses.has('read')
        ? guards.read
        : undefined;
    if (!guard) return;
    const existing = route.onRequest;
    route.onRequest = [guard, ...(existing === undefined ? [] : [existing].flat())];
  });
}

/** Every route registered on `app` since {@link installAccessPolicy}, with its access. */
export function accessTable(app: FastifyInstance): readonly RouteAccess[] {
  return routeTables.get(app) ?? [];
}
