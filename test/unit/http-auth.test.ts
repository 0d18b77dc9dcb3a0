/**
 * The HTTP access policy (src/http/auth.ts) on a bare fastify instance, and the configuration of
 * its tokens and of the dashboard's credentials (src/config/config.ts).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compared } from '../support/counted-compare.ts';
import {
  ConfigError,
  demoDefaults,
  loadConfig,
  SECRET_VARIABLES,
} from '../../src/config/config.ts';
import {
  accessTable,
  bearerGrant,
  bearerToken,
  classifyRoute,
  installAccessPolicy,
  previousTokenReporter,
  type AccessTokens,
} from '../../src/http/auth.ts';
import { createLogger } from '../../src/infra/logger.ts';

/** Counts timingSafeEqual calls (still the real one): every key must be compared, whichever matches. */
vi.mock('node:crypto', async (importOriginal) =>
  (await import('../support/counted-compare.ts')).countingCompares(await importOriginal()),
);

const WRITE = 'write-token-0123456789';
const READ = 'read-token-0123456789';
const WRITE_OLD = 'old-write-token-0123456789';
const READ_OLD = 'old-read-token-0123456789';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('classifyRoute', () => {
  it('exempts only the probes, the webhook and the dashboard; defaults by method', () => {
    expect(classifyRoute('GET', '/healthz')).toBe('public');
    expect(classifyRoute('HEAD', '/readyz')).toBe('public');
    expect(classifyRoute('POST', '/webhooks/sayswitch')).toBe('webhook');
    expect(classifyRoute('GET', '/admin/queues')).toBe('dashboard');
    expect(classifyRoute('GET', '/console/payments')).toBe('console-read');
    expect(classifyRoute('POST', '/console/batches/:id/cancel')).toBe('console-write');
    expect(classifyRoute('PUT', '/admin/queues/api/queues/:q/clean/:s')).toBe('dashboard');
    // Near misses are not exempt.
    expect(classifyRoute('POST', '/healthz')).toBe('write');
    expect(classifyRoute('GET', '/webhooks/sayswitch')).toBe('read');
    expect(classifyRoute('GET', '/admin/queuesx')).toBe('read');
    expect(classifyRoute('GET', '/healthz/x')).toBe('read');
    // Everything else by method.
    expect(classifyRoute('GET', '/payments/:reference')).toBe('read');
    expect(classifyRoute('HEAD', '/metrics')).toBe('read');
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      expect(classifyRoute(m, '/anything-new')).toBe('write');
    }
  });
});

describe('bearerGrant', () => {
  it('tells the write token from the read token; anything else grants nothing', () => {
    const tokens = { write: WRITE, read: READ };
    expect(bearerGrant(`Bearer ${WRITE}`, tokens)).toBe('write');
    expect(bearerGrant(`Bearer ${READ}`, tokens)).toBe('read');
    for (const h of [
      undefined,
      '',
      WRITE,
      `Basic ${WRITE}`,
      `bearer ${WRITE}`,
      `Bearer ${WRITE}x`,
      `Bearer ${READ.slice(1)}`,
      'Bearer ',
    ]) {
      expect(bearerGrant(h, tokens), String(h)).toBeUndefined();
    }
    expect(bearerGrant(`Bearer ${READ}`, { write: WRITE })).toBeUndefined();
  });

  it('during a rotation a previous token grants what its current one does, as the same caller', () => {
    const tokens = { write: WRITE, read: READ, writePrevious: WRITE_OLD, readPrevious: READ_OLD };
    expect(bearerToken(`Bearer ${WRITE_OLD}`, tokens)).toEqual({
      level: 'write',
      identity: 'API_TOKEN',
      name: 'API_TOKEN_PREVIOUS',
    });
    expect(bearerToken(`Bearer ${READ_OLD}`, tokens)).toEqual({
      level: 'read',
      identity: 'API_READ_TOKEN',
      name: 'API_READ_TOKEN_PREVIOUS',
    });
    expect(bearerToken(`Bearer ${WRITE}`, tokens)).toEqual({
      level: 'write',
      identity: 'API_TOKEN',
      name: 'API_TOKEN',
    });
    // Once unset, a previous token grants nothing.
    expect(bearerGrant(`Bearer ${WRITE_OLD}`, { write: WRITE, read: READ })).toBeUndefined();
    expect(bearerGrant(`Bearer ${READ_OLD}`, { write: WRITE, read: READ })).toBeUndefined();
  });
});

