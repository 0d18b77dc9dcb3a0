/**
 * Failed password sign-ins (http/sign-in.ts, docs/console.md "Failed sign-ins"): an address that
 * gives the wrong DASHBOARD_PASSWORD DASHBOARD_SIGN_IN_MAX_FAILURES times is refused on the
 * console and the dashboard, right password or not, until the block ends; other addresses and
 * bearer tokens are not affected; with TRUST_PROXY the address is the one the proxy names, and
 * the console's flash cookie is Secure over https. Real app (api role), real Redis.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { csrfTokens } from '../../src/console/access.ts';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { createSignInThrottle } from '../../src/infra/redis/sign-in-throttle.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { startTestApp, TEST_API_TOKEN, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { startTestSandbox } from '../support/sandbox.ts';

const USER = 'ops';
const PASSWORD = 'right password';
const basic = (password: string) => ({
  authorization: `Basic ${Buffer.from(`${USER}:${password}`).toString('base64')}`,
});
const RIGHT = basic(PASSWORD);
const WRONG = basic('a guess');
const MAX = 3;

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startTestSandbox();
});
afterAll(async () => {
  await sandbox?.close();
});

async function appWith(
  env: Record<string, string>,
  logLines?: string[],
): Promise<{ t: TestApp; http: FastifyInstance }> {
  const t = await startTestApp({
    sandboxUrl: sandbox.url,
    roles: ['api'],
    env: {
      DASHBOARD_USER: USER,
      DASHBOARD_PASSWORD: PASSWORD,
      DASHBOARD_SIGN_IN_MAX_FAILURES: String(MAX),
      ...env,
    },
    ...(logLines ? { logDestination: { write: (line: string) => void logLines.push(line) } } : {}),
  });
  return { t, http: t.running.http! };
}

describe('failed sign-ins without a proxy', () => {
  let t: TestApp;
  let http: FastifyInstance;
  const logLines: string[] = [];
  beforeAll(async () => {
    ({ t, http } = await appWith({ DASHBOARD_SIGN_IN_BLOCK: '15m', LOG_LEVEL: 'info' }, logLines));
  });
  afterAll(async () => {
    await t?.close();
  });

  const from = (remoteAddress: string, url: string, headers: Record<string, string>) =>
    http.inject({ method: 'GET', url, headers, remoteAddress });

  it('blocks the address at the limit, refuses its right password too, on the console and the dashboard', async () => {
    const ip = '10.0.0.1';
    for (let i = 1; i < MAX; i++) expect((await from(ip, '/console', WRONG)).statusCode).toBe(401);
    const limit = await from(ip, '/console/payments', WRONG);
    expect(limit.statusCode).toBe(429);
    expect(Number(limit.headers['retry-after'])).toBeGreaterThan(14 * 60);
    expect(limit.body).toContain('Too many failed sign-ins');

    const right = await from(ip, '/console/payments', RIGHT);
    expect(right.statusCode).toBe(429);
    expect(right.body).not.toContain('Payments');
    // One count for both realms: the dashboard takes the same password.
    const dash = await from(ip, '/admin/queues/api/queues', RIGHT);
    expect(dash.statusCode).toBe(429);
    expect(dash.json()).toMatchObject({ error: { code: 'too_many_sign_in_failures' } });
    expect(Number(dash.headers['retry-after'])).toBeGreaterThan(0);

    // Another address is not affected.
    expect((await from('10.0.0.2', '/console/payments', RIGHT)).statusCode).toBe(200);
    expect((await from('10.0.0.2', '/admin/queues/api/queues', RIGHT)).statusCode).toBe(200);

    // Counted for the alerts: MAX wrong passwords on the console, then one refused request in
    // each realm. (The first test of this app: nothing else counted yet.)
    const metrics = await http.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${TEST_API_TOKEN}` },
    });
    const value = (realm: string, failure: string) =>
      new RegExp(
        `^billing_sign_in_failures_total\\{realm="${realm}",failure="${failure}"\\} (\\d+)$`,
        'm',
      ).exec(metrics.body)?.[1];
    expect(value('console', 'wrong_password')).toBe(String(MAX));
    expect(value('console', 'blocked')).toBe('1');
    expect(value('dashboard', 'blocked')).toBe('1');
    expect(value('dashboard', 'wrong_password')).toBe('0');
  });

  it('counts failures from the dashboard and the console together', async () => {
    const ip = '10.0.0.3';
    expect((await from(ip, '/admin/queues/api/queues', WRONG)).statusCode).toBe(401);
    expect((await from(ip, '/console', WRONG)).statusCode).toBe(401);
    expect((await from(ip, '/admin/queues/api/queues', WRONG)).statusCode).toBe(429);
    expect((await from(ip, '/console/payments', RIGHT)).statusCode).toBe(429);
  });

  it('a right password before the limit does not count, and bearer tokens are never throttled', async () => {
    const ip = '10.0.0.4';
    for (let i = 0; i < 3 * MAX; i++) {
      expect(
        (await from(ip, '/console', { authorization: 'Bearer not-the-token' })).statusCode,
      ).toBe(401);
      expect(
        (await from(ip, '/payments', { authorization: 'Bearer not-the-token' })).statusCode,
      ).toBe(401);
      expect((await from(ip, '/console/payments', RIGHT)).statusCode).toBe(200);
      expect((await from(ip, '/admin/queues/api/queues', RIGHT)).statusCode).toBe(200);
    }
    for (let i = 1; i < MAX; i++) expect((await from(ip, '/console', WRONG)).statusCode).toBe(401);
    expect((await from(ip, '/console/payments', RIGHT)).statusCode).toBe(200);
    // The bearer token still works from a blocked address.
    expect((await from(ip, '/console', WRONG)).statusCode).toBe(429);
    const bearer = { authorization: `Bearer ${TEST_API_TOKEN}` };
    expect((await from(ip, '/console/payments', bearer)).statusCode).toBe(200);
  });

  it('counts a password before checking it: guesses sent at once are not all checked', async () => {
    const ip = '10.0.0.7';
    // All in flight together: none of them waits for another's failure to be counted.
    const guesses = (n: number) =>
      Array.from({ length: n }, (_, i) => from(ip, '/console', basic(`guess ${i}`)));
    const burst = await Promise.all([
      ...guesses(MAX),
      from(ip, '/console/payments', RIGHT),
      ...guesses(4 * MAX),
      from(ip, '/admin/queues/api/queues', basic('another guess')),
      from(ip, '/console/payments', RIGHT),
    ]);
    const codes = burst.map((r) => r.statusCode);
    // Only the first MAX passwords were checked (each failure 401, or 429 once the count reached
    // the limit); the right ones, sent after them (the first right after the limit), were not.
    expect(codes.filter((c) => c !== 401 && c !== 429)).toEqual([]);
    expect(codes.filter((c) => c === 401).length).toBeLessThan(MAX);
    expect(codes.slice(MAX)).toEqual(codes.slice(MAX).map(() => 429));
    expect((await from(ip, '/console/payments', RIGHT)).statusCode).toBe(429);
  });

  it('counts a password whatever the case of its scheme (basic, BASIC)', async () => {
    const ip = '10.0.0.8';
    const scheme = (name: string, password: string) => ({
      authorization: `${name} ${Buffer.from(`${USER}:${password}`).toString('base64')}`,
    });
    // Accepted in any case, so it must be counted in any case.
    expect((await from(ip, '/console/payments', scheme('basic', PASSWORD))).statusCode).toBe(200);
    for (let i = 1; i <= MAX; i++) {
      const res = await from(ip, '/admin/queues/api/queues', scheme('basic', 'a guess'));
      expect(res.statusCode).toBe(i < MAX ? 401 : 429);
    }
    expect((await from(ip, '/console/payments', scheme('BASIC', PASSWORD))).statusCode).toBe(429);
    expect((await from(ip, '/admin/queues/api/queues', scheme('bAsIc', PASSWORD))).statusCode).toBe(
      429,
    );
  });

  it("a browser's parallel requests with the right password never start a block", async () => {
    const ip = '10.0.0.18';
    // Four times the limit at once: each is counted until it is given back, so some may be
    // refused while the others are in flight, but none is a failure and none blocks.
    const burst = await Promise.all(
      Array.from({ length: 4 * MAX }, () => from(ip, '/console/payments', RIGHT)),
    );
    for (const res of burst) expect([200, 429]).toContain(res.statusCode);
    expect(burst.some((r) => r.statusCode === 200)).toBe(true);
    expect((await from(ip, '/console/payments', RIGHT)).statusCode).toBe(200);
    expect((await from(ip, '/admin/queues/api/queues', RIGHT)).statusCode).toBe(200);
  });

  it('counts an IPv6 client by its /64, which a single host gets whole', async () => {
    for (let i = 1; i <= MAX; i++) {
      const res = await from(`2001:db8:7:7::${i.toString(16)}`, '/console', WRONG);
      expect(res.statusCode).toBe(i < MAX ? 401 : 429);
    }
    expect((await from('2001:db8:7:7:ffff::1', '/console/payments', RIGHT)).statusCode).toBe(429);
    expect(
      (await from('2001:0db8:0007:0007::99', '/admin/queues/api/queues', RIGHT)).statusCode,
    ).toBe(429);
    // The next /64 is another client.
    expect((await from('2001:db8:7:8::1', '/console/payments', RIGHT)).statusCode).toBe(200);
    // An IPv4 client is one client, also when written as an IPv4-mapped IPv6 address.
    for (let i = 1; i <= MAX; i++) {
      const ip = i % 2 === 0 ? '10.0.0.9' : '::ffff:10.0.0.9';
      expect((await from(ip, '/console', WRONG)).statusCode).toBe(i < MAX ? 401 : 429);
    }
    expect((await from('10.0.0.10', '/console/payments', RIGHT)).statusCode).toBe(200);
  });

  it('ignores X-Forwarded-For without TRUST_PROXY: a client cannot choose its address', async () => {
    const ip = '10.0.0.5';
    for (let i = 1; i <= MAX; i++) {
      const res = await from(ip, '/console', { ...WRONG, 'x-forwarded-for': `198.51.100.${i}` });
      expect(res.statusCode).toBe(i < MAX ? 401 : 429);
    }
    expect(
      (await from(ip, '/console/payments', { ...RIGHT, 'x-forwarded-for': '198.51.100.99' }))
        .statusCode,
    ).toBe(429);
  });

  it('logs each failure and each block, never the credentials tried', () => {
    const text = logLines.join('');
    expect(text).toContain('console: wrong credentials');
    expect(text).toContain('dashboard: wrong credentials');
    expect(text).toContain('sign-in: too many failed attempts');
    for (const secret of [
      'a guess',
      'guess 0',
      PASSWORD,
      Buffer.from(`${USER}:a guess`).toString('base64'),
      Buffer.from(`${USER}:${PASSWORD}`).toString('base64'),
    ])
      expect(text).not.toContain(secret);
  });

  it('keeps the count in Redis, where every api process reads it', async () => {
    const redis = new Redis(t.app.config.redis.url, { lazyConnect: true });
    try {
      const other = createSignInThrottle(redis, {
        keyPrefix: storeKeys(t.prefix).signInFailures(),
        maxFailures: MAX,
        blockMs: 15 * 60_000,
      });
      expect(await other.blockedFor('10.0.0.1')).toBeGreaterThan(14 * 60_000);
      expect(await other.blockedFor('10.0.0.2')).toBe(0);
      // A failure counted elsewhere blocks here.
      for (let i = 0; i < MAX; i++) {
        expect(await other.attempt('10.0.0.6')).toBe(0);
        await other.failed('10.0.0.6');
      }
      expect((await from('10.0.0.6', '/console/payments', RIGHT)).statusCode).toBe(429);
    } finally {
      redis.disconnect();
    }
  });
});

describe('failed sign-ins: the window and the block', () => {
  let t: TestApp;
  let http: FastifyInstance;
  beforeAll(async () => {
    ({ t, http } = await appWith({ DASHBOARD_SIGN_IN_BLOCK: '3s' }));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('counts failures for DASHBOARD_SIGN_IN_BLOCK after the first, and blocks from the one that reached the limit', async () => {
    const get = (headers: Record<string, string>) =>
      http.inject({ method: 'GET', url: '/console/payments', headers, remoteAddress: '10.3.0.1' });
    const first = Date.now();
    expect((await get(WRONG)).statusCode).toBe(401);
    // Half the window later the first failure still counts.
    await sleep(1_500);
    for (let i = 2; i <= MAX; i++) expect((await get(WRONG)).statusCode).toBe(i < MAX ? 401 : 429);
    // Once the first failure's window is over, the block (3 s from the limit, 1.5 s later) holds.
    await sleep(first + 3_300 - Date.now());
    expect((await get(RIGHT)).statusCode).toBe(429);
    await until(async () => (await get(RIGHT)).statusCode === 200, { what: 'the block to end' });
  });
});

describe('failed sign-ins: the block ends', () => {
  let t: TestApp;
  let http: FastifyInstance;
  beforeAll(async () => {
    ({ t, http } = await appWith({ DASHBOARD_SIGN_IN_BLOCK: '1s' }));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lets the address sign in again once DASHBOARD_SIGN_IN_BLOCK has passed', async () => {
    const get = (headers: Record<string, string>) =>
      http.inject({ method: 'GET', url: '/console/payments', headers, remoteAddress: '10.1.0.1' });
    for (let i = 1; i <= MAX; i++) expect((await get(WRONG)).statusCode).toBe(i < MAX ? 401 : 429);
    expect((await get(RIGHT)).statusCode).toBe(429);
    await until(async () => (await get(RIGHT)).statusCode === 200, { what: 'the block to end' });
  });
});

describe('failed sign-ins behind a trusted proxy (TRUST_PROXY)', () => {
  let t: TestApp;
  let http: FastifyInstance;
  const PROXY = '192.0.2.10';
  beforeAll(async () => {
    ({ t, http } = await appWith({ TRUST_PROXY: '192.0.2.0/24' }));
  });
  afterAll(async () => {
    await t?.close();
  });

  const via = (client: string, headers: Record<string, string>, url = '/console/payments') =>
    http.inject({
      method: 'GET',
      url,
      headers: { ...headers, 'x-forwarded-for': client },
      remoteAddress: PROXY,
    });

  it('counts per client the proxy names, not per proxy', async () => {
    for (let i = 1; i <= MAX; i++)
      expect((await via('203.0.113.7', WRONG)).statusCode).toBe(i < MAX ? 401 : 429);
    expect((await via('203.0.113.7', RIGHT)).statusCode).toBe(429);
    // Another client behind the same proxy signs in.
    expect((await via('203.0.113.8', RIGHT)).statusCode).toBe(200);
    // A client that is not the proxy cannot name another address.
    for (let i = 1; i <= MAX; i++) {
      const res = await http.inject({
        method: 'GET',
        url: '/console',
        headers: { ...WRONG, 'x-forwarded-for': `203.0.113.${20 + i}` },
        remoteAddress: '198.51.100.1',
      });
      expect(res.statusCode).toBe(i < MAX ? 401 : 429);
    }
  });

  it('marks the console flash cookie Secure when the proxy says https, not otherwise', async () => {
    const token = csrfTokens(t.app.config.dataEncryptionKey).tokenFor(`console:${USER}`);
    const act = (proto: string | undefined) =>
      http.inject({
        method: 'POST',
        url: '/console/payments/api_nope/resolve',
        headers: {
          ...RIGHT,
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': '203.0.113.30',
          ...(proto ? { 'x-forwarded-proto': proto } : {}),
        },
        payload: new URLSearchParams({ _csrf: token, outcome: 'failed', note: '' }).toString(),
        remoteAddress: PROXY,
      });
    const https = await act('https');
    expect(https.statusCode).toBe(303);
    expect(String(https.headers['set-cookie'])).toMatch(/; Secure$/);
    const plain = await act(undefined);
    expect(plain.statusCode).toBe(303);
    expect(String(plain.headers['set-cookie'])).not.toContain('Secure');

    // The page the action leads to clears the cookie with the same attributes.
    const follow = (from: typeof https, proto: string | undefined) =>
      http.inject({
        method: 'GET',
        url: String(from.headers.location),
        headers: {
          ...RIGHT,
          cookie: String(from.headers['set-cookie']).split(';')[0]!,
          'x-forwarded-for': '203.0.113.30',
          ...(proto ? { 'x-forwarded-proto': proto } : {}),
        },
        remoteAddress: PROXY,
      });
    const cleared = await follow(https, 'https');
    expect(String(cleared.headers['set-cookie'])).toMatch(/Max-Age=0.*; Secure$/);
    const clearedPlain = await follow(plain, undefined);
    expect(String(clearedPlain.headers['set-cookie'])).toContain('Max-Age=0');
    expect(String(clearedPlain.headers['set-cookie'])).not.toContain('Secure');
  });
});

describe('failed sign-ins while Redis does not answer', () => {
  it('counts in this process instead (the insurance limiter), so guessing stays throttled', async () => {
    // A port nothing listens on; no retries, no offline queue: every command fails at once.
    const dead = new Redis({
      port: 1,
      host: '127.0.0.1',
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    dead.on('error', () => {});
    try {
      const throttle = createSignInThrottle(dead, {
        keyPrefix: 'signin-test-dead',
        maxFailures: MAX,
        blockMs: 60_000,
      });
      expect(await throttle.blockedFor('10.2.0.1')).toBe(0);
      // A right password gives its attempt back.
      for (let i = 0; i < 2 * MAX; i++) {
        expect(await throttle.attempt('10.2.0.1')).toBe(0);
        await throttle.succeeded('10.2.0.1');
      }
      for (let i = 1; i < MAX; i++) {
        expect(await throttle.attempt('10.2.0.1')).toBe(0);
        expect(await throttle.failed('10.2.0.1')).toBe(0);
      }
      expect(await throttle.attempt('10.2.0.1')).toBe(0);
      expect(await throttle.failed('10.2.0.1')).toBe(60_000);
      expect(await throttle.blockedFor('10.2.0.1')).toBeGreaterThan(50_000);
      expect(await throttle.attempt('10.2.0.1')).toBeGreaterThan(50_000);
      expect(await throttle.blockedFor('10.2.0.2')).toBe(0);
    } finally {
      dead.disconnect();
    }
  });
});
