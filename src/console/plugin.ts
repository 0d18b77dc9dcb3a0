/**
 * The operator console at `/console` (docs/console.md): server-rendered pages over the same
 * capability services the HTTP API calls (payments list/view/resolve, batch status/results/
 * cancel/retry/approve, subscription list/show/actions). Every page reads without JavaScript;
 * every action is an HTML form POSTed here, which calls the service and redirects back
 * (POST-redirect-GET) with a flash message.
 *
 * Registered from http/api.ts in one encapsulated scope: its credential check (access.ts), form
 * parser, error page and security headers apply to the console's routes only. Routes are hidden
 * from the OpenAPI document (`schema.hide`): they answer HTML to people, not JSON to programs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UnreadableRecordError } from '../kernel/errors.ts';
import { accessTokensOf, classifyRoute, type OnPreviousToken } from '../http/auth.ts';
import { isBasicAuth, signInGate, type CountSignInFailure } from '../http/sign-in.ts';
import { csrfTokens, crossSite, grantOf, type ConsoleCredentials, type Grant } from './access.ts';
import { CONSOLE_CSS, CONSOLE_JS } from './assets.ts';
import { consoleDeps, type ConsoleApp } from './deps.ts';
import { HIDDEN, type ConsoleKit } from './kit.ts';
import { html, type Html } from './html.ts';
import type { Flash } from './layout.ts';
import { CONSOLE_PATH } from './paths.ts';
import { registerPaymentPages } from './payments-pages.ts';
import { registerInboxPages } from './inbox-pages.ts';
import { registerBatchPages } from './batches-pages.ts';
import { registerSubscriptionPages } from './subscriptions-pages.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The console operator's grant (set by the console's credential check). */
    consoleGrant?: Grant;
  }
}

const FLASH_COOKIE = 'console_flash';
const FORM_LIMIT_BYTES = 64 * 1024;

function readFlash(req: FastifyRequest): Flash | undefined {
  const m = new RegExp(`(?:^|;\\s*)${FLASH_COOKIE}=([A-Za-z0-9_-]+)`).exec(
    req.headers.cookie ?? '',
  );
  if (!m?.[1]) return undefined;
  try {
    const f = JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8')) as Partial<Flash>;
    if ((f.kind === 'ok' || f.kind === 'error') && typeof f.text === 'string')
      return { kind: f.kind, text: f.text.slice(0, 2_000) };
  } catch {
    /* a cookie this console did not write: ignored */
  }
  return undefined;
}

/** The flash cookie; `Secure` when the console is reached over https (directly or, with TRUST_PROXY, through a proxy). */
const cookie = (value: string, maxAge: number, secure: boolean) =>
  `${FLASH_COOKIE}=${value}; Path=${CONSOLE_PATH}; HttpOnly; SameSite=Strict; Max-Age=${maxAge}` +
  (secure ? '; Secure' : '');