describe('bearer tokens are compared in constant time', () => {
  it('compares every configured token, whichever matches (the first, the last, none)', () => {
    const tokens = { write: WRITE, read: READ, writePrevious: WRITE_OLD, readPrevious: READ_OLD };
    for (const header of [
      `Bearer ${WRITE}`,
      `Bearer ${READ_OLD}`,
      'Bearer not-one-of-ours-0123',
      undefined,
    ]) {
      compared.calls = 0;
      bearerToken(header, tokens);
      expect(compared.calls, String(header)).toBe(4);
    }
  });
});

describe('previousTokenReporter', () => {
  it('counts every request with a previous token and logs each token at most once a minute', () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (l: string) => lines.push(l) },
    });
    const counted: string[] = [];
    let now = 0;
    const report = previousTokenReporter(
      logger,
      { countPreviousToken: (t) => counted.push(t) },
      () => now,
    );
    const req = { ip: '10.0.0.1', url: '/payments' } as Parameters<typeof report>[1];
    report('API_TOKEN_PREVIOUS', req);
    report('API_TOKEN_PREVIOUS', req);
    report('API_READ_TOKEN_PREVIOUS', req);
    now = 59_999;
    report('API_TOKEN_PREVIOUS', req);
    now = 60_000;
    report('API_TOKEN_PREVIOUS', req);
    expect(counted).toEqual([
      'API_TOKEN_PREVIOUS',
      'API_TOKEN_PREVIOUS',
      'API_READ_TOKEN_PREVIOUS',
      'API_TOKEN_PREVIOUS',
      'API_TOKEN_PREVIOUS',
    ]);
    const logged = lines.map((l) => JSON.parse(l) as { variable: string; msg: string });
    expect(logged.map((l) => l.variable)).toEqual([
      'API_TOKEN_PREVIOUS',
      'API_READ_TOKEN_PREVIOUS',
      'API_TOKEN_PREVIOUS',
    ]);
    expect(logged[0]!.msg).toContain('move its caller to API_TOKEN');
    expect(lines.join('')).not.toContain(WRITE_OLD);
  });
});

