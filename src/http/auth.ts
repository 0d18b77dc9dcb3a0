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
 * compared as sha256 digests with `timingSafeEqual` (length-independent, constant time), and every
 * configured token is always compared so the answer's timing does not say which one nearly
 * matched. During a rotation `API_TOKEN_PREVIOUS` / `API_READ_TOKEN_PREVIOUS` grant what their
 * current token grants, as the same caller (docs/operations.md "Rotating secrets").
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
import type { Logger } from '../infra/logger.ts';
import { apiError } from './errors.ts';
import type { Metrics } from './metrics.ts';

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
  /** API_TOKEN_PREVIOUS: also every route, while callers move to API_TOKEN (a rotation). */
  writePrevious?: string;
  /** API_READ_TOKEN_PREVIOUS: also read routes, while callers move to API_READ_TOKEN. */
  readPrevious?: string;
}

/** The HTTP configuration's tokens as the access policy takes them. */
export function accessTokensOf(http: {
  apiToken: string;
  apiReadToken?: string;
  apiTokenPrevious?: string;
  apiReadTokenPrevious?: string;
}): AccessTokens {
  return {
    write: http.apiToken,
    ...(http.apiReadToken !== undefined ? { read: http.apiReadToken } : {}),
    ...(http.apiTokenPrevious !== undefined ? { writePrevious: http.apiTokenPrevious } : {}),
    ...(http.apiReadTokenPrevious !== undefined ? { readPrevious: http.apiReadTokenPrevious } : {}),
  };
}

/** The variable a token comes from. A previous token acts as its current one (the same caller). */
export type TokenName =
  'API_TOKEN' | 'API_READ_TOKEN' | 'API_TOKEN_PREVIOUS' | 'API_READ_TOKEN_PREVIOUS';

/** Called when a request carries a previous token: who still has to move (metrics, a log line). */
export type OnPreviousToken = (
  name: 'API_TOKEN_PREVIOUS' | 'API_READ_TOKEN_PREVIOUS',
  req: FastifyRequest,
) => void;

/** How often one process logs that a previous token is still in use (each token on its own). */
const PREVIOUS_TOKEN_LOG_EVERY_MS = 60_000;

/**
 * Counts every request that carries a previous token (`billing_http_previous_token_requests_total`)
 * and logs it at most once a minute per token: the rotation is over when the count stops growing.
 */
export function previousTokenReporter(
  logger: Logger,
  metrics: Pick<Metrics, 'countPreviousToken'>,
  now: () => number = Date.now,
): OnPreviousToken {
  const log = logger.child({ component: 'http' });
  const lastLogged = new Map<string, number>();
  return (name, req) => {
    metrics.countPreviousToken(name);
    const at = now();
    if (at - (lastLogged.get(name) ?? -Infinity) < PREVIOUS_TOKEN_LOG_EVERY_MS) return;
    lastLogged.set(name, at);
    const current = name === 'API_TOKEN_PREVIOUS' ? 'API_TOKEN' : 'API_READ_TOKEN';
    log.warn(
      { variable: name, ip: req.ip, url: req.url },
      `a request used ${name}: move its caller to ${current}, then unset ${name} (logged once a minute)`,
    );
  };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The configured tokens' digests, computed once, with what each grants. */
type TokenDigests = readonly { name: TokenName; level: 'write' | 'read'; digest: Buffer }[];

function tokenDigests(tokens: AccessTokens): TokenDigests {
  const all: [TokenName, 'write' | 'read', string | undefined][] = [
    ['API_TOKEN', 'write', tokens.write],
    ['API_READ_TOKEN', 'read', tokens.read],
    ['API_TOKEN_PREVIOUS', 'write', tokens.writePrevious],
    ['API_READ_TOKEN_PREVIOUS', 'read', tokens.readPrevious],
  ];
  return all.flatMap(([name, level, token]) =>
    token === undefined ? [] : [{ name, level, digest: digest(token) }],
  );
}

/** The token an `Authorization` header carries; every configured token is always compared. */
function tokenOf(
  header: string | undefined,
  d: TokenDigests,
): { name: TokenName; level: 'write' | 'read' } | undefined {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  const got = digest(m?.[1] ?? '');
  let found: TokenDigests[number] | undefined;
  for (const t of d) if (timingSafeEqual(got, t.digest) && found === undefined) found = t;
  if (m === null || found === undefined) return undefined;
  return { name: found.name, level: found.level };
}

/** The name a caller is recorded as: a previous token is the same caller as its current one. */
const identityOf = (name: TokenName): 'API_TOKEN' | 'API_READ_TOKEN' =>
  name === 'API_TOKEN' || name === 'API_TOKEN_PREVIOUS' ? 'API_TOKEN' : 'API_READ_TOKEN';

/**
 * Which of `tokens` an `Authorization: Bearer …` header carries, compared in constant time: what
 * it grants, who the caller is recorded as, and the token's own name.
 */
export function bearerToken(
  header: string | undefined,
  tokens: AccessTokens,
):
  | { level: 'write' | 'read'; identity: 'API_TOKEN' | 'API_READ_TOKEN'; name: TokenName }
  | undefined {
  const t = tokenOf(header, tokenDigests(tokens));
  return t && { level: t.level, identity: identityOf(t.name), name: t.name };
}

/** What an `Authorization: Bearer …` header grants with `tokens`, compared in constant time. */
export function bearerGrant(
  header: string | undefined,
  tokens: AccessTokens,
): 'write' | 'read' | undefined {
  return tokenOf(header, tokenDigests(tokens))?.level;
}

/** The guard of one access level, as a route `onRequest` hook (before the body is read). */
function guardFor(
  access: 'read' | 'write',
  d: TokenDigests,
  onPrevious: OnPreviousToken | undefined,
): onRequestAsyncHookHandler {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const token = tokenOf(req.headers.authorization, d);
    const grant = token?.level;
    req.tokenName = token && identityOf(token.name);
    if (token?.name === 'API_TOKEN_PREVIOUS' || token?.name === 'API_READ_TOKEN_PREVIOUS')
      onPrevious?.(token.name, req);
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
export function installAccessPolicy(
  app: FastifyInstance,
  tokens: AccessTokens,
  onPrevious?: OnPreviousToken,
): void {
  const table: RouteAccess[] = [];
  routeTables.set(app, table);
  const d = tokenDigests(tokens);
  const guards = { read: guardFor('read', d, onPrevious), write: guardFor('write', d, onPrevious) };
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
