/**
 * Who may use the console, and the check of its forms (docs/console.md "Access"):
 *
 * - Credentials: the dashboard's (DASHBOARD_USER / DASHBOARD_PASSWORD, HTTP basic auth; the
 *   operator is `console:<user>`, read-only with DASHBOARD_READ_ONLY), or a bearer token
 *   (API_TOKEN: read and act, as `API_TOKEN`; API_READ_TOKEN: read only). No credentials, no
 *   console: unlike the dashboard it is never open (it shows customers' emails).
 * - What each route needs is the access policy's word (http/auth.ts `classifyRoute`): a page is
 *   `console-read`, an action `console-write`.
 * - CSRF: a browser sends basic credentials with any request to the origin, also one another site
 *   makes it send. An action authenticated by basic auth therefore needs (1) no cross-site
 *   `Sec-Fetch-Site` and no foreign `Origin`, and (2) the form's `_csrf` field: an HMAC of the
 *   operator's identity under a key derived from DATA_ENCRYPTION_KEY, which only a page of the
 *   console carries. A bearer token is never sent by a browser on its own, so it needs neither.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { bearerToken, type AccessTokens, type OnPreviousToken } from '../http/auth.ts';
import { basicAuthMatches, foreignOrigin } from '../http/dashboard.ts';

export interface ConsoleCredentials {
  dashboard?: { user: string; password: string };
  dashboardReadOnly: boolean;
  /** API_TOKEN, API_READ_TOKEN and, during a rotation, their previous ones (http/auth.ts). */
  tokens: AccessTokens;
  /** A request carried a previous token: counted and logged (http/auth.ts). */
  onPreviousToken?: OnPreviousToken;
}

/** What the request's credentials allow, and who the operator is. */
export interface Grant {
  level: 'read' | 'write';
  /** Recorded as who resolved, approved, canceled or retried. */
  who: string;
  via: 'basic' | 'bearer';
}

/** The grant of the request's `Authorization` header, or undefined. */
export function grantOf(req: FastifyRequest, creds: ConsoleCredentials): Grant | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  if (/^Basic\s/i.test(header)) {
    const d = creds.dashboard;
    if (!d || !basicAuthMatches(header, d)) return undefined;
    return {
      level: creds.dashboardReadOnly ? 'read' : 'write',
      who: `console:${d.user}`,
      via: 'basic',
    };
  }
  const bearer = bearerToken(header, creds.tokens);
  if (bearer === undefined) return undefined;
  if (bearer.name === 'API_TOKEN_PREVIOUS' || bearer.name === 'API_READ_TOKEN_PREVIOUS')
    creds.onPreviousToken?.(bearer.name, req);
  return { level: bearer.level, who: bearer.identity, via: 'bearer' };
}

/**
 * The CSRF tokens of one deployment: HMAC(identity) under a key derived from `secret`
 * (DATA_ENCRYPTION_KEY). During its rotation a token made under `previous` still matches, so a
 * form opened before the restart still submits.
 */
export function csrfTokens(secret: Buffer, previous?: Buffer) {
  const derive = (s: Buffer) => createHmac('sha256', s).update('console-csrf-v1').digest();
  const keys = [derive(secret), ...(previous ? [derive(previous)] : [])];
  const under = (key: Buffer, who: string) =>
    createHmac('sha256', key).update(who).digest('base64url');
  return {
    tokenFor: (who: string) => under(keys[0]!, who),
    matches(who: string, token: unknown): boolean {
      if (typeof token !== 'string') return false;
      const got = Buffer.from(token);
      let ok = false;
      for (const key of keys) {
        const want = Buffer.from(under(key, who));
        if (got.length === want.length && timingSafeEqual(got, want)) ok = true;
      }
      return ok;
    },
  };
}

/** Whether the browser says the request comes from another site (Fetch Metadata, Origin). */
export function crossSite(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  return foreignOrigin(req);
}