describe('installAccessPolicy', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function build(
    tokens: AccessTokens,
    onPrevious?: Parameters<typeof installAccessPolicy>[2],
  ) {
    app = Fastify({ logger: false });
    installAccessPolicy(app, tokens, onPrevious);
    app.get('/healthz', () => ({ ok: true }));
    app.get('/things/:id', () => ({ thing: 1 }));
    app.post('/things', () => ({ made: 1 }));
    // Routes in an encapsulated scope, with several methods, and with their own hooks.
    await app.register(
      (scope, _opts, done) => {
        scope.route({ method: ['GET', 'POST'], url: '/both', handler: () => ({ both: 1 }) });
        scope.delete('/gone', { onRequest: (_req, _reply, next) => next() }, () => ({ gone: 1 }));
        done();
      },
      { prefix: '/nested' },
    );
    await app.ready();
    return app;
  }

  it('guards every route it saw: 401 without a token, 403 for the read token on writes', async () => {
    const server = await build({ write: WRITE, read: READ });
    const table = accessTable(server);
    expect(table.map((r) => `${r.method} ${r.url} ${r.access}`).sort()).toEqual(
      [
        'GET /healthz public',
        'HEAD /healthz public',
        'GET /things/:id read',
        'HEAD /things/:id read',
        'POST /things write',
        'GET /nested/both read',
        'POST /nested/both write',
        'HEAD /nested/both read',
        'DELETE /nested/gone write',
      ].sort(),
    );

    expect((await server.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const reads = [
      ['GET', '/things/1'],
      ['HEAD', '/things/1'],
    ] as const;
    for (const [method, url] of reads) {
      const none = await server.inject({ method, url });
      expect(none.statusCode, `${method} ${url}`).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await server.inject({ method, url, headers: bearer(READ) })).statusCode).toBe(200);
      expect((await server.inject({ method, url, headers: bearer(WRITE) })).statusCode).toBe(200);
    }
    const none = await server.inject({ method: 'GET', url: '/things/1' });
    expect(none.json()).toEqual({
      error: { code: 'unauthorized', message: expect.any(String) as string },
    });

    // A route with GET and POST takes the stricter guard for both.
    const writes = [
      ['POST', '/things'],
      ['POST', '/nested/both'],
      ['GET', '/nested/both'],
      ['DELETE', '/nested/gone'],
    ] as const;
    for (const [method, url] of writes) {
      const label = `${method} ${url}`;
      expect((await server.inject({ method, url })).statusCode, label).toBe(401);
      const ro = await server.inject({ method, url, headers: bearer(READ) });
      expect(ro.statusCode, label).toBe(403);
      expect(ro.json()).toMatchObject({ error: { code: 'forbidden' } });
      expect((await server.inject({ method, url, headers: bearer(WRITE) })).statusCode).toBe(200);
    }
  });

  it('previous tokens: the write one writes, the read one only reads; each use is reported', async () => {
    const used: string[] = [];
    const server = await build(
      { write: WRITE, read: READ, writePrevious: WRITE_OLD, readPrevious: READ_OLD },
      (name) => used.push(name),
    );
    expect(
      (await server.inject({ method: 'POST', url: '/things', headers: bearer(WRITE_OLD) }))
        .statusCode,
    ).toBe(200);
    expect((await server.inject({ url: '/things/1', headers: bearer(WRITE_OLD) })).statusCode).toBe(
      200,
    );
    expect((await server.inject({ url: '/things/1', headers: bearer(READ_OLD) })).statusCode).toBe(
      200,
    );
    expect(
      (await server.inject({ method: 'POST', url: '/things', headers: bearer(READ_OLD) }))
        .statusCode,
    ).toBe(403);
    expect((await server.inject({ url: '/things/1', headers: bearer(WRITE) })).statusCode).toBe(
      200,
    );
    expect(used).toEqual([
      'API_TOKEN_PREVIOUS',
      'API_TOKEN_PREVIOUS',
      'API_READ_TOKEN_PREVIOUS',
      'API_READ_TOKEN_PREVIOUS',
    ]);
  });

  it('without a read token only the write token opens the reads', async () => {
    const server = await build({ write: WRITE });
    const url = '/things/1';
    expect((await server.inject({ url, headers: bearer(READ) })).statusCode).toBe(401);
    expect((await server.inject({ url, headers: bearer(WRITE) })).statusCode).toBe(200);
  });
});

const VALID = {
  SAYSWITCH_SECRET_KEY: 'sk_test_abcdefgh',
  DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
  API_TOKEN: WRITE,
};