function errorPage(status: number, title: string, text: string): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>${title}</title>
        <link rel="stylesheet" href="${CONSOLE_PATH}/assets/console.css" />
      </head>
      <body>
        <main>
          <h1>${status} · ${title}</h1>
          <p>${text}</p>
          <p><a href="${CONSOLE_PATH}/payments">Console home</a></p>
        </main>
      </body>
    </html>`;
}

/** Mounts the console on `server` for the application `app` (see http/api.ts). */
export async function registerConsole(
  server: FastifyInstance,
  app: ConsoleApp,
  opts: { onPreviousToken?: OnPreviousToken; countSignInFailure?: CountSignInFailure } = {},
): Promise<void> {
  const deps = consoleDeps(app);
  const http = app.config.http;
  const creds: ConsoleCredentials = {
    ...(http.dashboard ? { dashboard: http.dashboard } : {}),
    dashboardReadOnly: http.dashboardReadOnly,
    tokens: accessTokensOf(http),
    ...(opts.onPreviousToken ? { onPreviousToken: opts.onPreviousToken } : {}),
  };
  const csrf = csrfTokens(app.config.dataEncryptionKey, app.config.previousDataEncryptionKey);
  const log = app.logger.child({ component: 'console' });
  const gate = signInGate(app.signIns, log, 'console', opts.countSignInFailure);
  const tooManyFailures = (reply: FastifyReply, retryAfterS: number) =>
    kit.send(
      reply.header('retry-after', String(retryAfterS)),
      errorPage(
        429,
        'Too many failed sign-ins',
        `This address gave wrong credentials too often. Try again in ${retryAfterS} seconds.`,
      ),
      429,
    );

  const kit: ConsoleKit = {
    deps,
    ctx(req, reply) {
      const grant = req.consoleGrant;
      const flash = readFlash(req);
      if (flash) void reply.header('set-cookie', cookie('', 0, req.protocol === 'https'));
      return {
        who: grant?.who ?? '',
        csrf: grant ? csrf.tokenFor(grant.who) : '',
        canWrite: grant?.level === 'write',
        ...(flash ? { flash } : {}),
      };
    },
    send(reply, body, status = 200) {
      return reply.code(status).type('text/html; charset=utf-8').send(body.value);
    },
    done(reply, location, flash) {
      const value = Buffer.from(JSON.stringify(flash)).toString('base64url');
      return reply
        .header('set-cookie', cookie(value, 60, reply.request.protocol === 'https'))
        .redirect(location, 303);
    },
    who: (req) => req.consoleGrant?.who ?? 'unknown',
  };

  await server.register(
    (scope, _opts, registered) => {
      scope.decorateRequest('consoleGrant', undefined);
      scope.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: FORM_LIMIT_BYTES },
        (_req, body, done) => {
          done(null, Object.fromEntries(new URLSearchParams(body as string)));
        },
      );

      scope.addHook('onRequest', async (req, reply) => {
        // A password (basic auth) is counted before it is checked; over the limit it is not
        // checked at all (http/sign-in.ts).
        const password = creds.dashboard !== undefined && isBasicAuth(req.headers.authorization);
        const blocked = password ? await gate.attempt(req) : 0;
        if (blocked > 0) return tooManyFailures(reply, blocked);
        const grant = grantOf(req, creds);
        if (!grant) {
          if (password) {
            const wait = await gate.failed(req);
            if (wait > 0) return tooManyFailures(reply, wait);
          } else if (req.headers.authorization !== undefined) {
            log.warn({ ip: req.ip, url: req.url }, 'console: wrong credentials');
          }
          const challenge = creds.dashboard
            ? 'Basic realm="billing console", charset="UTF-8"'
            : 'Bearer realm="sayswitch-billing"';
          return kit.send(
            reply.header('www-authenticate', challenge),
            errorPage(
              401,
              'Sign-in required',
              creds.dashboard
                ? 'The console takes the dashboard credentials (DASHBOARD_USER / DASHBOARD_PASSWORD) or a bearer token.'
                : 'The console takes a bearer token (API_TOKEN or API_READ_TOKEN); set DASHBOARD_USER and DASHBOARD_PASSWORD to sign in from a browser.',
            ),
            401,
          );
        }
        if (password) await gate.succeeded(req);
        req.consoleGrant = grant;
        const access = classifyRoute(req.method, req.routeOptions.url ?? req.url);
        if (access === 'console-write') {
          if (grant.level !== 'write') {
            return kit.send(
              reply,
              errorPage(403, 'Read-only', `${grant.who} may read the console but not act in it.`),
              403,
            );
          }
          if (grant.via === 'basic' && crossSite(req)) {
            log.warn({ ip: req.ip, url: req.url }, 'console: cross-site action refused');
            return kit.send(
              reply,
              errorPage(403, 'Refused', 'Actions must come from the console itself.'),
              403,
            );
          }
        }
      });
      // After the body is parsed: a basic-auth action must carry the form's CSRF token.
      scope.addHook('preHandler', async (req, reply) => {
        const grant = req.consoleGrant;
        if (!grant || grant.via !== 'basic') return;
        if (classifyRoute(req.method, req.routeOptions.url ?? req.url) !== 'console-write') return;
        const token = (req.body as Record<string, unknown> | undefined)?._csrf;
        if (!csrf.matches(grant.who, token)) {
          log.warn({ ip: req.ip, url: req.url }, 'console: action without a valid CSRF token');
          return kit.send(
            reply,
            errorPage(
              403,
              'Refused',
              'The form is stale or was not made by the console: reload the page and try again.',
            ),
            403,
          );
        }
      });
      scope.addHook('onSend', async (_req, reply, payload) => {
        // Operator data: no caches, no frames, no third-party anything.
        reply.header('cache-control', 'no-store');
        reply.header('x-frame-options', 'DENY');
        reply.header('x-content-type-options', 'nosniff');
        // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on its own forms.
        reply.header('referrer-policy', 'same-origin');
        reply.header(
          'content-security-policy',
          "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        );
        return payload;
      });
      scope.setErrorHandler((err: { statusCode?: number; message: string }, req, reply) => {
        const status = err.statusCode ?? 500;
        if (status >= 500)
          log.error({ err: { message: err.message }, url: req.url }, 'console page failed');
        // A stored record this version cannot read: say which and what is wrong (no content).
        const unreadable = err instanceof UnreadableRecordError ? err.message : undefined;
        return kit.send(
          reply,
          errorPage(
            status,
            status >= 500 ? 'Error' : 'Bad request',
            unreadable ?? (status >= 500 ? 'The page failed; see the logs.' : err.message),
          ),
          status,
        );
      });

      scope.get('/', HIDDEN, (_req, reply) => reply.redirect(`${CONSOLE_PATH}/payments`, 302));
      scope.get('/assets/console.css', HIDDEN, (_req, reply) =>
        reply.type('text/css; charset=utf-8').send(CONSOLE_CSS),
      );
      scope.get('/assets/console.js', HIDDEN, (_req, reply) =>
        reply.type('text/javascript; charset=utf-8').send(CONSOLE_JS),
      );
      registerPaymentPages(scope, kit);
      registerInboxPages(scope, kit);
      registerBatchPages(scope, kit);
      registerSubscriptionPages(scope, kit);
      registered();
    },
    { prefix: CONSOLE_PATH },
  );
  log.info({ path: CONSOLE_PATH, basic: Boolean(creds.dashboard) }, 'console mounted');
}
