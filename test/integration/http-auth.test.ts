/**
 * Who may call what (issue 13): every route of the running api role, enumerated from fastify's
 * own route table (not a hand list), answers 401 without a token unless it is one of the
 * documented exemptions; writes answer 403 to the read-only token; the read token reads payments,
 * batches, subscriptions and metrics; the dashboard needs its credentials, is not served without
 * them, and opens (read-only) only with DASHBOARD_AUTH=none.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessTable } from '../../src/http/auth.ts';
import { QUEUES } from '../../src/infra/queues/names.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const READ_TOKEN = 'test-read-token-0123456789';
const USER = 'ops';
const PASSWORD = 'correct horse battery staple';
const WRITE = { authorization: `Bearer ${TEST_API_TOKEN}` };
const READ = { authorization: `Bearer ${READ_TOKEN}` };
const BASIC = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };
/** The routes that take no bearer token, as documented (docs/operations.md "Access"). */
const PUBLIC = [
  'GET /healthz',
  'HEAD /healthz',
  'GET /readyz',
  'HEAD /readyz',
  'GET /openapi.json',
  'HEAD /openapi.json',
];
/** The docs page and its assets: public like the document they show (http/openapi.ts). */
const isDocs = (url: string) => url === '/docs' || url.startsWith('/docs/');
const WEBHOOK = 'POST /webhooks/sayswitch';
const DASHBOARD = '/admin/queues';
const CLEAN = `${DASHBOARD}/api/queues/${QUEUES.charges}/clean/completed`;

interface Route {
  method: string;
  url: string;
}

/**
 * Every route of `app` from `printRoutes()`: a tree of path segments, each line `segment
 * (METHODS)`, indented four characters per level under its parent.
 */
function registeredRoutes(app: FastifyInstance): Route[] {
  const stack: string[] = [];
  const out: Route[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    const url = (stack[depth - 1] ?? '') + (m[2] ?? '');
    stack[depth] = url;
    stack.length = depth + 1;
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) out.push({ method, url });
  }
  return out;
}

/** A concrete URL for a route pattern: every parameter and wildcard filled in. */
const concrete = (url: string) => url.replace(/:[A-Za-z_]+/g, 'probe-x').replace(/\*$/, 'probe');
const label = (r: Route) => `${r.method} ${r.url}`;
/** The dashboard and the console check their own credentials (console: console-http.test.ts). */
const isDashboard = (url: string) =>
  url === DASHBOARD ||
  url.startsWith(`${DASHBOARD}/`) ||
  url === '/console' ||
  url.startsWith('/console/');