function problemsOf(env: Record<string, string>) {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration of the tokens and the dashboard', () => {
  it('API_READ_TOKEN is optional, a secret, at least 16 characters and not API_TOKEN', () => {
    expect(loadConfig(VALID).http.apiReadToken).toBeUndefined();
    expect(loadConfig({ ...VALID, API_READ_TOKEN: '' }).http.apiReadToken).toBeUndefined();
    expect(loadConfig({ ...VALID, API_READ_TOKEN: READ }).http.apiReadToken).toBe(READ);
    expect(SECRET_VARIABLES).toContain('API_READ_TOKEN');

    const short = problemsOf({ ...VALID, API_READ_TOKEN: 'short-secret' });
    expect(short.problems).toEqual([
      { variable: 'API_READ_TOKEN', message: 'must be at least 16 characters' },
    ]);
    expect(short.message).not.toContain('short-secret');

    const same = problemsOf({ ...VALID, API_READ_TOKEN: WRITE });
    expect(same.problems).toEqual([
      { variable: 'API_READ_TOKEN', message: 'must differ from API_TOKEN' },
    ]);
    expect(same.message).not.toContain(WRITE);
  });

  it('API_TOKEN_PREVIOUS and API_READ_TOKEN_PREVIOUS: secrets, 16+ characters, each token unlike every other', () => {
    const c = loadConfig({
      ...VALID,
      API_READ_TOKEN: READ,
      API_TOKEN_PREVIOUS: WRITE_OLD,
      API_READ_TOKEN_PREVIOUS: READ_OLD,
    });
    expect(c.http).toMatchObject({ apiTokenPrevious: WRITE_OLD, apiReadTokenPrevious: READ_OLD });
    expect(loadConfig({ ...VALID, API_TOKEN_PREVIOUS: '' }).http.apiTokenPrevious).toBeUndefined();
    expect(SECRET_VARIABLES).toEqual(
      expect.arrayContaining(['API_TOKEN_PREVIOUS', 'API_READ_TOKEN_PREVIOUS']),
    );
    const cases: [Record<string, string>, { variable: string; message: string }[]][] = [
      [
        { API_TOKEN_PREVIOUS: 'short-secret' },
        [{ variable: 'API_TOKEN_PREVIOUS', message: 'must be at least 16 characters' }],
      ],
      [
        { API_TOKEN_PREVIOUS: WRITE },
        [{ variable: 'API_TOKEN_PREVIOUS', message: 'must differ from API_TOKEN' }],
      ],
      [
        { API_READ_TOKEN: READ, API_TOKEN_PREVIOUS: READ },
        [{ variable: 'API_TOKEN_PREVIOUS', message: 'must differ from API_READ_TOKEN' }],
      ],
      [
        { API_READ_TOKEN: READ, API_TOKEN_PREVIOUS: WRITE_OLD, API_READ_TOKEN_PREVIOUS: WRITE_OLD },
        [{ variable: 'API_READ_TOKEN_PREVIOUS', message: 'must differ from API_TOKEN_PREVIOUS' }],
      ],
      [
        { API_READ_TOKEN_PREVIOUS: READ_OLD },
        [
          {
            variable: 'API_READ_TOKEN_PREVIOUS',
            message: expect.stringContaining('needs API_READ_TOKEN') as string,
          },
        ],
      ],
    ];
    for (const [env, want] of cases) {
      const err = problemsOf({ ...VALID, ...env });
      expect(err.problems, JSON.stringify(Object.keys(env))).toEqual(want);
      for (const v of Object.values(env)) expect(err.message).not.toContain(v);
    }
  });

  it('DASHBOARD_AUTH is basic (default) or none', () => {
    expect(loadConfig(VALID).http.dashboardAuth).toBe('basic');
    expect(loadConfig({ ...VALID, DASHBOARD_AUTH: 'none' }).http.dashboardAuth).toBe('none');
    expect(
      problemsOf({ ...VALID, DASHBOARD_AUTH: 'open' }).problems.map((p) => p.variable),
    ).toEqual(['DASHBOARD_AUTH']);
  });

  it('DASHBOARD_USER and DASHBOARD_PASSWORD go together, and not with DASHBOARD_AUTH=none', () => {
    const c = loadConfig({ ...VALID, DASHBOARD_USER: 'ops', DASHBOARD_PASSWORD: 'pw-secret' });
    expect(c.http.dashboard).toEqual({ user: 'ops', password: 'pw-secret' });

    const noPassword = problemsOf({ ...VALID, DASHBOARD_USER: 'ops' });
    expect(noPassword.problems.map((p) => p.variable)).toEqual(['DASHBOARD_PASSWORD']);
    const noUser = problemsOf({ ...VALID, DASHBOARD_PASSWORD: 'pw-secret' });
    expect(noUser.problems.map((p) => p.variable)).toEqual(['DASHBOARD_USER']);
    expect(noUser.message).not.toContain('pw-secret');

    const both = problemsOf({
      ...VALID,
      DASHBOARD_AUTH: 'none',
      DASHBOARD_USER: 'ops',
      DASHBOARD_PASSWORD: 'pw-secret',
    });
    expect(both.problems).toEqual([
      { variable: 'DASHBOARD_USER', message: 'cannot be set with DASHBOARD_AUTH=none' },
    ]);
  });

  it("the demo's defaults carry dashboard credentials and a read token", () => {
    // As the demo loads them: over the environment, which may say DASHBOARD_AUTH=none.
    const c = loadConfig({ DASHBOARD_AUTH: 'none', ...demoDefaults() });
    expect(c.http.dashboardAuth).toBe('basic');
    expect(c.http.dashboard).toBeDefined();
    expect(c.http.apiReadToken).toBeDefined();
    expect(c.http.apiReadToken).not.toBe(c.http.apiToken);
  });
});
