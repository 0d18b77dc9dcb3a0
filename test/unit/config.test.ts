import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_VARIABLES,
  ConfigError,
  loadConfig,
  minSubmitLeaseMs,
  SECRET_VARIABLES,
} from '../../src/config/config.ts';
import { FAST_ENV } from '../support/app.ts';

const VALID = {
  SAYSWITCH_SECRET_KEY: 'sk_test_abcdefgh',
  DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
  API_TOKEN: 'token-0123456789abcdef',
};

function problems(env: Record<string, string>) {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('accepts the required variables and applies documented defaults', () => {
    const c = loadConfig(VALID);
    expect(c.redis).toEqual({
      url: 'redis://127.0.0.1:6379',
      prefix: 'billing',
      allowEviction: false,
      shards: 1,
      shardsServed: [],
    });
    expect(c.reconcile.scheduleMs).toEqual([
      30_000, 120_000, 600_000, 3_600_000, 21_600_000, 86_400_000,
    ]);
    expect(c.dunning.scheduleMs).toEqual([
      86_400_000,
      3 * 86_400_000,
      5 * 86_400_000,
      7 * 86_400_000,
    ]);
    expect(c.sayswitch.encryption).toBeUndefined();
    expect(c.http.dashboard).toBeUndefined();
    expect(c.dataEncryptionKey.length).toBe(32);
  });

  it('lists every bad variable at once, never echoing a secret value', () => {
    const err = problems({
      SAYSWITCH_SECRET_KEY: 'sk_x9',
      DATA_ENCRYPTION_KEY: 'not-hex-secret-value',
      API_TOKEN: 'tiny-token',
      PORT: 'eighty',
      RECONCILE_SCHEDULE: '30s,soon',
      REDIS_ALLOW_EVICTION: 'maybe',
      SAYSWITCH_ENCRYPTION_KEY: 'only-the-key-is-set-secretvalue!',
      NOTIFY_URL: 'http://example.com/hook',
    });
    const vars = err.problems.map((p) => p.variable).sort();
    expect(vars).toEqual(
      [
        'API_TOKEN',
        'DATA_ENCRYPTION_KEY',
        'NOTIFY_SECRET',
        'PORT',
        'RECONCILE_SCHEDULE',
        'REDIS_ALLOW_EVICTION',
        'SAYSWITCH_ENCRYPTION_IV',
        'SAYSWITCH_SECRET_KEY',
      ].sort(),
    );
    for (const secret of [
      'sk_x9',
      'not-hex-secret-value',
      'tiny-token',
      'only-the-key-is-set-secretvalue!',
    ]) {
      expect(err.message).not.toContain(secret);
    }
  });

  it('names missing required variables', () => {
    const err = problems({});
    expect(err.problems.map((p) => p.variable).sort()).toEqual([
      'API_TOKEN',
      'DATA_ENCRYPTION_KEY',
      'SAYSWITCH_SECRET_KEY',
    ]);
    expect(err.problems.every((p) => p.message === 'is required')).toBe(true);
  });

  it('parses booleans explicitly: "false" is false', () => {
    expect(loadConfig({ ...VALID, REDIS_ALLOW_EVICTION: 'false' }).redis.allowEviction).toBe(false);
    expect(loadConfig({ ...VALID, REDIS_ALLOW_EVICTION: 'true' }).redis.allowEviction).toBe(true);
    expect(loadConfig({ ...VALID, SAYSWITCH_SIGN_REQUESTS: '0' }).sayswitch.signRequests).toBe(
      false,
    );
  });

  it('takes the encryption pair together and requires NOTIFY_SECRET with NOTIFY_URL', () => {
    const c = loadConfig({
      ...VALID,
      SAYSWITCH_ENCRYPTION_KEY: 'k'.repeat(32),
      SAYSWITCH_ENCRYPTION_IV: 'i'.repeat(16),
    });
    expect(c.sayswitch.encryption).toEqual({
      key: 'k'.repeat(32),
      iv: 'i'.repeat(16),
      encoding: 'hex',
    });
    const n = loadConfig({
      ...VALID,
      NOTIFY_URL: 'https://merchant.example/hook',
      NOTIFY_SECRET: 's3cret',
    });
    expect(n.notify?.url).toBe('https://merchant.example/hook');
  });

  it('SUBMIT_LEASE must exceed SAYSWITCH_TIMEOUT_MS by the timeout again, at least 1s', () => {
    expect(minSubmitLeaseMs(15_000)).toBe(30_000);
    expect(minSubmitLeaseMs(500)).toBe(1_500);
    expect(minSubmitLeaseMs(1_000)).toBe(2_000);
    // The defaults (2m over 15s) hold; the boundary is allowed.
    expect(loadConfig(VALID).worker.submitLeaseMs).toBe(120_000);
    expect(
      loadConfig({ ...VALID, SAYSWITCH_TIMEOUT_MS: '1500', SUBMIT_LEASE: '3s' }).worker
        .submitLeaseMs,
    ).toBe(3_000);
    expect(
      loadConfig({ ...VALID, SAYSWITCH_TIMEOUT_MS: '500', SUBMIT_LEASE: '1500ms' }).worker
        .submitLeaseMs,
    ).toBe(1_500);

    const violations: Record<string, string>[] = [
      // Below the timeout itself, as was silently accepted before.
      { SAYSWITCH_TIMEOUT_MS: '15000', SUBMIT_LEASE: '10s' },
      // Above the timeout but without the margin.
      { SAYSWITCH_TIMEOUT_MS: '15000', SUBMIT_LEASE: '20s' },
      { SAYSWITCH_TIMEOUT_MS: '500', SUBMIT_LEASE: '1s' },
      // A long timeout (the longest allowed is 45000) against a lease that fits a shorter one.
      { SAYSWITCH_TIMEOUT_MS: '45000', SUBMIT_LEASE: '80s' },
    ];
    for (const env of violations) {
      const err = problems({ ...VALID, ...env });
      expect(err.problems).toHaveLength(1);
      expect(err.problems[0]?.variable).toBe('SUBMIT_LEASE');
      expect(err.problems[0]?.message).toContain('SAYSWITCH_TIMEOUT_MS');
      expect(err.message).toMatch(/SUBMIT_LEASE: .*SAYSWITCH_TIMEOUT_MS=/);
    }
    expect(problems({ ...VALID, SUBMIT_LEASE: '20s' }).problems[0]?.message).toBe(
      'must be at least 30000 ms with SAYSWITCH_TIMEOUT_MS=15000 (the timeout plus a margin of ' +
        'the timeout again, at least 1000 ms), got 20000 ms',
    );
  });

  it('the lease rule is listed with the other problems, and skipped when either value is invalid', () => {
    const both = problems({ ...VALID, PORT: 'eighty', SUBMIT_LEASE: '1s' });
    expect(both.problems.map((p) => p.variable).sort()).toEqual(['PORT', 'SUBMIT_LEASE']);
    const badLease = problems({ ...VALID, SUBMIT_LEASE: 'soon' });
    expect(badLease.problems).toEqual([
      { variable: 'SUBMIT_LEASE', message: 'must be a duration like 500ms, 30s, 5m, 1h or 1d' },
    ]);
    const badTimeout = problems({ ...VALID, SAYSWITCH_TIMEOUT_MS: '50' });
    expect(badTimeout.problems.map((p) => p.variable)).toEqual(['SAYSWITCH_TIMEOUT_MS']);
  });

  it('refuses a WORKER_STUCK_AFTER under a second, naming it', () => {
    expect(problems({ ...VALID, WORKER_STUCK_AFTER: '200ms' }).problems).toEqual([
      {
        variable: 'WORKER_STUCK_AFTER',
        message:
          'must be at least 1s (a shorter bound would replace healthy workers between fetches)',
      },
    ]);
    expect(loadConfig({ ...VALID, WORKER_STUCK_AFTER: '5s' }).worker.stuckAfterMs).toBe(5_000);
  });

  it("the tests' fast environment satisfies the lease rule", () => {
    const c = loadConfig({ ...FAST_ENV });
    expect(c.worker.submitLeaseMs).toBeGreaterThanOrEqual(minSubmitLeaseMs(c.sayswitch.timeoutMs));
  });

  it('gateway paths, the secret key and HOST: empty is the default, a value HTTP cannot send is refused', () => {
    const c = loadConfig({
      ...VALID,
      SAYSWITCH_CHARGE_PATH: '',
      SAYSWITCH_VERIFY_PATH: '',
      HOST: '',
    });
    expect(c.sayswitch.chargePath).toBe('/api/s2s/transaction/initialize');
    expect(c.sayswitch.verifyPath).toBe('/api/v1/transaction/verify/{reference}');
    expect(c.http.host).toBe('0.0.0.0');
    const err = problems({
      ...VALID,
      SAYSWITCH_SECRET_KEY: 'sk_live_\u00e9t\u00e9-key',
      SAYSWITCH_CHARGE_PATH: 'api/s2s/transaction/initialize',
      SAYSWITCH_PAYOUT_LOOKUP_PATH: '/api/v1/payout/',
    });
    expect(err.problems.map((p) => p.variable).sort()).toEqual([
      'SAYSWITCH_CHARGE_PATH',
      'SAYSWITCH_PAYOUT_LOOKUP_PATH',
      'SAYSWITCH_SECRET_KEY',
    ]);
    expect(err.message).not.toContain('live');
  });

  it('a URL variable its client cannot parse is refused at load, naming it, never echoing it', async () => {
    const { Redis } = await import('ioredis');
    const cases: [string, string, () => unknown][] = [
      // An unencoded % in the password: ioredis throws "URI malformed" when the app opens.
      [
        'REDIS_URL',
        'redis://:s3cret%pw@127.0.0.1:6379',
        () => new Redis('redis://:s3cret%pw@127.0.0.1:6379', { lazyConnect: true }),
      ],
      // A port out of range: "Invalid URL" from ioredis.
      [
        'REDIS_URL',
        'redis://:s3cret@127.0.0.1:99999',
        () => new Redis('redis://:s3cret@127.0.0.1:99999', { lazyConnect: true }),
      ],
      // A database that is not a number: ioredis selects NaN.
      [
        'REDIS_URL',
        'redis://:s3cret@127.0.0.1:6379/zero',
        () => {
          const { db } = new Redis('redis://:s3cret@127.0.0.1:6379/zero', { lazyConnect: true })
            .options;
          if (Number.isNaN(db)) throw new Error('database NaN');
        },
      ],
      // undici's pool (`new URL`) when the gateway is built, for every command.
      [
        'SAYSWITCH_BASE_URL',
        'https://backendapi.sayswitchgroup.com:443x',
        () => new URL('https://backendapi.sayswitchgroup.com:443x'),
      ],
      // Every notification would fail to send and be retried until it is dropped.
      [
        'NOTIFY_URL',
        'https://hooks.example.com:s3cret/x',
        () => new URL('https://hooks.example.com:s3cret/x'),
      ],
    ];
    for (const [variable, value, consumer] of cases) {
      expect(consumer, value).toThrow();
      const err = problems({ ...VALID, NOTIFY_SECRET: 'whsec_c2VjcmV0', [variable]: value });
      expect(
        err.problems.map((p) => p.variable),
        value,
      ).toEqual([variable]);
      expect(err.message).not.toContain('s3cret');
    }
    // What parses is still accepted, a Redis password with a space or an encoded % included.
    for (const url of ['redis://:p%25w@127.0.0.1:6379/0', 'rediss://u:p w@h:6380', 'redis://h']) {
      expect(loadConfig({ ...VALID, REDIS_URL: url }).redis.url).toBe(url);
    }
    expect(
      loadConfig({ ...VALID, SAYSWITCH_BASE_URL: 'http://127.0.0.1:4010/' }).sayswitch.baseUrl,
    ).toBe('http://127.0.0.1:4010');
  });

  it('an empty SAYSWITCH_RATE_LIMIT_PER_SEC is its default 20, held to the shard rule like it', () => {
    // 32 shards each send at least one call per second: 32 per second against a limit of 20.
    const envs: Record<string, string>[] = [{}, { SAYSWITCH_RATE_LIMIT_PER_SEC: '' }];
    for (const env of envs) {
      expect(
        problems({ ...VALID, REDIS_SHARDS: '32', ...env }).problems,
        JSON.stringify(env),
      ).toEqual([expect.objectContaining({ variable: 'SAYSWITCH_RATE_LIMIT_PER_SEC' })]);
    }
    expect(
      loadConfig({ ...VALID, REDIS_SHARDS: '20', SAYSWITCH_RATE_LIMIT_PER_SEC: '' }).sayswitch
        .rateLimitPerSec,
    ).toBe(20);
  });

  it('reads the sign-in throttle and TRUST_PROXY, refusing a proxy list that trusts anyone', () => {
    const c = loadConfig(VALID);
    expect(c.http.signIn).toEqual({ maxFailures: 10, blockMs: 15 * 60_000 });
    expect(c.http.trustProxy).toBeUndefined();
    const set = loadConfig({
      ...VALID,
      DASHBOARD_SIGN_IN_MAX_FAILURES: '5',
      DASHBOARD_SIGN_IN_BLOCK: '1h',
      TRUST_PROXY: ' 10.0.0.0/8, ::1 ,loopback,2001:db8::/32,192.0.2.7',
    });
    expect(set.http.signIn).toEqual({ maxFailures: 5, blockMs: 3_600_000 });
    expect(set.http.trustProxy).toEqual([
      '10.0.0.0/8',
      '::1',
      'loopback',
      '2001:db8::/32',
      '192.0.2.7',
    ]);
    expect(loadConfig({ ...VALID, TRUST_PROXY: 'false' }).http.trustProxy).toBeUndefined();
    for (const bad of [
      'true',
      '1',
      '10.0.0.0/33',
      '0.0.0.0/0',
      '10.0.0.1,::/0',
      '::ffff:0:0/0',
      '10.0.0.1,proxy.local',
      '::1/129',
      '10.0.0.0/8/1',
      ' , ',
    ]) {
      const err = problems({ ...VALID, TRUST_PROXY: bad });
      expect(err.problems, bad).toEqual([
        { variable: 'TRUST_PROXY', message: expect.stringContaining('is not a proxy') },
      ]);
    }
    expect(problems({ ...VALID, DASHBOARD_SIGN_IN_MAX_FAILURES: '0' }).problems).toEqual([
      expect.objectContaining({ variable: 'DASHBOARD_SIGN_IN_MAX_FAILURES' }),
    ]);
    expect(problems({ ...VALID, DASHBOARD_SIGN_IN_BLOCK: '500ms' }).problems).toEqual([
      expect.objectContaining({ variable: 'DASHBOARD_SIGN_IN_BLOCK' }),
    ]);
  });

  it('DATA_ENCRYPTION_KEY_PREVIOUS: 64 hex characters, a secret, not DATA_ENCRYPTION_KEY', () => {
    const previous = 'cd'.repeat(32);
    expect(loadConfig(VALID).previousDataEncryptionKey).toBeUndefined();
    expect(
      loadConfig({ ...VALID, DATA_ENCRYPTION_KEY_PREVIOUS: previous }).previousDataEncryptionKey,
    ).toEqual(Buffer.from(previous, 'hex'));
    expect(SECRET_VARIABLES).toContain('DATA_ENCRYPTION_KEY_PREVIOUS');
    const bad = problems({ ...VALID, DATA_ENCRYPTION_KEY_PREVIOUS: 'not-hex-secret-value' });
    expect(bad.problems).toEqual([
      { variable: 'DATA_ENCRYPTION_KEY_PREVIOUS', message: 'must be 64 hex characters (32 bytes)' },
    ]);
    expect(bad.message).not.toContain('not-hex-secret-value');
    const same = problems({
      ...VALID,
      DATA_ENCRYPTION_KEY_PREVIOUS: VALID.DATA_ENCRYPTION_KEY.toUpperCase(),
    });
    expect(same.problems).toEqual([
      { variable: 'DATA_ENCRYPTION_KEY_PREVIOUS', message: 'must differ from DATA_ENCRYPTION_KEY' },
    ]);
  });

  it('.env.example documents every variable and nothing else', () => {
    const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const documented = [...text.matchAll(/^([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...CONFIG_VARIABLES].sort());
    for (const secret of SECRET_VARIABLES) expect(text).toMatch(new RegExp(`^${secret}=$`, 'm'));
  });
});