describe('the access policy of the running api role', () => {
  let sandbox: Sandbox;
  let t: TestApp;
  let http: FastifyInstance;
  let routes: Route[];

  beforeAll(async () => {
    sandbox = await startTestSandbox();
    t = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['api'],
      env: { API_READ_TOKEN: READ_TOKEN, DASHBOARD_USER: USER, DASHBOARD_PASSWORD: PASSWORD },
    });
    http = t.running.http!;
    routes = registeredRoutes(http);
  });

  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  const send = (method: string, url: string, headers: Record<string, string> = {}) =>
    http.inject({ method, url, headers });

  it('enumerates the route table, and the policy classified every route in it', () => {
    const names = routes.map(label);
    for (const expected of [
      'GET /payments/:reference',
      'POST /payments',
      'GET /batches/:id',
      'GET /batches/:id/results',
      'POST /batches',
      'GET /subscriptions/:id',
      'POST /subscriptions/:id/cancel',
      'GET /metrics',
      WEBHOOK,
      ...PUBLIC,
    ]) {
      expect(names).toContain(expected);
    }
    expect(names.some((n) => n.startsWith(`PUT ${DASHBOARD}/`))).toBe(true);
    // The policy saw every route fastify serves (none was registered around it). printRoutes
    // shows a prefix's root also with its trailing slash, and a static wildcard by its last part.
    const classified = accessTable(http);
    for (const r of routes) {
      const seen = classified.some(
        (c) =>
          c.method === r.method &&
          (c.url === r.url ||
            c.url === r.url.replace(/\/$/, '') ||
            (r.url.endsWith('*') && c.url.endsWith('*') && c.url.startsWith(r.url.slice(0, -1)))),
      );
      expect(seen, label(r)).toBe(true);
    }
    for (const c of classified) {
      expect(http.hasRoute({ method: c.method, url: c.url }), label(c)).toBe(true);
    }
  });

  it('every GET route but the probes and the dashboard answers 401 without a valid token', async () => {
    const reads = routes.filter(
      (r) => (r.method === 'GET' || r.method === 'HEAD') && !isDashboard(r.url),
    );
    for (const r of reads) {
      const url = concrete(r.url);
      if (PUBLIC.includes(label(r)) || isDocs(r.url)) {
        expect((await send(r.method, url)).statusCode, label(r)).not.toBe(401);
        continue;
      }
      for (const headers of [{}, { authorization: `Bearer ${READ_TOKEN}x` }, BASIC]) {
        const res = await send(r.method, url, headers);
        expect(res.statusCode, `${label(r)} ${JSON.stringify(headers)}`).toBe(401);
        if (r.method === 'GET') {
          expect(res.json()).toMatchObject({ error: { code: 'unauthorized' } });
        }
      }
      for (const headers of [READ, WRITE]) {
        const res = await send(r.method, url, headers);
        expect([401, 403], `${label(r)} with a token`).not.toContain(res.statusCode);
      }
    }
  });

  it('every other route answers 401 without a token and 403 with the read token', async () => {
    const writes = routes.filter(
      (r) => r.method !== 'GET' && r.method !== 'HEAD' && !isDashboard(r.url),
    );
    expect(writes.length).toBeGreaterThan(3);
    for (const r of writes) {
      const url = concrete(r.url);
      const none = await send(r.method, url);
      expect(none.statusCode, label(r)).toBe(401);
      if (label(r) === WEBHOOK) {
        // Not the bearer policy: the route's own HMAC check answers.
        expect(none.json()).toMatchObject({ error: { code: 'bad_signature' } });
        continue;
      }
      expect(none.json()).toMatchObject({ error: { code: 'unauthorized' } });
      const ro = await send(r.method, url, READ);
      expect(ro.statusCode, label(r)).toBe(403);
      expect(ro.json()).toMatchObject({ error: { code: 'forbidden' } });
      const rw = await send(r.method, url, WRITE);
      expect([401, 403], label(r)).not.toContain(rw.statusCode);
    }
  });

  it('the read token reads payments, subscriptions, batches and metrics, and writes nothing', async () => {
    const payout = {
      type: 'payout',
      key: 'auth1',
      account_number: '0123456789',
      bank_code: '000013',
      bank_name: 'GTBank',
      account_name: 'Ada Lovelace',
      amount: '1500.50',
      currency: 'NGN',
      narration: 'read token',
    };
    const refused = await http.inject({
      method: 'POST',
      url: '/payments',
      headers: READ,
      payload: { ...payout, key: 'auth-ro' },
    });
    expect(refused.statusCode).toBe(403);
    expect(await t.app.store.get('api_auth-ro')).toBeUndefined();
    const created = await http.inject({
      method: 'POST',
      url: '/payments',
      headers: WRITE,
      payload: payout,
    });
    expect(created.statusCode).toBe(201);
    const payment = await send('GET', '/payments/api_auth1', READ);
    expect(payment.statusCode).toBe(200);
    expect(payment.json()).toMatchObject({ key: 'api_auth1', type: 'payout' });

    const sub = await http.inject({
      method: 'POST',
      url: '/subscriptions',
      headers: WRITE,
      payload: {
        id: 'auth-sub',
        customer_email: 'ada@example.com',
        card_token: 'tok_card_secret_4111',
        amount: '1500',
        currency: 'NGN',
        interval: 'month',
        interval_count: 1,
        anchor: '2030-01-31T09:00:00+01:00',
        timezone: 'Africa/Lagos',
      },
    });
    expect(sub.statusCode).toBe(201);
    expect((await send('GET', '/subscriptions/auth-sub', READ)).statusCode).toBe(200);
    expect((await send('POST', '/subscriptions/auth-sub/pause', READ)).statusCode).toBe(403);
    expect((await send('GET', '/subscriptions/auth-sub', READ)).json()).toMatchObject({
      status: 'active',
    });

    const csv =
      'reference,account_number,bank_code,bank_name,account_name,amount,currency,narration,meta_note\n' +
      'r1,0123456789,058,GTBank,Okafor Ada,2500,NGN,salary,secret-ish\n';
    const batch = await http.inject({
      method: 'POST',
      url: '/batches?type=payout&id=authbatch',
      headers: { ...WRITE, 'content-type': 'text/csv' },
      payload: csv,
    });
    expect(batch.statusCode).toBe(201);
    expect((await send('GET', '/batches/authbatch', READ)).statusCode).toBe(200);
    const results = await send('GET', '/batches/authbatch/results', READ);
    expect(results.statusCode).toBe(200);
    expect((await send('GET', '/batches/authbatch/results')).statusCode).toBe(401);

    const metrics = await send('GET', '/metrics', READ);
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('billing_');
  });

  it('the dashboard takes its basic credentials, not a bearer token, on every method', async () => {
    for (const url of [DASHBOARD, `${DASHBOARD}/api/queues`]) {
      for (const headers of [{}, WRITE, READ]) {
        const res = await send('GET', url, headers);
        expect(res.statusCode, url).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Basic/);
      }
      expect((await send('GET', url, BASIC)).statusCode, url).toBe(200);
    }
    const queue = t.app.dispatcher.queue(QUEUES.charges);
    for (const headers of [{}, WRITE]) {
      expect((await send('PUT', CLEAN, headers)).statusCode).toBe(401);
      expect((await send('PUT', `${DASHBOARD}/api/queues/pause`, headers)).statusCode).toBe(401);
    }
    expect(await queue.isPaused()).toBe(false);
    expect((await send('PUT', CLEAN, BASIC)).statusCode).toBe(200);
  });
});

describe('the dashboard without credentials', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startTestSandbox();
  });

  afterAll(async () => {
    await sandbox?.close();
  });

  /** Runs `check` against an api role started with `env`, its warnings captured. */
  async function withApi(
    env: Record<string, string>,
    check: (http: FastifyInstance, lines: string[]) => Promise<void>,
  ) {
    const lines: string[] = [];
    const t = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['api'],
      env: { LOG_LEVEL: 'warn', ...env },
      logDestination: { write: (l) => lines.push(l) },
    });
    try {
      await check(t.running.http!, lines);
    } finally {
      await t.close();
    }
  }

  it('is not served (404, one warning naming the variables), whatever NODE_ENV', async () => {
    for (const NODE_ENV of ['development', 'production']) {
      await withApi({ NODE_ENV }, async (http, lines) => {
        for (const [method, url] of [
          ['GET', DASHBOARD],
          ['GET', `${DASHBOARD}/api/queues`],
          ['PUT', CLEAN],
        ] as const) {
          for (const headers of [{}, BASIC, WRITE]) {
            const res = await http.inject({ method, url, headers });
            expect(res.statusCode, `${NODE_ENV} ${method} ${url}`).toBe(404);
          }
        }
        const warnings = lines.filter((l) => l.includes('dashboard disabled'));
        expect(warnings, NODE_ENV).toHaveLength(1);
        expect(warnings[0]).toContain('DASHBOARD_USER');
        expect(warnings[0]).toContain('DASHBOARD_PASSWORD');
        expect(warnings[0]).toContain('"level":"warn"');
      });
    }
  });

  it('DASHBOARD_AUTH=none opens it for viewing, with a warning; actions still answer 401', async () => {
    await withApi({ DASHBOARD_AUTH: 'none' }, async (http, lines) => {
      expect((await http.inject({ method: 'GET', url: DASHBOARD })).statusCode).toBe(200);
      const api = await http.inject({ method: 'GET', url: `${DASHBOARD}/api/queues` });
      expect(api.statusCode).toBe(200);
      expect(
        api.json<{ queues: { readOnlyMode: boolean }[] }>().queues.every((q) => q.readOnlyMode),
      ).toBe(true);
      expect((await http.inject({ method: 'PUT', url: CLEAN })).statusCode).toBe(401);
      expect(lines.filter((l) => l.includes('WITHOUT authentication'))).toHaveLength(1);
      // The API itself still needs its token.
      expect((await http.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    });
  });
});

describe('rotating the API tokens (API_TOKEN_PREVIOUS, API_READ_TOKEN_PREVIOUS)', () => {
  const OLD_WRITE = 'test-old-api-token-0123456789';
  const OLD_READ = 'test-old-read-token-0123456789';
  let sandbox: Sandbox;
  let t: TestApp;
  let http: FastifyInstance;
  beforeAll(async () => {
    sandbox = await startTestSandbox();
    t = await startTestApp({
      sandboxUrl: sandbox.url,
      roles: ['api'],
      env: {
        API_READ_TOKEN: READ_TOKEN,
        API_TOKEN_PREVIOUS: OLD_WRITE,
        API_READ_TOKEN_PREVIOUS: OLD_READ,
      },
    });
    http = t.running.http!;
  });
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  const as = (token: string) => ({ authorization: `Bearer ${token}` });

  it('the previous tokens keep working, as the same callers, and every use is counted', async () => {
    const created = await http.inject({
      method: 'POST',
      url: '/payments',
      headers: as(OLD_WRITE),
      payload: {
        type: 'charge',
        key: 'rotate-1',
        email: 'ada@example.com',
        amount: '10.00',
        currency: 'NGN',
        card_token: 'tok_rotate_0123456789',
      },
    });
    expect(created.statusCode).toBe(201);
    expect(
      (await http.inject({ url: '/payments/api_rotate-1', headers: as(OLD_READ) })).statusCode,
    ).toBe(200);
    const refused = await http.inject({
      method: 'POST',
      url: '/payments',
      headers: as(OLD_READ),
      payload: {},
    });
    expect(refused.statusCode).toBe(403);
    // The console takes them too, as API_TOKEN and API_READ_TOKEN.
    const page = await http.inject({ url: '/console/payments', headers: as(OLD_WRITE) });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('API_TOKEN');
    expect(page.body).not.toContain('API_TOKEN_PREVIOUS');

    const metrics = await http.inject({ url: '/metrics', headers: as(READ_TOKEN) });
    expect(metrics.body).toMatch(
      /^billing_http_previous_token_requests_total\{token="API_TOKEN_PREVIOUS"\} 2$/m,
    );
    expect(metrics.body).toMatch(
      /^billing_http_previous_token_requests_total\{token="API_READ_TOKEN_PREVIOUS"\} 2$/m,
    );
    // The current tokens are not counted.
    expect((await http.inject({ url: '/payments/api_rotate-1', headers: WRITE })).statusCode).toBe(
      200,
    );
    const again = await http.inject({ url: '/metrics', headers: as(READ_TOKEN) });
    expect(again.body).toMatch(
      /^billing_http_previous_token_requests_total\{token="API_TOKEN_PREVIOUS"\} 2$/m,
    );
  });
});
